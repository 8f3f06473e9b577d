import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { startStack, type Stack } from '../helpers/stack';
import { call } from '../helpers/http';
import { SYNAPSE_SECRET, authorizationRequest, authorizeViaLoginForm, newBrowser, oidcEnv, registerUser } from './oidc-helpers';

const SYNAPSE_CB = 'https://matrix.test/_synapse/client/oidc/callback';
const SCRIPT = fileURLToPath(new URL('./fixtures/synapse-id-token.py', import.meta.url));
/** Debian's interpreter, where `.ci/run` installs python3-authlib (a pyenv shim on PATH would not see it). */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

interface AuthlibAnswer {
  authlib: string;
  claims?: Record<string, unknown>;
  error?: string;
  message?: string;
}

/** Runs Synapse's `_parse_id_token` sequence (authlib JsonWebToken → CodeIDToken → validate(leeway=120)). */
function synapseParse(input: Record<string, unknown>): Promise<AuthlibAnswer> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, [SCRIPT], { timeout: 30_000 }, (err, stdout, stderr) => {
      try {
        resolve(JSON.parse(stdout) as AuthlibAnswer);
      } catch {
        reject(new Error(`python failed (${err?.message ?? 'no output'}): ${stderr}`));
      }
    });
    child.stdin?.end(JSON.stringify(input));
  });
}

let s: Stack;
let synapse: oidc.Configuration;

beforeAll(async () => {
  s = await startStack({ env: oidcEnv({ synapse: SYNAPSE_CB, webapp: 'https://webapp.test/callback', spa: 'http://127.0.0.1:9/cb' }) });
  synapse = await oidc.discovery(new URL(s.gatewayUrl), 'synapse', undefined, oidc.ClientSecretBasic(SYNAPSE_SECRET), {
    execute: [oidc.allowInsecureRequests],
  });
}, 60_000);

afterAll(async () => {
  await s?.close();
});

describe("Synapse accepts our id_tokens (authlib, Synapse's call sequence)", () => {
  test('both profile modes: id_token claims (auto) and userinfo_endpoint (access token passed to CodeIDToken)', async () => {
    const user = await registerUser(s);
    // Synapse's own request: its configured scopes, state, nonce, PKCE (pkce_method: always).
    const req = await authorizationRequest(synapse, SYNAPSE_CB, 'openid profile email');
    const { url } = await authorizeViaLoginForm(s, newBrowser(s), req.url, user, SYNAPSE_CB);
    const tokens = await oidc.authorizationCodeGrant(synapse, url, req.checks);
    const idToken = tokens.id_token ?? '';
    const meta = synapse.serverMetadata();
    const jwks = await call<{ keys: unknown[] }>(String(meta.jwks_uri));
    const base = {
      idToken,
      jwks: jwks.body,
      issuer: meta.issuer,
      clientId: 'synapse',
      nonce: req.nonce,
      algs: meta.id_token_signing_alg_values_supported ?? ['RS256'],
    };
    for (const mode of [base, { ...base, accessToken: tokens.access_token }]) {
      const answer = await synapseParse(mode);
      expect(answer.error, `${answer.error}: ${answer.message} (authlib ${answer.authlib})`).toBeUndefined();
      expect(answer.claims).toMatchObject({ sub: user.userId, email: user.email, aud: 'synapse', iss: s.gatewayUrl, nonce: req.nonce });
    }

    // at_hash is optional in the code flow, and authlib knows no hash for EdDSA: it is not sent.
    expect(decodeJwt(idToken).at_hash).toBeUndefined();

    // The check is real: another client id, another nonce or a tampered token are refused.
    expect((await synapseParse({ ...base, clientId: 'someone-else' })).error).toBeDefined();
    expect((await synapseParse({ ...base, nonce: 'another-nonce' })).error).toBeDefined();
    expect((await synapseParse({ ...base, idToken: `${idToken.slice(0, -4)}AAAA` })).error).toBeDefined();
  });
});
