-- A banned user gets no session, decided by the session INSERT itself (src/auth/plugins/ban.ts): this BEFORE INSERT
-- trigger replaces the ban plugin's read before the insert and its re-check after it (two round trips per sign-in).
-- The order is the one auth.end_session_if_banned had: first the user row FOR SHARE (it waits for a banUser holding
-- FOR UPDATE until that commits), then the ban is read by a *new* statement (a VOLATILE function: under READ
-- COMMITTED each statement takes a fresh snapshot, so it sees a ban committed while the lock was awaited).
-- - banUser holds the lock first: the insert waits for its commit, sees the ban and fails; no session row exists.
-- - the insert holds the lock first: banUser waits, and its session DELETE starts after the new session committed,
--   so it sees and ends it.
-- The refusal is SQLSTATE P0001 naming the constraint session_user_not_banned; auth-svc answers it 403 ACCOUNT_BANNED.
CREATE OR REPLACE FUNCTION "auth"."refuse_session_of_banned_user"() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM 1 FROM "auth"."user" WHERE "id" = NEW."user_id" FOR SHARE;
  IF EXISTS (
    SELECT 1 FROM "auth"."user_bans"
    WHERE "user_id" = NEW."user_id" AND ("expires_at" IS NULL OR "expires_at" > now())
  ) THEN
    RAISE EXCEPTION 'account banned' USING ERRCODE = 'P0001', CONSTRAINT = 'session_user_not_banned';
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "session_user_not_banned" BEFORE INSERT ON "auth"."session"
  FOR EACH ROW EXECUTE FUNCTION "auth"."refuse_session_of_banned_user"();
--> statement-breakpoint
-- auth.end_session_if_banned (0014) stays for one release: an instance of the previous version still calls it during
-- a rolling upgrade.
COMMENT ON FUNCTION "auth"."end_session_if_banned"(text, text) IS 'unused since 0015 (session_user_not_banned); kept for rolling upgrades, drop in a later migration';
