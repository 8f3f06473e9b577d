-- An erased admin's own entries (as actor) lose the IP address they were made from as well: it is the actor's
-- personal data. (Entries about an erased target keep the acting admin's IP: that is not the target's.)
GRANT UPDATE (ip_address) ON admin.audit_log TO admin_maint;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION admin.pseudonymize_audit(p_user_id text, p_pseudonym text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n bigint;
  m bigint;
BEGIN
  IF p_user_id IS NULL OR p_user_id = '' OR p_user_id LIKE 'erased:%' THEN
    RAISE EXCEPTION 'pseudonymize_audit: not a user id' USING ERRCODE = '22023';
  END IF;
  IF p_pseudonym IS NULL OR p_pseudonym NOT LIKE 'erased:%' THEN
    RAISE EXCEPTION 'pseudonymize_audit: a pseudonym starts with erased:' USING ERRCODE = '22023';
  END IF;
  UPDATE admin.audit_log SET target_id = p_pseudonym WHERE target_id = p_user_id;
  GET DIAGNOSTICS n = ROW_COUNT;
  UPDATE admin.audit_log SET actor_id = p_pseudonym, ip_address = NULL WHERE actor_id = p_user_id;
  GET DIAGNOSTICS m = ROW_COUNT;
  RETURN n + m;
END
$$;
