-- The erasure pseudonymizes purchases before the ledger (hand-written).
--
-- Stripe's completion of an organization's purchase locks the purchase FOR UPDATE, reads its `actor` (the member who
-- bought) and inserts the grant's ledger row with that actor; it claims nothing (the webhook has no user to claim, and
-- the buyer's erasure may come at any time after the checkout). pseudonymize_user (0004) updated the ledger rows
-- `WHERE actor = p_user_id` first and the purchases after: a completion in flight had its grant row uncommitted, so
-- the ledger update did not see it; the purchases update then waited for the completion's lock on the purchase and
-- pseudonymized it once the completion committed, and the organization's ledger row kept the member's id for good.
--
-- The purchases now go first, and the purchase's row lock orders the two:
-- * the completion holds the purchase first: the erasure's purchases update waits for its commit, and its ledger
--   update, a later statement (a new snapshot under READ COMMITTED), sees the committed grant row;
-- * the erasure's purchases update comes first: the completion's FOR UPDATE waits for the erasure's commit and then
--   reads the updated row, whose actor is the pseudonym, and writes that into the ledger.
-- Same body otherwise; CREATE OR REPLACE keeps the owner (credits_maint), SECURITY DEFINER and the grants.
CREATE OR REPLACE FUNCTION credits.pseudonymize_user(p_user_id text, p_pseudonym text)
RETURNS TABLE (ledger_transactions bigint, ledger_postings bigint, purchases bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_owner text := 'user:' || p_user_id;
  n_tx bigint;
  n_actor bigint;
  n_postings bigint;
  n_purchases bigint;
  n_purchase_actor bigint;
BEGIN
  IF p_user_id IS NULL OR v_owner IS DISTINCT FROM nullif(current_setting('app.owner', true), '') THEN
    RAISE EXCEPTION 'pseudonymize_user: only the user in scope may be pseudonymized' USING ERRCODE = '42501';
  END IF;
  IF p_pseudonym IS NULL OR p_pseudonym NOT LIKE 'erased:%' THEN
    RAISE EXCEPTION 'pseudonymize_user: a pseudonym starts with erased:' USING ERRCODE = '22023';
  END IF;
  -- Purchases first: waiting here for a completion's lock on a purchase lets the ledger updates below see its row.
  UPDATE credits.purchases SET owner = p_pseudonym, actor = p_pseudonym WHERE owner = v_owner;
  GET DIAGNOSTICS n_purchases = ROW_COUNT;
  UPDATE credits.purchases SET actor = p_pseudonym WHERE actor = p_user_id;
  GET DIAGNOSTICS n_purchase_actor = ROW_COUNT;
  UPDATE credits.ledger_transactions
    SET owner = p_pseudonym, actor = CASE WHEN actor IS NULL THEN NULL ELSE p_pseudonym END,
        description = NULL, metadata = NULL, idempotency_key = NULL, request_hash = NULL
    WHERE owner = v_owner;
  GET DIAGNOSTICS n_tx = ROW_COUNT;
  UPDATE credits.ledger_transactions
    SET actor = p_pseudonym, description = NULL, metadata = NULL, idempotency_key = NULL, request_hash = NULL
    WHERE actor = p_user_id;
  GET DIAGNOSTICS n_actor = ROW_COUNT;
  UPDATE credits.ledger_postings SET owner = p_pseudonym WHERE owner = v_owner;
  GET DIAGNOSTICS n_postings = ROW_COUNT;
  RETURN QUERY SELECT n_tx + n_actor, n_postings, n_purchases + n_purchase_actor;
END
$$;
