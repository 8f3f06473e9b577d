CREATE TABLE "vault"."erased_users" (
	"pseudonym" text PRIMARY KEY NOT NULL,
	"erased_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "erased_users_pseudonym" CHECK ("vault"."erased_users"."pseudonym" like 'erased:%')
);
--> statement-breakpoint
-- Tombstones of erased users (hand-written from here on).
--
-- Nothing ordered the creation of a vault with the user's erasure, and nothing remembered it: POST /init with a
-- still-valid token (tokens are verified locally; a revocation reaches the gateways by event) made a new vault after
-- the erasure, with an `init` audit row naming the user; and an /init whose insert was not committed yet was invisible
-- to the erasure's DELETE, which committed, and the vault and its row stayed. The erasure now leaves the user's keyed
-- pseudonym here (HMAC with VAULT_PSEUDONYM_SECRET, never the id), and /init creates a vault only after `claim_user`
-- took the user's lock and found no tombstone. The audit trail's pseudonyms stay random: this keyed one is written
-- nowhere else, so it links no audit row to the user.
--
-- Under READ COMMITTED a check and the insert after it race the erasure when there is no vault row to lock yet, so
-- both sides take one per-user advisory lock (`lock_user`, transaction-scoped): the erasure before its DELETE,
-- `claim_user` before it reads the tombstone. An /init that got the lock first commits its vault before the erasure's
-- DELETE runs (which then deletes it and pseudonymizes its audit row); one that waited reads the committed tombstone.
-- Users erased before this migration have no tombstone: their audit rows carry random pseudonyms, nothing to derive
-- the keyed one from.
REVOKE ALL ON vault.erased_users FROM PUBLIC;
--> statement-breakpoint
-- The service role only adds tombstones (the erasure runs in the user's scope as vault_app); reading one goes
-- through claim_user.
GRANT INSERT ON vault.erased_users TO vault_app;
--> statement-breakpoint
GRANT SELECT (pseudonym) ON vault.erased_users TO vault_maint;
--> statement-breakpoint
-- The one lock vault creation and erasure of a user share (the two-key form: its own space, apart from the
-- bigint-keyed advisory locks other services of the same database take).
CREATE FUNCTION vault.lock_user(p_user_id text) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_advisory_xact_lock(hashtext('vault.user'), hashtext(p_user_id)) $$;
--> statement-breakpoint
-- Before a vault is created: locks the user in scope against their erasure, then answers whether the user (by the
-- keyed pseudonym) was erased. Only the user in scope; a boolean about a pseudonym the caller already knows.
CREATE FUNCTION vault.claim_user(p_pseudonym text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_user text := nullif(current_setting('app.current_user_id', true), '');
BEGIN
  IF v_user IS NULL THEN
    RAISE EXCEPTION 'claim_user: only a user in scope may be claimed' USING ERRCODE = '42501';
  END IF;
  PERFORM vault.lock_user(v_user);
  RETURN EXISTS (SELECT 1 FROM vault.erased_users e WHERE e.pseudonym = p_pseudonym);
END
$$;
--> statement-breakpoint
ALTER FUNCTION vault.claim_user(text) OWNER TO vault_maint;
--> statement-breakpoint
REVOKE ALL ON FUNCTION vault.lock_user(text), vault.claim_user(text) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION vault.lock_user(text) TO vault_app, vault_maint;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION vault.claim_user(text) TO vault_app;
