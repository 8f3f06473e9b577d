import { oauthProvider } from '@better-auth/oauth-provider';
import type { BetterAuthPlugin } from 'better-auth';
import type { Config } from '../config';
import type { Db } from '../db/types';
import { asClaimUser, identityClaims } from './claims';
import { clientSecretStorage, configuredClients, seedClients } from './clients';
import { oidcHardening } from './hardening';
import { oauthRfcErrors } from './rfc-errors';

export const OIDC_SCOPES = ['openid', 'profile', 'email', 'offline_access'];
const CLAIMS_SUPPORTED = [
  'sub',
  'iss',
  'aud',
  'exp',
  'iat',
  'auth_time',
  'nonce',
  'sid',
  'email',
  'email_verified',
  'name',
  'preferred_username',
];

/** Where the hosted pages live (through the gateway's `/auth/*` route). */
export const hostedPagePath = { login: '/auth/login', consent: '/auth/consent' } as const;

/**
 * The OIDC provider: @better-auth/oauth-provider with the hosted login and consent pages, the
 * configured clients seeded at startup, id_tokens signed by the JWT plugin (EdDSA), and the
 * Matrix link recorded when the Synapse client signs a user in.
 */
export function oidcPlugins(config: Config, db: Db) {
  const base = config.BASE_URL.replace(/\/$/, '');
  const clients = configuredClients(config);
  const matrixTemplate = config.MATRIX_USER_ID_TEMPLATE;
  const isMatrixClient = (clientId: unknown) => clients.some((c) => c.matrix && c.clientId === clientId);

  const provider = oauthProvider({
    loginPage: `${base}${hostedPagePath.login}`,
    consentPage: `${base}${hostedPagePath.consent}`,
    scopes: OIDC_SCOPES,
    grantTypes: ['authorization_code', 'refresh_token'],
    codeExpiresIn: config.OIDC_CODE_TTL_SECONDS,
    accessTokenExpiresIn: config.OIDC_ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenExpiresIn: config.OIDC_REFRESH_TOKEN_TTL_SECONDS,
    refreshTokenReuseInterval: 0,
    storeClientSecret: clientSecretStorage,
    storeTokens: 'hashed',
    allowDynamicClientRegistration: false,
    enforcePerClientResources: false,
    advertisedMetadata: { scopes_supported: OIDC_SCOPES, claims_supported: CLAIMS_SUPPORTED },
    customIdTokenClaims: async ({ user, scopes, metadata }) =>
      identityClaims(db, asClaimUser(user), scopes, { matrixTemplate, matrixClient: metadata?.matrix === true }),
    customUserInfoClaims: async ({ user, scopes, jwt }) =>
      identityClaims(db, asClaimUser(user), scopes, { matrixTemplate, matrixClient: isMatrixClient(jwt.azp ?? jwt.client_id) }),
  });

  const seed = {
    id: 'mana-oidc-clients',
    init: async () => {
      await seedClients(db, clients);
    },
  } satisfies BetterAuthPlugin;

  const { before: queryCheck, ...providerHooks } = provider.hooks;
  return {
    /**
     * The provider's one before hook (it refuses a request whose signed `oauth_query` is forged or expired), as a
     * plugin of its own that auth.ts places before the lockout: a request it refuses costs no attempt. After the
     * lockout it came after the attempt was charged, and a before hook's refusal skips every after hook, so the
     * charge was never given back.
     */
    beforeLockout: [{ id: 'mana-oauth-query-check', hooks: { before: queryCheck } }] as const,
    plugins: [{ ...provider, hooks: providerHooks }, seed, oauthRfcErrors(), oidcHardening(db)] as const,
  };
}
