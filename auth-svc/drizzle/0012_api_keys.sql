CREATE TABLE "auth"."api_keys" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" text NOT NULL,
	"name" text NOT NULL,
	"prefix" text NOT NULL,
	"key_hash" text NOT NULL,
	"scopes" text[] DEFAULT '{}'::text[] NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp with time zone,
	"expires_at" timestamp with time zone,
	"known_ips" text[] DEFAULT '{}'::text[] NOT NULL,
	CONSTRAINT "api_keys_key_hash_unique" UNIQUE("key_hash")
);
--> statement-breakpoint
ALTER TABLE "auth"."api_keys" ADD CONSTRAINT "api_keys_user_id_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "auth"."user"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "api_keys_user_idx" ON "auth"."api_keys" USING btree ("user_id");--> statement-breakpoint
-- A deleted API key is a revoked one, on every path (the owner's DELETE, the cascade of an erased user):
-- the access tokens minted for it carry sid 'ak_' || id, and the gateways and services refuse that sid
-- from the moment session.revoked.v1 arrives (or the revocation list is loaded). Same bookkeeping as
-- "auth"."session_revoked_event" in 0002; 15 minutes = the longest access-token lifetime.
CREATE OR REPLACE FUNCTION "auth"."api_key_revoked_event"() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  sid text := 'ak_' || OLD."id"::text;
  last_token_expiry timestamptz := now() + interval '15 minutes';
BEGIN
  IF OLD."expires_at" IS NOT NULL AND OLD."expires_at" + interval '15 minutes' <= now() THEN
    RETURN OLD;
  END IF;
  INSERT INTO "auth"."session_revocations" ("session_id", "user_id", "revoked_at", "expires_at")
  VALUES (sid, OLD."user_id", now(), last_token_expiry)
  ON CONFLICT ("session_id") DO UPDATE SET "expires_at" = EXCLUDED."expires_at";
  PERFORM "auth"."enqueue_event"('session.revoked.v1', jsonb_build_object(
    'sessionId', sid,
    'userId', OLD."user_id",
    'expiresAt', to_char(last_token_expiry AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
  ));
  RETURN OLD;
END $$;
--> statement-breakpoint
CREATE TRIGGER "api_key_revoked_event" AFTER DELETE ON "auth"."api_keys"
FOR EACH ROW EXECUTE FUNCTION "auth"."api_key_revoked_event"();
