-- An audit row names a user only while the user's vault exists. The erasure deletes the vault row and then
-- pseudonymizes the user's audit rows; an audit insert that did not order itself with that delete (a key fetch
-- that read the vault just before, a failed action after) named the erased user again. Every audit insert now
-- takes the vault row FOR KEY SHARE first: the erasure's DELETE waits for the insert's commit (and its
-- pseudonymize statement, which comes after the delete, then sees the row), or the insert waits for the
-- erasure's commit and finds no vault (and writes nothing).
--
-- The fetch group commit (vault_maint's SECURITY DEFINER function) needs to lock the rows it joins: a row lock
-- needs an UPDATE grant and, under row-level security, an UPDATE policy whose USING admits the row. The policy's
-- WITH CHECK (false) refuses every new row version, so vault_maint can lock vault rows but never change one.
GRANT UPDATE (user_id) ON vault.encryption_vaults TO vault_maint;
--> statement-breakpoint
CREATE POLICY encryption_vaults_maint_lock ON vault.encryption_vaults FOR UPDATE TO vault_maint
  USING (true)
  WITH CHECK (false);
--> statement-breakpoint
-- It now answers which users' rows it wrote (a key is answered only with its row): the return type changes,
-- so the function is dropped and created again (an older instance's `SELECT vault.append_fetch_audit(...)`
-- still works and ignores the answer).
DROP FUNCTION vault.append_fetch_audit(jsonb);
--> statement-breakpoint
CREATE FUNCTION vault.append_fetch_audit(p_rows jsonb)
RETURNS text[]
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH r AS MATERIALIZED (
    SELECT * FROM jsonb_to_recordset(p_rows) AS r(user_id text, status integer, ip text, user_agent text, context jsonb)
  ), vaults AS MATERIALIZED (
    -- Locked in user order (code points, as the erasure helper sorts a batch it erases): no lock cycle between the two.
    SELECT v.user_id FROM vault.encryption_vaults v WHERE v.user_id IN (SELECT r.user_id FROM r) ORDER BY v.user_id COLLATE "C" FOR KEY SHARE
  ), ins AS (
    INSERT INTO vault.encryption_vault_audit (user_id, action, status, ip, user_agent, context)
    SELECT r.user_id, 'fetch', r.status, r.ip, r.user_agent, coalesce(r.context, '{}'::jsonb)
    FROM r JOIN vaults ON vaults.user_id = r.user_id
    RETURNING user_id
  )
  SELECT coalesce(array_agg(DISTINCT ins.user_id), '{}'::text[]) FROM ins
$$;
--> statement-breakpoint
ALTER FUNCTION vault.append_fetch_audit(jsonb) OWNER TO vault_maint;
--> statement-breakpoint
REVOKE ALL ON FUNCTION vault.append_fetch_audit(jsonb) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION vault.append_fetch_audit(jsonb) TO vault_app;
