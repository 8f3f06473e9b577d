-- Erasure clears the free text of the ledger rows it keeps (hand-written).
--
-- The ledger rows of an erased user stay for bookkeeping under a keyed pseudonym (0003_rls). Their amounts,
-- kinds, accounts and times are the bookkeeping; their free text is not: `description` and `metadata` are
-- whatever the calling app sent, `idempotency_key` is a client-chosen string and `request_hash` a hash of
-- that text. Any of them can name the person, so erasure sets all four to NULL — on the user's own rows and
-- on the rows where the user acted on an organization's wallet.

-- The ledger is still never changed otherwise: no DELETE, every other column as written, owner and actor
-- only ever replaced by an `erased:` pseudonym, and the four text columns only ever cleared, only on a row
-- that carries a pseudonym (so clearing them is erasure and nothing else).
CREATE OR REPLACE FUNCTION credits.ledger_immutable() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  scrubbed CONSTANT text[] := ARRAY['description', 'metadata', 'idempotency_key', 'request_hash'];
  n jsonb;
  o jsonb;
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'the ledger is append-only' USING ERRCODE = '42501';
  END IF;
  n := to_jsonb(NEW);
  o := to_jsonb(OLD);
  IF (n - 'owner' - 'actor' - scrubbed) IS DISTINCT FROM (o - 'owner' - 'actor' - scrubbed)
     OR (NEW.owner IS DISTINCT FROM OLD.owner AND NEW.owner NOT LIKE 'erased:%')
     OR (n ->> 'actor' IS DISTINCT FROM o ->> 'actor' AND coalesce(n ->> 'actor', '') NOT LIKE 'erased:%') THEN
    RAISE EXCEPTION 'the ledger is append-only (only erasure pseudonymizes its owner)' USING ERRCODE = '42501';
  END IF;
  -- A text column that changes must become NULL, on a row that is pseudonymized (by this update or before).
  IF EXISTS (SELECT 1 FROM unnest(scrubbed) AS k WHERE n -> k IS DISTINCT FROM o -> k)
     AND (EXISTS (SELECT 1 FROM unnest(scrubbed) AS k WHERE n -> k IS DISTINCT FROM o -> k AND n -> k <> 'null'::jsonb)
          OR NOT (coalesce(n ->> 'owner', '') LIKE 'erased:%' OR coalesce(n ->> 'actor', '') LIKE 'erased:%')) THEN
    RAISE EXCEPTION 'the ledger is append-only (erasure only clears its free text)' USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END
$$;
--> statement-breakpoint
GRANT SELECT (description, metadata, idempotency_key, request_hash), UPDATE (description, metadata, idempotency_key, request_hash)
  ON credits.ledger_transactions TO credits_maint;
--> statement-breakpoint
-- Erasure: the ledger and purchases of the user in scope (and only that user) get the pseudonym, as owner
-- of their own wallet's rows and as actor on organization wallets' rows; those ledger rows lose their free text.
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
  UPDATE credits.purchases SET owner = p_pseudonym, actor = p_pseudonym WHERE owner = v_owner;
  GET DIAGNOSTICS n_purchases = ROW_COUNT;
  UPDATE credits.purchases SET actor = p_pseudonym WHERE actor = p_user_id;
  GET DIAGNOSTICS n_purchase_actor = ROW_COUNT;
  RETURN QUERY SELECT n_tx + n_actor, n_postings, n_purchases + n_purchase_actor;
END
$$;
--> statement-breakpoint
-- Users erased before this migration: their pseudonymized rows lose the free text now. As credits_maint,
-- whose policy and column grants are exactly this update (the table owner has no policy under FORCE RLS).
SET LOCAL ROLE credits_maint;
--> statement-breakpoint
UPDATE credits.ledger_transactions
  SET description = NULL, metadata = NULL, idempotency_key = NULL, request_hash = NULL
  WHERE (owner LIKE 'erased:%' OR actor LIKE 'erased:%')
    AND (description IS NOT NULL OR metadata IS NOT NULL OR idempotency_key IS NOT NULL OR request_hash IS NOT NULL);
--> statement-breakpoint
RESET ROLE;
