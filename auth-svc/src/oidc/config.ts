import { z } from 'zod';

/** Matrix localparts allow exactly these characters (spec: user identifiers, "historical" set excluded). */
export const MATRIX_LOCALPART_CHARS = /[^a-z0-9._=\-/]/g;

const secret = z.string().min(32, 'client secrets must be at least 32 characters');
/** Loopback hosts (RFC 8252 §7.3): the only ones a redirect URI may reach over plain http. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** Plain http only to a loopback address (native apps, local development); https and app schemes pass. */
export function isAllowedRedirectScheme(uri: string): boolean {
  const url = new URL(uri);
  return url.protocol !== 'http:' || LOOPBACK_HOSTS.has(url.hostname);
}

const redirectUri = z
  .url()
  .refine((u) => !u.includes('#'), 'a redirect URI has no fragment')
  .refine((u) => !u.includes('*'), 'no wildcards: redirect URIs are matched exactly')
  .refine(isAllowedRedirectScheme, 'plain http only to a loopback address (127.0.0.1, [::1], localhost); use https');

/** One entry of OIDC_CLIENTS. A client without a secret is public (PKCE S256 required). */
const clientEntry = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, dot, dash or underscore (1-64)'),
  secret: secret.optional(),
  redirectUris: z.array(redirectUri).min(1),
  /** First-party clients skip the consent screen. */
  firstParty: z.boolean().default(false),
  name: z.string().min(1).max(80).optional(),
  /** A confidential client authenticates with exactly one method (RFC 7591 `token_endpoint_auth_method`). */
  tokenEndpointAuthMethod: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
  postLogoutRedirectUris: z.array(redirectUri).default([]),
});

export type OidcClientEntry = z.output<typeof clientEntry>;

const clientList = z
  .string()
  .default('[]')
  .transform((raw, ctx) => {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON array' });
      return z.NEVER;
    }
  })
  .pipe(z.array(clientEntry));

const matrixTemplate = z
  .string()
  .regex(/^@[^:@]*\{localpart\}[^:@]*:[A-Za-z0-9.\-[\]:]+$/, 'must look like @{localpart}:matrix.example.org')
  .optional();

/** The OIDC provider's variables, merged into auth-svc's config schema. */
export const oidcEnv = {
  /** Synapse's client id at the provider. */
  SYNAPSE_OIDC_CLIENT_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/)
    .default('synapse'),
  /** Synapse's client secret (client_secret_basic). Unset = no Synapse client. */
  SYNAPSE_OIDC_CLIENT_SECRET: secret.optional(),
  /** e.g. https://matrix.example.org/_synapse/client/oidc/callback (exact match). */
  SYNAPSE_OIDC_REDIRECT_URI: redirectUri.optional(),
  /** Further relying parties: JSON array of { id, secret?, redirectUris, firstParty?, name?, tokenEndpointAuthMethod? }. */
  OIDC_CLIENTS: clientList,
  /** How a Matrix user id is derived from an email's local part, e.g. `@{localpart}:matrix.example.org`. */
  MATRIX_USER_ID_TEMPLATE: matrixTemplate,
  /** Linked from the hosted login page ("No account yet?"), e.g. the web app's sign-up page. Unset = the hosted /auth/sign-up. */
  OIDC_SIGNUP_URL: z.url().optional(),
  /** Linked from the hosted login page ("Forgot your password?"). Unset = the hosted /auth/forgot-password. */
  OIDC_PASSWORD_RESET_URL: z.url().optional(),
  /** Lifetime of an authorization code (seconds). */
  OIDC_CODE_TTL_SECONDS: z.coerce.number().int().min(1).max(600).default(60),
  /** Lifetime of OIDC access tokens (seconds). */
  OIDC_ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(60).max(86_400).default(900),
  /** Lifetime of OIDC refresh tokens (seconds), rotated on every use. */
  OIDC_REFRESH_TOKEN_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(300)
    .default(30 * 86_400),
};

interface OidcConfigView {
  SYNAPSE_OIDC_CLIENT_ID: string;
  SYNAPSE_OIDC_CLIENT_SECRET?: string;
  SYNAPSE_OIDC_REDIRECT_URI?: string;
  OIDC_CLIENTS: OidcClientEntry[];
  MATRIX_USER_ID_TEMPLATE?: string;
}

/** Cross-field rules, called from the service config's superRefine. */
export function oidcRules(cfg: OidcConfigView, ctx: z.RefinementCtx): void {
  const synapse = !!cfg.SYNAPSE_OIDC_CLIENT_SECRET || !!cfg.SYNAPSE_OIDC_REDIRECT_URI;
  if (synapse && !cfg.SYNAPSE_OIDC_CLIENT_SECRET)
    ctx.addIssue({ code: 'custom', path: ['SYNAPSE_OIDC_CLIENT_SECRET'], message: 'required when SYNAPSE_OIDC_REDIRECT_URI is set' });
  if (synapse && !cfg.SYNAPSE_OIDC_REDIRECT_URI)
    ctx.addIssue({ code: 'custom', path: ['SYNAPSE_OIDC_REDIRECT_URI'], message: 'required when SYNAPSE_OIDC_CLIENT_SECRET is set' });
  if (synapse && !cfg.MATRIX_USER_ID_TEMPLATE)
    ctx.addIssue({ code: 'custom', path: ['MATRIX_USER_ID_TEMPLATE'], message: 'required with the Synapse client' });
  const ids = new Set<string>(synapse ? [cfg.SYNAPSE_OIDC_CLIENT_ID] : []);
  for (const c of cfg.OIDC_CLIENTS) {
    if (ids.has(c.id)) ctx.addIssue({ code: 'custom', path: ['OIDC_CLIENTS'], message: `client id "${c.id}" is used twice` });
    ids.add(c.id);
  }
}
