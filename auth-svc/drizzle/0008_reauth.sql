CREATE TABLE "auth"."session_reauth" (
	"session_id" text PRIMARY KEY NOT NULL,
	"reauthenticated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "auth"."session_reauth" ADD CONSTRAINT "session_reauth_session_id_session_id_fk" FOREIGN KEY ("session_id") REFERENCES "auth"."session"("id") ON DELETE cascade ON UPDATE no action;