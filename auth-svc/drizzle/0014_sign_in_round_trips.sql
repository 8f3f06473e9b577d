-- The ban re-check after a sign-in created its session (src/auth/plugins/ban.ts), in one round trip instead of a
-- transaction of four. The order matters and is the one the plugin had: first the user row FOR SHARE (it waits
-- for a banUser holding FOR UPDATE until that commits), then the ban is read by a *new* statement. This function
-- is VOLATILE, so under READ COMMITTED each statement in it takes a fresh snapshot and sees a ban committed while
-- the lock was awaited; if there is one, the new session is deleted (its trigger publishes session.revoked.v1).
CREATE OR REPLACE FUNCTION "auth"."end_session_if_banned"(p_session_id text, p_user_id text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM 1 FROM "auth"."user" WHERE "id" = p_user_id FOR SHARE;
  IF NOT EXISTS (
    SELECT 1 FROM "auth"."user_bans"
    WHERE "user_id" = p_user_id AND ("expires_at" IS NULL OR "expires_at" > now())
  ) THEN
    RETURN false;
  END IF;
  DELETE FROM "auth"."session" WHERE "id" = p_session_id;
  RETURN true;
END;
$$;
