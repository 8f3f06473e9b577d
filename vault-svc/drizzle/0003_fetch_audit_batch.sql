-- Group commit for the audit rows of key fetches (the hot path): many users' `fetch` rows in one INSERT.
-- Row-level security lets vault_app insert only rows of the user in scope, so a multi-user batch goes through
-- this SECURITY DEFINER function, owned by vault_maint, which can insert `fetch` rows and nothing else.
-- (It adds no real power: vault_app chooses app.current_user_id itself and could write such rows one by one.)
GRANT INSERT (user_id, action, status, ip, user_agent, context) ON vault.encryption_vault_audit TO vault_maint;
--> statement-breakpoint
GRANT USAGE ON SEQUENCE vault.encryption_vault_audit_id_seq TO vault_maint;
--> statement-breakpoint
CREATE POLICY encryption_vault_audit_maint_append_fetch ON vault.encryption_vault_audit FOR INSERT TO vault_maint
  WITH CHECK (action = 'fetch' AND user_id <> '' AND user_id NOT LIKE 'erased:%');
--> statement-breakpoint
CREATE FUNCTION vault.append_fetch_audit(p_rows jsonb)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH ins AS (
    INSERT INTO vault.encryption_vault_audit (user_id, action, status, ip, user_agent, context)
    SELECT r.user_id, 'fetch', r.status, r.ip, r.user_agent, coalesce(r.context, '{}'::jsonb)
    FROM jsonb_to_recordset(p_rows) AS r(user_id text, status integer, ip text, user_agent text, context jsonb)
    RETURNING 1
  )
  SELECT count(*)::integer FROM ins
$$;
--> statement-breakpoint
ALTER FUNCTION vault.append_fetch_audit(jsonb) OWNER TO vault_maint;
--> statement-breakpoint
REVOKE ALL ON FUNCTION vault.append_fetch_audit(jsonb) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION vault.append_fetch_audit(jsonb) TO vault_app;
