CREATE TABLE "gdpr"."erasure_participants" (
	"request_id" uuid NOT NULL,
	"service" text NOT NULL,
	"completed_at" timestamp with time zone,
	"deleted" jsonb,
	"pseudonymized" jsonb,
	"retained" jsonb,
	CONSTRAINT "erasure_participants_request_id_service_pk" PRIMARY KEY("request_id","service")
);
--> statement-breakpoint
CREATE TABLE "gdpr"."erasure_requests" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" text,
	"subject" text NOT NULL,
	"origin" text NOT NULL,
	"actor_subject" text,
	"reason" text,
	"status" text DEFAULT 'in_progress' NOT NULL,
	"token_hashes" text[] NOT NULL,
	"requested_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deadline_at" timestamp with time zone NOT NULL,
	"completed_at" timestamp with time zone,
	"attempts" integer DEFAULT 1 NOT NULL,
	"next_attempt_at" timestamp with time zone NOT NULL,
	"receipt" text
);
--> statement-breakpoint
CREATE TABLE "gdpr"."export_log" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"subject" text NOT NULL,
	"exported_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "gdpr"."signing_keys" (
	"kid" text PRIMARY KEY NOT NULL,
	"public_jwk" jsonb NOT NULL,
	"private_key_enc" text NOT NULL,
	"active" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"retired_at" timestamp with time zone
);
--> statement-breakpoint
CREATE UNIQUE INDEX "erasure_requests_open_subject_idx" ON "gdpr"."erasure_requests" USING btree ("subject") WHERE "gdpr"."erasure_requests"."status" <> 'completed';--> statement-breakpoint
CREATE INDEX "erasure_requests_due_idx" ON "gdpr"."erasure_requests" USING btree ("next_attempt_at") WHERE "gdpr"."erasure_requests"."status" <> 'completed';--> statement-breakpoint
CREATE INDEX "export_log_subject_idx" ON "gdpr"."export_log" USING btree ("subject","exported_at");