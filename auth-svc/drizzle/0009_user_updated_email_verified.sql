-- user.updated.v1 also carries emailVerified (the event schema always allowed it): admin-svc's directory
-- filters on it, and without it a verification would only reach the directory with the next resync.
CREATE OR REPLACE FUNCTION "auth"."user_updated_event"() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  changes jsonb := '{}'::jsonb;
BEGIN
  IF NEW."email" IS DISTINCT FROM OLD."email" THEN changes := changes || jsonb_build_object('email', NEW."email"); END IF;
  IF NEW."name" IS DISTINCT FROM OLD."name" THEN changes := changes || jsonb_build_object('name', left(NEW."name", 256)); END IF;
  IF NEW."role" IS DISTINCT FROM OLD."role" THEN changes := changes || jsonb_build_object('role', NEW."role"); END IF;
  IF NEW."email_verified" IS DISTINCT FROM OLD."email_verified" THEN
    changes := changes || jsonb_build_object('emailVerified', NEW."email_verified");
  END IF;
  IF changes <> '{}'::jsonb THEN
    PERFORM "auth"."enqueue_event"('user.updated.v1', jsonb_build_object('userId', NEW."id", 'changes', changes));
  END IF;
  RETURN NEW;
END $$;
