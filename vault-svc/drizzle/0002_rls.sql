-- Row-level security, roles and grants for the vault tables (hand-written: drizzle-kit cannot express them).
--
-- Roles are cluster-wide while every schema lives in some database, so this migration must be safe to run
-- in many databases of one cluster, concurrently (tests give every file its own database): the roles are
-- created only if missing, and a concurrent creator in another database is tolerated.
--
--   vault_app   the role every request runs as (`SET LOCAL ROLE vault_app` inside each transaction).
--               Neither superuser nor BYPASSRLS: the policies below really apply to it.
--   vault_maint owns three SECURITY DEFINER functions and nothing else; it may read user ids and KEK ids
--               (never key material) and rewrite audit user ids to a pseudonym. Nobody logs in as it.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vault_app') THEN
    BEGIN
      CREATE ROLE vault_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vault_maint') THEN
    BEGIN
      CREATE ROLE vault_maint NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname IN ('vault_app', 'vault_maint') AND (rolsuper OR rolbypassrls)) THEN
    RAISE EXCEPTION 'roles vault_app and vault_maint must be neither SUPERUSER nor BYPASSRLS';
  END IF;
  -- The service's own login role switches to vault_app per transaction, so it must be a member.
  -- (Superusers are members of every role already.)
  IF NOT pg_has_role(current_user, 'vault_app', 'MEMBER') THEN
    EXECUTE format('GRANT vault_app TO %I', current_user);
  END IF;
  IF NOT pg_has_role(current_user, 'vault_maint', 'MEMBER') THEN
    EXECUTE format('GRANT vault_maint TO %I', current_user);
  END IF;
END $$;
--> statement-breakpoint
GRANT USAGE ON SCHEMA vault TO vault_app, vault_maint;
--> statement-breakpoint
REVOKE ALL ON vault.encryption_vaults, vault.encryption_vault_audit FROM PUBLIC;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON vault.encryption_vaults TO vault_app;
--> statement-breakpoint
-- Append-only: no UPDATE, no DELETE for the service role.
GRANT SELECT, INSERT ON vault.encryption_vault_audit TO vault_app;
--> statement-breakpoint
GRANT USAGE ON SEQUENCE vault.encryption_vault_audit_id_seq TO vault_app;
--> statement-breakpoint
-- Column grants: vault_maint can never read a wrapped key, even through its own functions.
GRANT SELECT (user_id, kek_id) ON vault.encryption_vaults TO vault_maint;
--> statement-breakpoint
GRANT SELECT (user_id), UPDATE (user_id) ON vault.encryption_vault_audit TO vault_maint;
--> statement-breakpoint
ALTER TABLE vault.encryption_vaults ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE vault.encryption_vaults FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE vault.encryption_vault_audit ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE vault.encryption_vault_audit FORCE ROW LEVEL SECURITY;
--> statement-breakpoint
-- An unset or empty app.current_user_id matches no row (nullif → NULL → the comparison is never true).
CREATE POLICY encryption_vaults_own_row ON vault.encryption_vaults TO vault_app
  USING (user_id = nullif(current_setting('app.current_user_id', true), ''))
  WITH CHECK (user_id = nullif(current_setting('app.current_user_id', true), ''));
--> statement-breakpoint
CREATE POLICY encryption_vault_audit_read_own ON vault.encryption_vault_audit FOR SELECT TO vault_app
  USING (user_id = nullif(current_setting('app.current_user_id', true), ''));
--> statement-breakpoint
CREATE POLICY encryption_vault_audit_append_own ON vault.encryption_vault_audit FOR INSERT TO vault_app
  WITH CHECK (user_id = nullif(current_setting('app.current_user_id', true), ''));
--> statement-breakpoint
CREATE POLICY encryption_vaults_maint_read ON vault.encryption_vaults FOR SELECT TO vault_maint USING (true);
--> statement-breakpoint
CREATE POLICY encryption_vault_audit_maint_read ON vault.encryption_vault_audit FOR SELECT TO vault_maint USING (true);
--> statement-breakpoint
CREATE POLICY encryption_vault_audit_maint_pseudonymize ON vault.encryption_vault_audit FOR UPDATE TO vault_maint
  USING (true)
  WITH CHECK (user_id LIKE 'erased:%');
--> statement-breakpoint
-- KEK rotation: the user ids (only) of vaults not yet wrapped with the active KEK, in keyset pages.
CREATE FUNCTION vault.rewrap_candidates(p_active_kek text, p_after text, p_limit integer)
RETURNS TABLE (user_id text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT v.user_id FROM vault.encryption_vaults v
  WHERE v.kek_id IS NOT NULL AND v.kek_id <> p_active_kek AND v.user_id > coalesce(p_after, '')
  ORDER BY v.user_id
  LIMIT least(greatest(coalesce(p_limit, 100), 1), 1000)
$$;
--> statement-breakpoint
-- How many vaults each KEK still wraps (tells the operator when an old KEK may be retired).
CREATE FUNCTION vault.kek_usage()
RETURNS TABLE (kek_id text, vaults bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT v.kek_id, count(*) FROM vault.encryption_vaults v WHERE v.kek_id IS NOT NULL GROUP BY v.kek_id ORDER BY v.kek_id
$$;
--> statement-breakpoint
-- Erasure: replaces the user id of the audit rows of the user in scope (and only that user) by a pseudonym.
CREATE FUNCTION vault.pseudonymize_audit(p_user_id text, p_pseudonym text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n bigint;
BEGIN
  IF p_user_id IS NULL OR p_user_id IS DISTINCT FROM nullif(current_setting('app.current_user_id', true), '') THEN
    RAISE EXCEPTION 'pseudonymize_audit: only the user in scope may be pseudonymized' USING ERRCODE = '42501';
  END IF;
  IF p_pseudonym IS NULL OR p_pseudonym NOT LIKE 'erased:%' THEN
    RAISE EXCEPTION 'pseudonymize_audit: a pseudonym starts with erased:' USING ERRCODE = '22023';
  END IF;
  UPDATE vault.encryption_vault_audit SET user_id = p_pseudonym WHERE user_id = p_user_id;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;
--> statement-breakpoint
ALTER FUNCTION vault.rewrap_candidates(text, text, integer) OWNER TO vault_maint;
--> statement-breakpoint
ALTER FUNCTION vault.kek_usage() OWNER TO vault_maint;
--> statement-breakpoint
ALTER FUNCTION vault.pseudonymize_audit(text, text) OWNER TO vault_maint;
--> statement-breakpoint
REVOKE ALL ON FUNCTION vault.rewrap_candidates(text, text, integer), vault.kek_usage(), vault.pseudonymize_audit(text, text) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION vault.rewrap_candidates(text, text, integer), vault.kek_usage(), vault.pseudonymize_audit(text, text) TO vault_app;
