CREATE TABLE "credits"."erased_users" (
	"pseudonym" text PRIMARY KEY NOT NULL,
	"erased_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "erased_users_pseudonym" CHECK ("credits"."erased_users"."pseudonym" like 'erased:%')
);
--> statement-breakpoint
-- Tombstones of erased users (hand-written from here on).
--
-- Erasure deleted the wallet, but the next request, event or webhook for the user made a new one (lockWallet created a
-- missing wallet): a spend with a still-valid token, a late or redelivered user.registered.v1 (a new signup bonus), a
-- purchase's completion or refund. The erasure now leaves the user's keyed pseudonym here (the one it writes into the
-- ledger; never the id: gdpr-svc's end-to-end scan looks for the id in every column of every schema), and a wallet is
-- created only after `claim_user` answered that the user in scope was not erased.
--
-- Under READ COMMITTED a check and the insert after it race an erasure when there is no wallet row to lock yet, so
-- both sides take one per-owner advisory lock (`lock_owner`, transaction-scoped): `erase_user` before it looks at the
-- wallet, `claim_user` before it reads the tombstone. A wallet creator that got the lock first has committed its
-- wallet before the erasure looks for it (and the erasure removes it); one that waited reads the committed tombstone.
-- A wallet that exists is serialized by its row lock as before; once the erasure deleted it, its waiters find no row
-- and take the creation path, with the lock and the check.
REVOKE ALL ON credits.erased_users FROM PUBLIC;
--> statement-breakpoint
-- The service role only adds tombstones (erase_user runs as the caller); reading one goes through claim_user.
GRANT INSERT ON credits.erased_users TO credits_app;
--> statement-breakpoint
GRANT SELECT (pseudonym) ON credits.erased_users TO credits_maint;
--> statement-breakpoint
-- Users erased before this migration: their pseudonym is in the retained ledger or purchases.
INSERT INTO credits.erased_users (pseudonym)
  SELECT owner FROM credits.ledger_transactions WHERE owner LIKE 'erased:%'
  UNION SELECT actor FROM credits.ledger_transactions WHERE actor LIKE 'erased:%'
  UNION SELECT owner FROM credits.purchases WHERE owner LIKE 'erased:%'
  UNION SELECT actor FROM credits.purchases WHERE actor LIKE 'erased:%'
ON CONFLICT DO NOTHING;
--> statement-breakpoint
-- The one lock wallet creation and erasure of an owner share (the two-key form: its own space, apart from the
-- bigint-keyed advisory locks other services of the same database take).
CREATE FUNCTION credits.lock_owner(p_owner text) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_advisory_xact_lock(hashtext('credits.owner'), hashtext(p_owner)) $$;
--> statement-breakpoint
-- Before a user's wallet is created: locks the owner in scope against its erasure, then answers whether the user
-- (by its pseudonym) was erased. Only the user in scope; a boolean about a pseudonym the caller already knows.
CREATE FUNCTION credits.claim_user(p_pseudonym text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_owner text := nullif(current_setting('app.owner', true), '');
BEGIN
  IF v_owner IS NULL OR v_owner NOT LIKE 'user:%' THEN
    RAISE EXCEPTION 'claim_user: only a user in scope may be claimed' USING ERRCODE = '42501';
  END IF;
  PERFORM credits.lock_owner(v_owner);
  RETURN EXISTS (SELECT 1 FROM credits.erased_users e WHERE e.pseudonym = p_pseudonym);
END
$$;
--> statement-breakpoint
ALTER FUNCTION credits.claim_user(text) OWNER TO credits_maint;
--> statement-breakpoint
REVOKE ALL ON FUNCTION credits.lock_owner(text), credits.claim_user(text) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION credits.lock_owner(text) TO credits_app, credits_maint;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION credits.claim_user(text) TO credits_app;
--> statement-breakpoint
-- erase_user (0007) with the owner's lock first and the tombstone in the same transaction.
CREATE OR REPLACE FUNCTION credits.erase_user(p_user_id text, p_pseudonym text) RETURNS jsonb
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
  -- Before the wallet is looked at: a creator holding the lock commits its wallet first (and it is erased below); one
  -- that comes later waits and then reads the tombstone.
  PERFORM credits.lock_owner(v_owner);
  INSERT INTO credits.erased_users (pseudonym) VALUES (p_pseudonym) ON CONFLICT DO NOTHING;
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
