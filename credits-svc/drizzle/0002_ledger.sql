CREATE TABLE "credits"."grants" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"category" text NOT NULL,
	"amount" bigint NOT NULL,
	"remaining" bigint NOT NULL,
	"expires_at" timestamp with time zone,
	"source_key" text NOT NULL,
	"reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "grants_category" CHECK ("credits"."grants"."category" in ('daily', 'promo', 'paid')),
	CONSTRAINT "grants_remaining" CHECK ("credits"."grants"."amount" > 0 and "credits"."grants"."remaining" >= 0 and "credits"."grants"."remaining" <= "credits"."grants"."amount")
);
--> statement-breakpoint
CREATE TABLE "credits"."ledger_postings" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "credits"."ledger_postings_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"transaction_id" uuid NOT NULL,
	"owner" text NOT NULL,
	"account" text NOT NULL,
	"grant_id" uuid,
	"amount" bigint NOT NULL,
	CONSTRAINT "ledger_postings_account" CHECK ("credits"."ledger_postings"."account" in ('available', 'held', 'system:issuance', 'system:revenue', 'system:breakage', 'system:payments')),
	CONSTRAINT "ledger_postings_nonzero" CHECK ("credits"."ledger_postings"."amount" <> 0)
);
--> statement-breakpoint
CREATE TABLE "credits"."ledger_transactions" (
	"id" uuid PRIMARY KEY NOT NULL,
	"seq" bigint GENERATED ALWAYS AS IDENTITY (sequence name "credits"."ledger_transactions_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"owner" text NOT NULL,
	"kind" text NOT NULL,
	"amount" bigint NOT NULL,
	"balance_after" bigint NOT NULL,
	"app_id" text,
	"description" text,
	"grant_category" text,
	"actor" text,
	"idempotency_key" text,
	"request_hash" text,
	"reservation_id" uuid,
	"purchase_id" uuid,
	"metadata" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "credits"."purchases" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"actor" text NOT NULL,
	"package_id" text NOT NULL,
	"credits" bigint NOT NULL,
	"amount_cents" integer NOT NULL,
	"currency" text NOT NULL,
	"status" text NOT NULL,
	"stripe_session_id" text,
	"stripe_payment_intent" text,
	"grant_id" uuid,
	"refunded_credits" bigint DEFAULT 0 NOT NULL,
	"refund_shortfall" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone,
	"refunded_at" timestamp with time zone,
	CONSTRAINT "purchases_status" CHECK ("credits"."purchases"."status" in ('pending', 'completed', 'refunded'))
);
--> statement-breakpoint
CREATE TABLE "credits"."reservation_allocations" (
	"reservation_id" uuid NOT NULL,
	"grant_id" uuid NOT NULL,
	"owner" text NOT NULL,
	"position" integer NOT NULL,
	"amount" bigint NOT NULL,
	CONSTRAINT "reservation_allocations_reservation_id_grant_id_pk" PRIMARY KEY("reservation_id","grant_id"),
	CONSTRAINT "reservation_allocations_amount" CHECK ("credits"."reservation_allocations"."amount" > 0)
);
--> statement-breakpoint
CREATE TABLE "credits"."reservations" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"amount" bigint NOT NULL,
	"captured" bigint,
	"status" text NOT NULL,
	"app_id" text NOT NULL,
	"description" text,
	"idempotency_key" text NOT NULL,
	"request_hash" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"resolved_at" timestamp with time zone,
	CONSTRAINT "reservations_status" CHECK ("credits"."reservations"."status" in ('held', 'captured', 'released', 'expired')),
	CONSTRAINT "reservations_amount" CHECK ("credits"."reservations"."amount" > 0 and ("credits"."reservations"."captured" is null or ("credits"."reservations"."captured" >= 0 and "credits"."reservations"."captured" <= "credits"."reservations"."amount")))
);
--> statement-breakpoint
CREATE TABLE "credits"."wallets" (
	"owner" text PRIMARY KEY NOT NULL,
	"available" bigint DEFAULT 0 NOT NULL,
	"held" bigint DEFAULT 0 NOT NULL,
	"total_earned" bigint DEFAULT 0 NOT NULL,
	"total_spent" bigint DEFAULT 0 NOT NULL,
	"next_daily_at" timestamp with time zone,
	"version" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "wallets_non_negative" CHECK ("credits"."wallets"."available" >= 0 and "credits"."wallets"."held" >= 0),
	CONSTRAINT "wallets_totals_non_negative" CHECK ("credits"."wallets"."total_earned" >= 0 and "credits"."wallets"."total_spent" >= 0)
);
--> statement-breakpoint
CREATE TABLE "credits"."webhook_events" (
	"id" text PRIMARY KEY NOT NULL,
	"type" text NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "grants_source_key_uq" ON "credits"."grants" USING btree ("source_key");--> statement-breakpoint
CREATE INDEX "grants_burn_idx" ON "credits"."grants" USING btree ("owner","expires_at") WHERE "credits"."grants"."remaining" > 0;--> statement-breakpoint
CREATE INDEX "ledger_postings_tx_idx" ON "credits"."ledger_postings" USING btree ("transaction_id");--> statement-breakpoint
CREATE INDEX "ledger_postings_owner_idx" ON "credits"."ledger_postings" USING btree ("owner","account");--> statement-breakpoint
CREATE UNIQUE INDEX "ledger_transactions_idem_uq" ON "credits"."ledger_transactions" USING btree ("owner","idempotency_key") WHERE "credits"."ledger_transactions"."idempotency_key" is not null;--> statement-breakpoint
CREATE INDEX "ledger_transactions_owner_seq_idx" ON "credits"."ledger_transactions" USING btree ("owner","seq");--> statement-breakpoint
CREATE INDEX "purchases_owner_idx" ON "credits"."purchases" USING btree ("owner","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "purchases_session_uq" ON "credits"."purchases" USING btree ("stripe_session_id");--> statement-breakpoint
CREATE INDEX "purchases_payment_intent_idx" ON "credits"."purchases" USING btree ("stripe_payment_intent");--> statement-breakpoint
CREATE UNIQUE INDEX "reservations_idem_uq" ON "credits"."reservations" USING btree ("owner","idempotency_key");--> statement-breakpoint
CREATE INDEX "reservations_expiry_idx" ON "credits"."reservations" USING btree ("expires_at") WHERE "credits"."reservations"."status" = 'held';