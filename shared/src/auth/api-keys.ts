import { z } from 'zod';

/**
 * Personal API keys (auth-svc issues them, the gateway exchanges them): the names both sides must agree on.
 * A key is `mana_` + 43 base64url characters (32 random bytes).
 */
export const API_KEY_PREFIX = 'mana_';
const API_KEY_SHAPE = /^mana_[A-Za-z0-9_-]{43}$/;

/** Whether a credential looks like a personal API key (shape only; auth-svc decides whether it is one). */
export function isApiKey(value: string | undefined): value is string {
  return value !== undefined && value.startsWith(API_KEY_PREFIX);
}

/** A well-formed key (anything else is refused without a database lookup). */
export function isWellFormedApiKey(value: string): boolean {
  return API_KEY_SHAPE.test(value);
}

/**
 * What a key may reach (the gateway's route-prefix table, gateway/src/api-key-scopes.ts): `<area>:read`
 * allows GET/HEAD, `<area>` every method. `admin` works only for a key whose owner is an admin.
 */
export const API_KEY_SCOPES = ['me:read', 'me', 'vault:read', 'vault', 'credits:read', 'credits', 'admin'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];
export const apiKeyScope = z.enum(API_KEY_SCOPES);

/** A key created without `scopes` may read, never change or administer. */
// The vault's master key is never a default: a key that can read it must ask for `vault:read` by name.
export const DEFAULT_API_KEY_SCOPES: readonly ApiKeyScope[] = ['me:read', 'credits:read'];

/** The sid of the access tokens minted for a key: revoking it (session.revoked.v1) ends the key everywhere. */
export const apiKeySessionId = (keyId: string) => `ak_${keyId}`;

/** auth-svc's answer to the gateway's exchange (POST /api/v1/internal/api-keys/exchange). */
export const apiKeyExchangeSchema = z.object({
  accessToken: z.string().min(1),
  /** The token's `exp` as ISO time. */
  expiresAt: z.iso.datetime({ offset: true }),
  keyId: z.string().min(1),
  sessionId: z.string().min(1),
  scopes: z.array(apiKeyScope),
});
export type ApiKeyExchange = z.output<typeof apiKeyExchangeSchema>;
