-- An organization's wallet never names an erased user as actor (hand-written).
--
-- Org spends, holds, captures, releases and checkouts record the member who made them (`actor`), and erasure
-- pseudonymizes those rows (pseudonymize_user: `actor = p_user_id`). Nothing ordered an org write with its actor's
-- erasure, and nothing refused an erased actor: a write committing after the erasure's pseudonymize statement (an
-- uncommitted row is invisible to it), or any write later with a still-valid token and the membership cache, left the
-- user's id as actor for good. `claim_user` (0008) guards only the wallet owner's own scope.
--
-- `claim_actor` is claim_user for the actor of an organization's write: it takes the actor's owner lock — the one
-- erase_user takes first, exclusively — and answers whether the actor's pseudonym has a tombstone. The lock is taken
-- SHARED: an erasure waits for every org write of its user in flight (and then pseudonymizes their committed rows),
-- a write that comes later waits for the erasure and reads the tombstone, while one member's writes on several
-- organizations' wallets do not wait for each other. Callers take it before the org wallet's row lock, so a write
-- waiting for an erasure holds up no other write of that wallet.
CREATE FUNCTION credits.claim_actor(p_user_id text, p_pseudonym text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF coalesce(current_setting('app.owner', true), '') NOT LIKE 'org:%' THEN
    RAISE EXCEPTION 'claim_actor: only for a write on an organization wallet in scope' USING ERRCODE = '42501';
  END IF;
  IF p_user_id IS NULL OR p_user_id = '' OR p_user_id LIKE 'erased:%' THEN
    RAISE EXCEPTION 'claim_actor: not a user id' USING ERRCODE = '22023';
  END IF;
  -- The key of credits.lock_owner('user:' || p_user_id), shared.
  PERFORM pg_advisory_xact_lock_shared(hashtext('credits.owner'), hashtext('user:' || p_user_id));
  RETURN EXISTS (SELECT 1 FROM credits.erased_users e WHERE e.pseudonym = p_pseudonym);
END
$$;
--> statement-breakpoint
ALTER FUNCTION credits.claim_actor(text, text) OWNER TO credits_maint;
--> statement-breakpoint
REVOKE ALL ON FUNCTION credits.claim_actor(text, text) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION credits.claim_actor(text, text) TO credits_app;
--> statement-breakpoint
-- try_spend for an organization's wallet in the same single round trip: the actor's claim first (before try_spend
-- takes the wallet's row lock), status 'erased' (nothing written) when the actor was erased. A user's own wallet keeps
-- calling try_spend: its owner is its actor, and the wallet's row lock already orders it with the erasure.
CREATE FUNCTION credits.try_org_spend(
  p_actor_pseudonym text,
  p_owner text,
  p_actor text,
  p_amount bigint,
  p_app_id text,
  p_description text,
  p_idempotency_key text,
  p_request_hash text,
  p_metadata jsonb,
  p_now timestamptz,
  p_daily_free integer,
  p_tx_id uuid
) RETURNS TABLE (status text, available bigint, tx jsonb)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF credits.claim_actor(p_actor, p_actor_pseudonym) THEN
    RETURN QUERY SELECT 'erased'::text, NULL::bigint, NULL::jsonb;
    RETURN;
  END IF;
  RETURN QUERY SELECT * FROM credits.try_spend(p_owner, p_actor, p_amount, p_app_id, p_description, p_idempotency_key,
                                               p_request_hash, p_metadata, p_now, p_daily_free, p_tx_id);
END
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION credits.try_org_spend(text, text, text, bigint, text, text, text, text, jsonb, timestamptz, integer, uuid) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION credits.try_org_spend(text, text, text, bigint, text, text, text, text, jsonb, timestamptz, integer, uuid) TO credits_app;
