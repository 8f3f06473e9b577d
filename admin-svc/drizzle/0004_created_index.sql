DROP INDEX "admin"."directory_users_created_idx";--> statement-breakpoint
CREATE INDEX "directory_users_created_idx" ON "admin"."directory_users" USING btree ("created_at","id");