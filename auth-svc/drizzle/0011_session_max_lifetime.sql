-- Absolute session lifetime (SESSION_MAX_LIFETIME_SECONDS, written into "auth"."session_policy" by
-- auth-svc at start): whoever writes a session's expiry (Better Auth's sign-in and cookie refresh,
-- /api/v1/auth/refresh), it never goes past created_at + the lifetime. No policy row = no cap.
CREATE OR REPLACE FUNCTION "auth"."session_cap_expiry"() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  max_seconds integer;
BEGIN
  SELECT "max_lifetime_seconds" INTO max_seconds FROM "auth"."session_policy" WHERE "id";
  IF max_seconds IS NOT NULL THEN
    NEW."expires_at" := least(NEW."expires_at", coalesce(NEW."created_at", now()) + make_interval(secs => max_seconds));
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "session_cap_expiry" BEFORE INSERT OR UPDATE OF "expires_at", "created_at" ON "auth"."session"
FOR EACH ROW EXECUTE FUNCTION "auth"."session_cap_expiry"();
