import { passkeyClient } from '@better-auth/passkey/client';
import { createAuthClient } from 'better-auth/client';
import { magicLinkClient, organizationClient, twoFactorClient } from 'better-auth/client/plugins';

/**
 * The Better Auth client matching this server's plugin set, for TypeScript code in this repository
 * (end-to-end tests, benchmarks). Later plugins add their client plugins here.
 */
export function createManaAuthClient(opts: { baseURL: string; fetch?: typeof fetch }) {
  return createAuthClient({
    baseURL: opts.baseURL,
    fetchOptions: opts.fetch ? { customFetchImpl: opts.fetch } : undefined,
    plugins: [twoFactorClient(), magicLinkClient(), organizationClient(), passkeyClient()],
  });
}

export type ManaAuthClient = ReturnType<typeof createManaAuthClient>;
