-- A spend in one statement (hand-written): the hot path of POST /use.
--
-- The spend in TypeScript (src/domain/spend.ts) takes about nine round trips while it holds the wallet's row lock
-- (lock, key check, expiry check, lot selection, lot update, ledger header, postings, wallet update), so a hot
-- wallet's spends/s were bounded by round-trip time. This function does the same steps, in the same order, inside
-- the database. It runs as the caller (SECURITY INVOKER): row-level security and the ledger's triggers apply
-- exactly as to the statements it replaces.
--
-- It does the common case only. When the wallet does not exist yet, a lot has expired or the daily refill is due,
-- it changes nothing (beyond locking the wallet) and answers 'maintain': the caller goes on with the TypeScript
-- path, which owns wallet creation, expiry to breakage and the daily grant.
--
-- Answers (status, available, tx):
--   ok            the spend is posted; tx = the new ledger row (to_jsonb), available = the balance after it
--   replay        the idempotency key was used by this same request; tx = the first answer's ledger row
--   key_reused    the key was used by another request (or kind); nothing changed
--   insufficient  available < amount; nothing changed; available = the balance
--   maintain      see above
CREATE FUNCTION credits.spend(
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
  w credits.wallets%ROWTYPE;
  prior credits.ledger_transactions%ROWTYPE;
  posted credits.ledger_transactions%ROWTYPE;
  lot_ids uuid[];
  lot_takes bigint[];
  lot_categories text[];
  covered bigint;
BEGIN
  IF p_owner IS DISTINCT FROM nullif(current_setting('app.owner', true), '') THEN
    RAISE EXCEPTION 'spend: only the wallet in scope may be spent from' USING ERRCODE = '42501';
  END IF;
  IF p_amount IS NULL OR p_amount <= 0 THEN
    RAISE EXCEPTION 'spend: the amount must be positive' USING ERRCODE = '22023';
  END IF;

  -- Every change of a wallet's lots and balance happens under this lock (as lockWallet in ledger.ts).
  SELECT * INTO w FROM credits.wallets WHERE owner = p_owner FOR UPDATE;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'maintain'::text, NULL::bigint, NULL::jsonb;
    RETURN;
  END IF;

  -- After the lock, so the key check sees every committed spend of this wallet.
  IF p_idempotency_key IS NOT NULL THEN
    SELECT * INTO prior FROM credits.ledger_transactions t WHERE t.owner = p_owner AND t.idempotency_key = p_idempotency_key;
    IF FOUND THEN
      IF prior.kind <> 'spend' OR prior.request_hash IS DISTINCT FROM p_request_hash THEN
        RETURN QUERY SELECT 'key_reused'::text, NULL::bigint, NULL::jsonb;
      ELSE
        RETURN QUERY SELECT 'replay'::text, prior.balance_after, to_jsonb(prior);
      END IF;
      RETURN;
    END IF;
  END IF;

  -- Expired lots to breakage and the daily refill stay in TypeScript (maintain in ledger.ts).
  IF (p_daily_free > 0 AND p_owner LIKE 'user:%' AND (w.next_daily_at IS NULL OR w.next_daily_at <= p_now))
     OR EXISTS (SELECT 1 FROM credits.grants g WHERE g.owner = p_owner AND g.remaining > 0 AND g.expires_at <= p_now) THEN
    RETURN QUERY SELECT 'maintain'::text, NULL::bigint, NULL::jsonb;
    RETURN;
  END IF;

  IF w.available < p_amount THEN
    RETURN QUERY SELECT 'insufficient'::text, w.available, NULL::jsonb;
    RETURN;
  END IF;

  -- Burn order: soonest expiry first (none last), then daily → promo → paid, then oldest (burn in ledger.ts).
  -- A lot is taken while the lots before it cover less than the amount; the order ends in the unique id.
  SELECT coalesce(array_agg(b.id ORDER BY b.upto), '{}'), coalesce(array_agg(b.take ORDER BY b.upto), '{}'),
         coalesce(array_agg(b.category ORDER BY b.upto), '{}'), coalesce(sum(b.take), 0)
    INTO lot_ids, lot_takes, lot_categories, covered
    FROM (
      SELECT l.id, l.category, l.upto, least(l.remaining, p_amount - (l.upto - l.remaining)) AS take
        FROM (
          SELECT g.id, g.category, g.remaining,
                 sum(g.remaining) OVER (
                   ORDER BY g.expires_at ASC NULLS LAST,
                            CASE g.category WHEN 'daily' THEN 0 WHEN 'promo' THEN 1 ELSE 2 END,
                            g.created_at, g.id) AS upto
            FROM credits.grants g
           WHERE g.owner = p_owner AND g.remaining > 0 AND (g.expires_at IS NULL OR g.expires_at > p_now)
        ) l
       WHERE l.upto - l.remaining < p_amount
    ) b;
  IF covered <> p_amount THEN
    RAISE EXCEPTION 'ledger invariant broken: lots of % do not cover %', p_owner, p_amount;
  END IF;
  UPDATE credits.grants g SET remaining = g.remaining - u.take FROM unnest(lot_ids, lot_takes) AS u(id, take) WHERE g.id = u.id;

  INSERT INTO credits.ledger_transactions
    (id, owner, kind, amount, balance_after, app_id, description, grant_category, actor, idempotency_key, request_hash, metadata)
  VALUES
    (p_tx_id, p_owner, 'spend', -p_amount, w.available - p_amount, p_app_id, p_description,
     CASE WHEN cardinality(lot_categories) = 1 THEN lot_categories[1] END, p_actor, p_idempotency_key, p_request_hash, p_metadata)
  RETURNING * INTO posted;
  -- All postings of the transaction in one INSERT (the balance trigger checks per statement).
  INSERT INTO credits.ledger_postings (transaction_id, owner, account, grant_id, amount)
    SELECT p_tx_id, p_owner, 'available', u.id, -u.take FROM unnest(lot_ids, lot_takes) AS u(id, take)
    UNION ALL
    SELECT p_tx_id, p_owner, 'system:revenue', NULL, p_amount;
  UPDATE credits.wallets
     SET available = w.available - p_amount, total_spent = w.total_spent + p_amount, version = w.version + 1, updated_at = now()
   WHERE owner = p_owner;
  RETURN QUERY SELECT 'ok'::text, w.available - p_amount, to_jsonb(posted);
END
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION credits.spend(text, text, bigint, text, text, text, text, jsonb, timestamptz, integer, uuid) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION credits.spend(text, text, bigint, text, text, text, text, jsonb, timestamptz, integer, uuid) TO credits_app;
