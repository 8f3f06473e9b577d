CREATE TABLE "auth"."session_policy" (
	"id" boolean PRIMARY KEY DEFAULT true NOT NULL,
	"max_lifetime_seconds" integer NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "session_policy_single_row" CHECK ("auth"."session_policy"."id"),
	CONSTRAINT "session_policy_positive" CHECK ("auth"."session_policy"."max_lifetime_seconds" > 0)
);
--> statement-breakpoint
ALTER TABLE "auth"."refresh_tokens" ADD COLUMN "successor_sealed" text;