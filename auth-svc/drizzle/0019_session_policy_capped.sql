-- Whether the sessions that exist have been capped at the stored lifetime (applySessionPolicy, domain/sessions.ts).
-- The cap of a lower lifetime now runs after the lifetime is committed, without a table lock (0011's SHARE lock held
-- every sign-in and refresh for the whole cap), and in batches: a start that dies before it finished leaves it owed
-- here, and the next start pays it. The policy row written before this column was capped in its own transaction.
ALTER TABLE "auth"."session_policy" ADD COLUMN "sessions_capped" boolean DEFAULT true NOT NULL;
