-- Row-level security, roles, grants, ledger guards and the narrow system functions (hand-written).
--
-- Roles are cluster-wide while every schema lives in some database (tests give every file its own
-- database), so they are created only if missing and a concurrent creator is tolerated.
--
--   credits_app    the role every request runs as (`set_config('role', 'credits_app', true)` per transaction)
--                  with `app.owner` = `user:<id>` or `org:<id>`. Neither superuser nor BYPASSRLS.
--   credits_maint  owns the SECURITY DEFINER functions below (system jobs: the hold sweeper, the webhook's
--                  purchase lookup, erasure's pseudonymization) and nothing else. Nobody logs in as it.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'credits_app') THEN
    BEGIN
      CREATE ROLE credits_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'credits_maint') THEN
    BEGIN
      CREATE ROLE credits_maint NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname IN ('credits_app', 'credits_maint') AND (rolsuper OR rolbypassrls)) THEN
    RAISE EXCEPTION 'roles credits_app and credits_maint must be neither SUPERUSER nor BYPASSRLS';
  END IF;
  IF NOT pg_has_role(current_user, 'credits_app', 'MEMBER') THEN
    EXECUTE format('GRANT credits_app TO %I', current_user);
  END IF;
  IF NOT pg_has_role(current_user, 'credits_maint', 'MEMBER') THEN
    EXECUTE format('GRANT credits_maint TO %I', current_user);
  END IF;
END $$;
--> statement-breakpoint
GRANT USAGE ON SCHEMA credits TO credits_app, credits_maint;
--> statement-breakpoint
REVOKE ALL ON credits.wallets, credits.grants, credits.ledger_transactions, credits.ledger_postings,
  credits.reservations, credits.reservation_allocations, credits.purchases, credits.webhook_events FROM PUBLIC;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON credits.wallets, credits.grants, credits.reservations, credits.reservation_allocations TO credits_app;
--> statement-breakpoint
-- The ledger is append-only for the service role: no UPDATE, no DELETE.
GRANT SELECT, INSERT ON credits.ledger_transactions, credits.ledger_postings TO credits_app;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE ON credits.purchases TO credits_app;
--> statement-breakpoint
GRANT SELECT (id, owner, status, expires_at) ON credits.reservations TO credits_maint;
--> statement-breakpoint
GRANT SELECT (id, owner, stripe_payment_intent) ON credits.purchases TO credits_maint;
--> statement-breakpoint
GRANT SELECT (owner, actor), UPDATE (owner, actor) ON credits.ledger_transactions TO credits_maint;
--> statement-breakpoint
GRANT SELECT (owner), UPDATE (owner) ON credits.ledger_postings TO credits_maint;
--> statement-breakpoint
GRANT SELECT (owner, actor), UPDATE (owner, actor) ON credits.purchases TO credits_maint;
--> statement-breakpoint
GRANT SELECT (owner, expires_at, remaining) ON credits.grants TO credits_maint;
--> statement-breakpoint
DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['wallets', 'grants', 'ledger_transactions', 'ledger_postings', 'reservations', 'reservation_allocations', 'purchases'] LOOP
    EXECUTE format('ALTER TABLE credits.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE credits.%I FORCE ROW LEVEL SECURITY', t);
    -- An unset or empty app.owner matches no row (nullif → NULL → never true).
    EXECUTE format(
      'CREATE POLICY %I ON credits.%I TO credits_app USING (owner = nullif(current_setting(''app.owner'', true), '''')) WITH CHECK (owner = nullif(current_setting(''app.owner'', true), ''''))',
      t || '_own_rows', t);
    EXECUTE format('CREATE POLICY %I ON credits.%I FOR SELECT TO credits_maint USING (true)', t || '_maint_read', t);
  END LOOP;
END $$;
--> statement-breakpoint
CREATE POLICY ledger_transactions_maint_pseudonymize ON credits.ledger_transactions FOR UPDATE TO credits_maint
  USING (true) WITH CHECK (owner LIKE 'erased:%' OR actor LIKE 'erased:%');
--> statement-breakpoint
CREATE POLICY ledger_postings_maint_pseudonymize ON credits.ledger_postings FOR UPDATE TO credits_maint
  USING (true) WITH CHECK (owner LIKE 'erased:%');
--> statement-breakpoint
CREATE POLICY purchases_maint_pseudonymize ON credits.purchases FOR UPDATE TO credits_maint
  USING (true) WITH CHECK (owner LIKE 'erased:%' OR actor LIKE 'erased:%');
