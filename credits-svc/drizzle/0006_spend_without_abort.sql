-- credits.spend that never aborts the caller's transaction (hand-written).
--
-- Spends of one wallet that queue up in a process share one transaction (group commit, src/db/scope.ts). Each
-- write there ran inside its own SAVEPOINT, so that a failing one is undone alone: two more round trips per spend
-- while the wallet's row lock is held. A plpgsql block with an EXCEPTION clause is a subtransaction inside the
-- server: `try_spend` is `spend` (0005) whose failure is undone by that block and answered as status 'error'
-- (`tx` = { sqlstate, message }) instead of aborting the transaction, so the batch needs no savepoint for it.
CREATE FUNCTION credits.try_spend(
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
DECLARE
  r record;
BEGIN
  BEGIN
    SELECT * INTO r FROM credits.spend(p_owner, p_actor, p_amount, p_app_id, p_description, p_idempotency_key, p_request_hash,
                                       p_metadata, p_now, p_daily_free, p_tx_id);
  EXCEPTION WHEN OTHERS THEN
    RETURN QUERY SELECT 'error'::text, NULL::bigint, jsonb_build_object('sqlstate', SQLSTATE, 'message', SQLERRM);
    RETURN;
  END;
  RETURN QUERY SELECT r.status, r.available, r.tx;
END
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION credits.try_spend(text, text, bigint, text, text, text, text, jsonb, timestamptz, integer, uuid) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION credits.try_spend(text, text, bigint, text, text, text, text, jsonb, timestamptz, integer, uuid) TO credits_app;
