-- Outbox events written by triggers, so that every writer of `user` and `session` (Better Auth's own
-- endpoints and plugins, our /api/v1 routes, cascades from a user delete, operator scripts) emits them
-- in the very transaction that changes the row. The envelopes follow shared/src/contracts/events.ts;
-- auth-svc/test/db-events.test.ts checks them against those zod schemas.

CREATE OR REPLACE FUNCTION "auth"."enqueue_event"(event_type text, event_data jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  event_id uuid := gen_random_uuid();
BEGIN
  INSERT INTO "auth"."outbox" ("id", "type", "envelope")
  VALUES (
    event_id,
    event_type,
    jsonb_build_object(
      'id', event_id,
      'type', event_type,
      'occurredAt', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'data', event_data
    )
  );
END $$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION "auth"."user_registered_event"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM "auth"."enqueue_event"('user.registered.v1', jsonb_build_object(
    'userId', NEW."id",
    'email', NEW."email",
    'name', left(NEW."name", 256),
    'locale', CASE WHEN length(NEW."locale") <= 35 THEN NEW."locale" END
  ));
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER "user_registered_event" AFTER INSERT ON "auth"."user"
FOR EACH ROW EXECUTE FUNCTION "auth"."user_registered_event"();
--> statement-breakpoint
CREATE OR REPLACE FUNCTION "auth"."user_updated_event"() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  changes jsonb := '{}'::jsonb;
BEGIN
  IF NEW."email" IS DISTINCT FROM OLD."email" THEN changes := changes || jsonb_build_object('email', NEW."email"); END IF;
  IF NEW."name" IS DISTINCT FROM OLD."name" THEN changes := changes || jsonb_build_object('name', left(NEW."name", 256)); END IF;
  IF NEW."role" IS DISTINCT FROM OLD."role" THEN changes := changes || jsonb_build_object('role', NEW."role"); END IF;
  IF changes <> '{}'::jsonb THEN
    PERFORM "auth"."enqueue_event"('user.updated.v1', jsonb_build_object('userId', NEW."id", 'changes', changes));
  END IF;
  RETURN NEW;
END $$;
--> statement-breakpoint
CREATE TRIGGER "user_updated_event" AFTER UPDATE ON "auth"."user"
FOR EACH ROW EXECUTE FUNCTION "auth"."user_updated_event"();
--> statement-breakpoint
-- A deleted session is a revoked one: its access tokens (15 minutes, see ACCESS_TOKEN_TTL_SECONDS in
-- src/domain/tokens.ts) must stop working now. Sessions whose last token has already expired need no entry.
CREATE OR REPLACE FUNCTION "auth"."session_revoked_event"() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  last_token_expiry timestamptz := now() + interval '15 minutes';
BEGIN
  IF OLD."expires_at" + interval '15 minutes' <= now() THEN
    RETURN OLD;
  END IF;
  INSERT INTO "auth"."session_revocations" ("session_id", "user_id", "revoked_at", "expires_at")
  VALUES (OLD."id", OLD."user_id", now(), last_token_expiry)
  ON CONFLICT ("session_id") DO UPDATE SET "expires_at" = EXCLUDED."expires_at";
  PERFORM "auth"."enqueue_event"('session.revoked.v1', jsonb_build_object(
    'sessionId', OLD."id",
    'userId', OLD."user_id",
    'expiresAt', to_char(last_token_expiry AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
  ));
  RETURN OLD;
END $$;
--> statement-breakpoint
CREATE TRIGGER "session_revoked_event" AFTER DELETE ON "auth"."session"
FOR EACH ROW EXECUTE FUNCTION "auth"."session_revoked_event"();
