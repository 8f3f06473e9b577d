CREATE TABLE "admin"."audit_log" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "admin"."audit_log_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"actor_id" text NOT NULL,
	"action" text NOT NULL,
	"target_id" text,
	"reason" text,
	"changes" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"request_id" text,
	"ip_address" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "admin"."directory_users" (
	"id" text PRIMARY KEY NOT NULL,
	"email" text DEFAULT '' NOT NULL,
	"email_at" timestamp with time zone DEFAULT '-infinity' NOT NULL,
	"name" text DEFAULT '' NOT NULL,
	"name_at" timestamp with time zone DEFAULT '-infinity' NOT NULL,
	"role" text DEFAULT 'user' NOT NULL,
	"role_at" timestamp with time zone DEFAULT '-infinity' NOT NULL,
	"email_verified" boolean DEFAULT false NOT NULL,
	"email_verified_at" timestamp with time zone DEFAULT '-infinity' NOT NULL,
	"tier" text NOT NULL,
	"banned" boolean DEFAULT false NOT NULL,
	"ban_reason" text,
	"ban_expires_at" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "admin"."erased_users" (
	"pseudonym" text PRIMARY KEY NOT NULL,
	"erased_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "audit_log_target_idx" ON "admin"."audit_log" USING btree ("target_id","id");--> statement-breakpoint
CREATE INDEX "audit_log_actor_idx" ON "admin"."audit_log" USING btree ("actor_id","id");--> statement-breakpoint
CREATE INDEX "directory_users_created_idx" ON "admin"."directory_users" USING btree ("created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "directory_users_email_idx" ON "admin"."directory_users" USING btree ("email","id");--> statement-breakpoint
CREATE INDEX "directory_users_name_idx" ON "admin"."directory_users" USING btree ("name","id");