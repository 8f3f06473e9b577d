CREATE TABLE "vault"."encryption_vault_audit" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "vault"."encryption_vault_audit_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"user_id" text NOT NULL,
	"action" text NOT NULL,
	"status" integer NOT NULL,
	"ip" text,
	"user_agent" text,
	"context" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "encryption_vault_audit_action" CHECK (action in ('init', 'fetch', 'rotate', 'recovery_set', 'recovery_cleared', 'zk_enabled', 'zk_disabled', 'rewrap'))
);
--> statement-breakpoint
CREATE TABLE "vault"."encryption_vaults" (
	"user_id" text PRIMARY KEY NOT NULL,
	"wrapped_mk" "bytea",
	"wrap_iv" "bytea",
	"kek_id" text,
	"format_version" smallint DEFAULT 1 NOT NULL,
	"recovery_wrapped_mk" "bytea",
	"recovery_iv" "bytea",
	"recovery_set_at" timestamp with time zone,
	"zero_knowledge" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"rotated_at" timestamp with time zone,
	CONSTRAINT "encryption_vaults_has_wrap" CHECK ("vault"."encryption_vaults"."wrapped_mk" is not null or "vault"."encryption_vaults"."recovery_wrapped_mk" is not null),
	CONSTRAINT "encryption_vaults_wrap_iv_pair" CHECK (("vault"."encryption_vaults"."wrapped_mk" is null) = ("vault"."encryption_vaults"."wrap_iv" is null) and ("vault"."encryption_vaults"."wrapped_mk" is null) = ("vault"."encryption_vaults"."kek_id" is null) and ("vault"."encryption_vaults"."recovery_wrapped_mk" is null) = ("vault"."encryption_vaults"."recovery_iv" is null)),
	CONSTRAINT "encryption_vaults_zk_consistency" CHECK (not "vault"."encryption_vaults"."zero_knowledge" or ("vault"."encryption_vaults"."recovery_wrapped_mk" is not null and "vault"."encryption_vaults"."wrapped_mk" is null))
);
--> statement-breakpoint
CREATE INDEX "encryption_vault_audit_user_idx" ON "vault"."encryption_vault_audit" USING btree ("user_id","created_at");