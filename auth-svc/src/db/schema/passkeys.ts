import { boolean, index, integer, text } from 'drizzle-orm/pg-core';
import { authSchema, ts } from './base';
import { user } from './core';

/**
 * Better Auth passkey plugin (WebAuthn credentials). `public_key` is the credential's COSE public key
 * (base64): not a secret, but never shown outside auth-svc (the GDPR view lists id, name, createdAt,
 * deviceType and backedUp only). A credential ID belongs to one passkey.
 */
export const passkey = authSchema.table(
  'passkey',
  {
    id: text('id').primaryKey(),
    name: text('name'),
    publicKey: text('public_key').notNull(),
    userId: text('user_id')
      .notNull()
      .references(() => user.id, { onDelete: 'cascade' }),
    credentialID: text('credential_id').notNull().unique(),
    counter: integer('counter').notNull(),
    /** `singleDevice` or `multiDevice` (synced passkey). */
    deviceType: text('device_type').notNull(),
    backedUp: boolean('backed_up').notNull(),
    transports: text('transports'),
    createdAt: ts('created_at').defaultNow(),
    aaguid: text('aaguid'),
  },
  (t) => [index('passkey_user_idx').on(t.userId)],
);
