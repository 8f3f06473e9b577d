-- Search, roles and grants for the directory and the audit log (hand-written: drizzle-kit cannot express them).
--
-- pg_trgm ships with PostgreSQL's contrib (Debian: postgresql-contrib, part of the server package) and is a
-- trusted extension: a database owner may create it. One GIN trigram index over lower(email) and lower(name)
-- serves case-insensitive prefix and substring search (`LIKE '%term%'`) at a million rows.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
--> statement-breakpoint
CREATE INDEX "directory_users_search_idx" ON "admin"."directory_users"
  USING gin ((lower("email") || ' ' || lower("name")) gin_trgm_ops);
--> statement-breakpoint
-- Roles are cluster-wide while this schema lives in one database of it (tests run many databases in one
-- cluster, concurrently): created only if missing, a concurrent creator tolerated.
--   admin_app    every admin-svc transaction runs as it (SET LOCAL ROLE); neither superuser nor BYPASSRLS.
--                The audit log is append-only for it: SELECT and INSERT, no UPDATE, no DELETE.
--   admin_maint  owns the SECURITY DEFINER function that pseudonymizes an erased user's audit entries;
--                nobody logs in as it.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'admin_app') THEN
    BEGIN
      CREATE ROLE admin_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'admin_maint') THEN
    BEGIN
      CREATE ROLE admin_maint NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname IN ('admin_app', 'admin_maint') AND (rolsuper OR rolbypassrls)) THEN
    RAISE EXCEPTION 'roles admin_app and admin_maint must be neither SUPERUSER nor BYPASSRLS';
  END IF;
  IF NOT pg_has_role(current_user, 'admin_app', 'MEMBER') THEN
    EXECUTE format('GRANT admin_app TO %I', current_user);
  END IF;
  IF NOT pg_has_role(current_user, 'admin_maint', 'MEMBER') THEN
    EXECUTE format('GRANT admin_maint TO %I', current_user);
  END IF;
END $$;
--> statement-breakpoint
GRANT USAGE ON SCHEMA admin TO admin_app, admin_maint;
--> statement-breakpoint
REVOKE ALL ON admin.audit_log FROM PUBLIC;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON admin.directory_users, admin.erased_users, admin.outbox, admin.processed_messages TO admin_app;
--> statement-breakpoint
-- Append-only: no UPDATE, no DELETE, no TRUNCATE for the service role.
GRANT SELECT, INSERT ON admin.audit_log TO admin_app;
--> statement-breakpoint
GRANT SELECT (actor_id, target_id), UPDATE (actor_id, target_id) ON admin.audit_log TO admin_maint;
--> statement-breakpoint
-- Erasure: the entries naming the user (as actor or target) keep a keyed pseudonym instead of the id.
CREATE FUNCTION admin.pseudonymize_audit(p_user_id text, p_pseudonym text)
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
  UPDATE admin.audit_log SET actor_id = p_pseudonym WHERE actor_id = p_user_id;
  GET DIAGNOSTICS m = ROW_COUNT;
  RETURN n + m;
END
$$;
--> statement-breakpoint
ALTER FUNCTION admin.pseudonymize_audit(text, text) OWNER TO admin_maint;
--> statement-breakpoint
REVOKE ALL ON FUNCTION admin.pseudonymize_audit(text, text) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION admin.pseudonymize_audit(text, text) TO admin_app;
