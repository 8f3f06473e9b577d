-- Erasure of a user's credits in one statement (hand-written).
--
-- src/events/erasure.ts did this in about a dozen round trips (lock the wallet, close it in the ledger, delete
-- allocations, holds, lots and the wallet, pseudonymize). In a burst of erasures those round trips were most of
-- credits-svc's share. This function does the same steps in the same order inside the database, as the caller
-- (SECURITY INVOKER, in the user's owner scope: row-level security and the ledger triggers apply as before);
-- `pseudonymize_user` (0003, 0004) stays the one SECURITY DEFINER step.
--
-- Answers { deleted: { wallets, grants, reservations, reservation_allocations },
--           retained: { ledger_transactions, ledger_postings, purchases } }.
CREATE FUNCTION credits.erase_user(p_user_id text, p_pseudonym text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_owner text := 'user:' || p_user_id;
  w credits.wallets%ROWTYPE;
  v_tx uuid;
  n_allocations bigint;
  n_holds bigint;
  n_lots bigint;
  n_wallets bigint;
  kept record;
BEGIN
  IF p_user_id IS NULL OR v_owner IS DISTINCT FROM nullif(current_setting('app.owner', true), '') THEN
    RAISE EXCEPTION 'erase_user: only the user in scope may be erased' USING ERRCODE = '42501';
  END IF;
  -- Close the wallet in the ledger before it goes: what is left (available and held) moves to breakage, so the
  -- retained, pseudonymized ledger still balances to zero for the closed wallet.
  SELECT * INTO w FROM credits.wallets WHERE owner = v_owner FOR UPDATE;
  IF FOUND AND (w.available <> 0 OR w.held <> 0) THEN
    v_tx := gen_random_uuid();
    INSERT INTO credits.ledger_transactions (id, owner, kind, amount, balance_after, description)
      VALUES (v_tx, v_owner, 'close', -w.available, 0, 'Wallet closed on erasure');
    INSERT INTO credits.ledger_postings (transaction_id, owner, account, amount)
      SELECT v_tx, v_owner, p.account, p.amount
        FROM (VALUES ('available', -w.available), ('held', -w.held), ('system:breakage', w.available + w.held)) AS p(account, amount)
       WHERE p.amount <> 0;
  END IF;
  DELETE FROM credits.reservation_allocations WHERE owner = v_owner;
  GET DIAGNOSTICS n_allocations = ROW_COUNT;
  DELETE FROM credits.reservations WHERE owner = v_owner;
  GET DIAGNOSTICS n_holds = ROW_COUNT;
  DELETE FROM credits.grants WHERE owner = v_owner;
  GET DIAGNOSTICS n_lots = ROW_COUNT;
  DELETE FROM credits.wallets WHERE owner = v_owner;
  GET DIAGNOSTICS n_wallets = ROW_COUNT;
  SELECT * INTO kept FROM credits.pseudonymize_user(p_user_id, p_pseudonym);
  RETURN jsonb_build_object(
    'deleted', jsonb_build_object('wallets', n_wallets, 'grants', n_lots, 'reservations', n_holds, 'reservation_allocations', n_allocations),
    'retained', jsonb_build_object('ledger_transactions', kept.ledger_transactions, 'ledger_postings', kept.ledger_postings, 'purchases', kept.purchases));
END
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION credits.erase_user(text, text) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION credits.erase_user(text, text) TO credits_app;
