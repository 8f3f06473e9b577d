-- A sign-in that checked the old password must not keep a session after a password change (src/auth/plugins/
-- password-version.ts). The sign-in reads the credential account (its hash and this version) in one statement, checks
-- the password, then inserts its session stamped with the version it read; a reset or change-password ends the
-- user's sessions and writes the new hash in one transaction, in that order (Better Auth's). Two guards close every
-- interleaving under READ COMMITTED:
-- - the session INSERT takes the credential account row FOR SHARE and refuses a version that is no longer the current
--   one. A password UPDATE holding the row makes it wait for that commit; FOR SHARE then reads the new row version,
--   so a change committed before or during the insert refuses it (P0001 session_password_current, answered like a
--   wrong password);
-- - the password UPDATE ends the sessions stamped with the version it replaces, in a statement that starts after
--   the row lock was granted: an insert holding FOR SHARE has committed by then, so a session that slipped in
--   between the reset's session DELETE and its UPDATE is seen and ended (its trigger publishes session.revoked.v1).
-- Sessions not made by a password check (magic link, passkey, a second factor, refresh) carry no version and are
-- not touched here. Every password change in Mana ends the other sessions anyway (password-policy.ts).
ALTER TABLE "auth"."account" ADD COLUMN "password_version" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "auth"."session" ADD COLUMN "password_version" integer;--> statement-breakpoint
CREATE OR REPLACE FUNCTION "auth"."account_password_changed"() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  NEW."password_version" := OLD."password_version" + 1;
  DELETE FROM "auth"."session" WHERE "user_id" = NEW."user_id" AND "password_version" = OLD."password_version";
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "account_password_changed" BEFORE UPDATE OF "password" ON "auth"."account"
  FOR EACH ROW WHEN (NEW."password" IS DISTINCT FROM OLD."password") EXECUTE FUNCTION "auth"."account_password_changed"();
--> statement-breakpoint
-- PostgreSQL fires the BEFORE INSERT triggers of a row in name order: session_user_password_current runs after
-- session_user_not_banned, so the user row is locked before the account row (the order an erasure's cascade takes).
CREATE OR REPLACE FUNCTION "auth"."refuse_session_of_changed_password"() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  current_version integer;
BEGIN
  SELECT "password_version" INTO current_version FROM "auth"."account"
    WHERE "user_id" = NEW."user_id" AND "provider_id" = 'credential' AND "account_id" = NEW."user_id"
    FOR SHARE;
  IF current_version IS DISTINCT FROM NEW."password_version" THEN
    RAISE EXCEPTION 'password changed since it was checked' USING ERRCODE = 'P0001', CONSTRAINT = 'session_password_current';
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "session_user_password_current" BEFORE INSERT ON "auth"."session"
  FOR EACH ROW WHEN (NEW."password_version" IS NOT NULL) EXECUTE FUNCTION "auth"."refuse_session_of_changed_password"();