--> statement-breakpoint
-- Double entry: the postings of every transaction inserted by one statement sum to zero (every
-- transaction's postings are written by a single INSERT).
CREATE FUNCTION credits.postings_balance() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  bad uuid;
BEGIN
  SELECT transaction_id INTO bad FROM new_postings GROUP BY transaction_id HAVING sum(amount) <> 0 LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'ledger transaction % does not balance', bad USING ERRCODE = '23514';
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER ledger_postings_balance AFTER INSERT ON credits.ledger_postings
  REFERENCING NEW TABLE AS new_postings FOR EACH STATEMENT EXECUTE FUNCTION credits.postings_balance();
--> statement-breakpoint
-- The ledger is never changed: no DELETE at all (not even by the table owner), and an UPDATE only
-- replaces the owner and/or the actor by an `erased:` pseudonym.
CREATE FUNCTION credits.ledger_immutable() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'the ledger is append-only' USING ERRCODE = '42501';
  END IF;
  IF (to_jsonb(NEW) - 'owner' - 'actor') IS DISTINCT FROM (to_jsonb(OLD) - 'owner' - 'actor')
     OR (NEW.owner IS DISTINCT FROM OLD.owner AND NEW.owner NOT LIKE 'erased:%')
     OR (to_jsonb(NEW) ->> 'actor' IS DISTINCT FROM to_jsonb(OLD) ->> 'actor' AND coalesce(to_jsonb(NEW) ->> 'actor', '') NOT LIKE 'erased:%') THEN
    RAISE EXCEPTION 'the ledger is append-only (only erasure pseudonymizes its owner)' USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE TRIGGER ledger_transactions_immutable BEFORE UPDATE OR DELETE ON credits.ledger_transactions
  FOR EACH ROW EXECUTE FUNCTION credits.ledger_immutable();
--> statement-breakpoint
CREATE TRIGGER ledger_postings_immutable BEFORE UPDATE OR DELETE ON credits.ledger_postings
  FOR EACH ROW EXECUTE FUNCTION credits.ledger_immutable();
--> statement-breakpoint
-- The webhook knows a purchase id (or a payment intent), not its owner: owner lookups only.
CREATE FUNCTION credits.purchase_owner(p_purchase_id uuid) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT p.owner FROM credits.purchases p WHERE p.id = p_purchase_id $$;
--> statement-breakpoint
CREATE FUNCTION credits.purchase_by_payment_intent(p_payment_intent text) RETURNS TABLE (id uuid, owner text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT p.id, p.owner FROM credits.purchases p WHERE p.stripe_payment_intent = p_payment_intent LIMIT 1 $$;
--> statement-breakpoint
-- The hold sweeper: ids and owners (only) of holds past their expiry.
CREATE FUNCTION credits.expired_reservations(p_limit integer) RETURNS TABLE (id uuid, owner text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT r.id, r.owner FROM credits.reservations r
  WHERE r.status = 'held' AND r.expires_at <= now()
  ORDER BY r.expires_at
  LIMIT least(greatest(coalesce(p_limit, 100), 1), 1000)
$$;
--> statement-breakpoint
-- The expiry sweeper: owners (only) with expired lots that still hold credit.
CREATE FUNCTION credits.owners_with_expired_grants(p_limit integer) RETURNS TABLE (owner text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT DISTINCT g.owner FROM credits.grants g
  WHERE g.remaining > 0 AND g.expires_at <= now()
  LIMIT least(greatest(coalesce(p_limit, 100), 1), 1000)
$$;
--> statement-breakpoint
-- Erasure: the ledger and purchases of the user in scope (and only that user) get the pseudonym, as owner
-- of their own wallet's rows and as actor on organization wallets' rows.
CREATE FUNCTION credits.pseudonymize_user(p_user_id text, p_pseudonym text)
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
  UPDATE credits.ledger_transactions SET owner = p_pseudonym, actor = CASE WHEN actor IS NULL THEN NULL ELSE p_pseudonym END
    WHERE owner = v_owner;
  GET DIAGNOSTICS n_tx = ROW_COUNT;
  UPDATE credits.ledger_transactions SET actor = p_pseudonym WHERE actor = p_user_id;
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
ALTER FUNCTION credits.purchase_owner(uuid) OWNER TO credits_maint;
--> statement-breakpoint
ALTER FUNCTION credits.purchase_by_payment_intent(text) OWNER TO credits_maint;
--> statement-breakpoint
ALTER FUNCTION credits.expired_reservations(integer) OWNER TO credits_maint;
--> statement-breakpoint
ALTER FUNCTION credits.owners_with_expired_grants(integer) OWNER TO credits_maint;
--> statement-breakpoint
ALTER FUNCTION credits.pseudonymize_user(text, text) OWNER TO credits_maint;
--> statement-breakpoint
REVOKE ALL ON FUNCTION credits.purchase_owner(uuid), credits.purchase_by_payment_intent(text), credits.expired_reservations(integer),
  credits.owners_with_expired_grants(integer), credits.pseudonymize_user(text, text) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION credits.purchase_owner(uuid), credits.purchase_by_payment_intent(text), credits.expired_reservations(integer),
  credits.owners_with_expired_grants(integer), credits.pseudonymize_user(text, text) TO credits_app;
