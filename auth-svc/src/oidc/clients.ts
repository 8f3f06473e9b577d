import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Config } from '../config';
import * as tables from '../db/schema';
import type { Db } from '../db/types';

/** A relying party as auth-svc's configuration declares it. */
export interface ConfiguredClient {
  clientId: string;
  name: string;
  /** Absent = public client (token endpoint auth `none`, PKCE S256 required). */
  secret?: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  firstParty: boolean;
  tokenEndpointAuthMethod: 'client_secret_basic' | 'client_secret_post' | 'none';
  /** The Synapse client: signing in through it records the user's Matrix id. */
  matrix: boolean;
}

/** Synapse first, then OIDC_CLIENTS. */
export function configuredClients(config: Config): ConfiguredClient[] {
  const clients: ConfiguredClient[] = [];
  if (config.SYNAPSE_OIDC_CLIENT_SECRET && config.SYNAPSE_OIDC_REDIRECT_URI)
    clients.push({
      clientId: config.SYNAPSE_OIDC_CLIENT_ID,
      name: 'Matrix',
      secret: config.SYNAPSE_OIDC_CLIENT_SECRET,
      redirectUris: [config.SYNAPSE_OIDC_REDIRECT_URI],
      postLogoutRedirectUris: [],
      firstParty: true,
      tokenEndpointAuthMethod: 'client_secret_basic',
      matrix: true,
    });
  for (const c of config.OIDC_CLIENTS)
    clients.push({
      clientId: c.id,
      name: c.name ?? c.id,
      secret: c.secret,
      redirectUris: c.redirectUris,
      postLogoutRedirectUris: c.postLogoutRedirectUris,
      firstParty: c.firstParty,
      tokenEndpointAuthMethod: c.secret ? c.tokenEndpointAuthMethod : 'none',
      matrix: false,
    });
  return clients;
}

/**
 * Client secrets are stored as SHA-256 (they are long random strings, so a fast hash is enough)
 * and compared in constant time. The plugin calls these through `storeClientSecret`.
 */
export const clientSecretStorage = {
  hash: async (secret: string) => createHash('sha256').update(secret, 'utf8').digest('base64url'),
  verify: async (secret: string, stored: string) => {
    const a = Buffer.from(createHash('sha256').update(secret, 'utf8').digest('base64url'));
    const b = Buffer.from(stored);
    return a.length === b.length && timingSafeEqual(a, b);
  },
};

/**
 * Upserts the configured clients into the plugin's client table. Idempotent (one statement per
 * client, keyed by client_id), so several instances may start at once; configuration always wins.
 */
export async function seedClients(db: Db, clients: ConfiguredClient[]): Promise<void> {
  const now = new Date();
  for (const c of clients) {
    const row = {
      clientSecret: c.secret ? await clientSecretStorage.hash(c.secret) : null,
      disabled: false,
      skipConsent: c.firstParty,
      enableEndSession: true,
      scopes: ['openid', 'profile', 'email', 'offline_access'],
      name: c.name,
      redirectUris: c.redirectUris,
      postLogoutRedirectUris: c.postLogoutRedirectUris,
      tokenEndpointAuthMethod: c.tokenEndpointAuthMethod,
      grantTypes: ['authorization_code', 'refresh_token'],
      responseTypes: ['code'],
      // PKCE (S256, the only method advertised) for every client, confidential ones too (Synapse: `pkce_method: always`).
      requirePKCE: true,
      metadata: { configured: true, matrix: c.matrix },
      updatedAt: now,
    };
    await db
      .insert(tables.oauthClient)
      .values({ id: randomUUID(), clientId: c.clientId, createdAt: now, ...row })
      .onConflictDoUpdate({ target: tables.oauthClient.clientId, set: row });
  }
  // A client removed from the configuration stops working (its row stays for its tokens' history).
  const ids = clients.map((c) => c.clientId);
  await db
    .update(tables.oauthClient)
    .set({ disabled: true, updatedAt: now })
    .where(
      ids.length
        ? sql`${tables.oauthClient.metadata} ->> 'configured' = 'true' and ${tables.oauthClient.clientId} not in (${sql.join(
            ids.map((i) => sql`${i}`),
            sql`, `,
          )})`
        : sql`${tables.oauthClient.metadata} ->> 'configured' = 'true'`,
    );
}
