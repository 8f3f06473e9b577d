-- auth.end_session_if_banned (0014) was the sign-in's re-check of a ban after its session insert; since 0015 the
-- insert's own trigger (session_user_not_banned) refuses a banned user's session, and the function stayed one
-- release for instances of the version before, which still called it. Two releases have shipped since: no running
-- instance calls it.
DROP FUNCTION IF EXISTS "auth"."end_session_if_banned"(text, text);
