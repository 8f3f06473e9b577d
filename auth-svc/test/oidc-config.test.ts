import { describe, expect, test } from 'vitest';
import { ConfigError } from '@mana/shared';
import { loadServiceConfig } from '../src/config';
import { configuredClients } from '../src/oidc/clients';
import { localpartOf, matrixLocalpartFromEmail, matrixUserId } from '../src/oidc/matrix';

const SECRET = 's'.repeat(40);
const synapse = {
  SYNAPSE_OIDC_CLIENT_SECRET: SECRET,
  SYNAPSE_OIDC_REDIRECT_URI: 'https://matrix.test/_synapse/client/oidc/callback',
  MATRIX_USER_ID_TEMPLATE: '@{localpart}:matrix.test',
};

function configError(env: Record<string, string>): string {
  try {
    loadServiceConfig({ NODE_ENV: 'test', ...env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('config was accepted');
}

describe('OIDC configuration', () => {
  test('Synapse first (first-party, client_secret_basic), then OIDC_CLIENTS; a client without secret is public', () => {
    const config = loadServiceConfig({
      NODE_ENV: 'test',
      ...synapse,
      OIDC_CLIENTS: JSON.stringify([
        { id: 'spa', redirectUris: ['http://127.0.0.1:5173/cb'] },
        { id: 'wiki', secret: SECRET, redirectUris: ['https://wiki.test/cb'], tokenEndpointAuthMethod: 'client_secret_post' },
      ]),
    });
    expect(configuredClients(config).map((c) => [c.clientId, c.firstParty, c.tokenEndpointAuthMethod, c.matrix])).toEqual([
      ['synapse', true, 'client_secret_basic', true],
      ['spa', false, 'none', false],
      ['wiki', false, 'client_secret_post', false],
    ]);
  });

  test('no Synapse settings: no Synapse client', () => {
    expect(configuredClients(loadServiceConfig({ NODE_ENV: 'test' }))).toEqual([]);
  });

  test.each([
    [{ OIDC_CLIENTS: 'not json' }, 'OIDC_CLIENTS'],
    [{ OIDC_CLIENTS: JSON.stringify([{ id: 'x', redirectUris: ['https://*.test/cb'] }]) }, 'OIDC_CLIENTS'],
    [{ OIDC_CLIENTS: JSON.stringify([{ id: 'x', secret: 'short', redirectUris: ['https://a.test/cb'] }]) }, 'OIDC_CLIENTS'],
    [{ OIDC_CLIENTS: JSON.stringify([{ id: 'x', redirectUris: ['https://a.test/cb'], extra: 1 }]) }, 'OIDC_CLIENTS'],
    [{ ...synapse, OIDC_CLIENTS: JSON.stringify([{ id: 'synapse', redirectUris: ['https://a.test/cb'] }]) }, 'used twice'],
    [{ SYNAPSE_OIDC_CLIENT_SECRET: SECRET }, 'SYNAPSE_OIDC_REDIRECT_URI'],
    [{ ...synapse, MATRIX_USER_ID_TEMPLATE: 'alice' }, 'MATRIX_USER_ID_TEMPLATE'],
    [{ SYNAPSE_OIDC_CLIENT_SECRET: SECRET, SYNAPSE_OIDC_REDIRECT_URI: synapse.SYNAPSE_OIDC_REDIRECT_URI }, 'MATRIX_USER_ID_TEMPLATE'],
  ])('refused at startup: %j', (env, named) => {
    expect(configError(env)).toContain(named);
  });

  test.each([
    [{ ...synapse, SYNAPSE_OIDC_REDIRECT_URI: 'http://matrix.test/_synapse/client/oidc/callback' }, 'SYNAPSE_OIDC_REDIRECT_URI'],
    [{ OIDC_CLIENTS: JSON.stringify([{ id: 'x', redirectUris: ['http://app.test/cb'] }]) }, 'OIDC_CLIENTS'],
    [
      {
        OIDC_CLIENTS: JSON.stringify([{ id: 'x', redirectUris: ['https://app.test/cb'], postLogoutRedirectUris: ['http://10.0.0.1/bye'] }]),
      },
      'OIDC_CLIENTS',
    ],
  ])('a plain-http redirect URI to a non-loopback host is refused at startup, naming the variable: %j', (env, named) => {
    const message = configError(env);
    expect(message).toContain(named);
    expect(message).toContain('plain http only to a loopback address');
  });

  test('plain http to a loopback address (127.0.0.1, [::1], localhost) is accepted; https always', () => {
    const redirectUris = ['http://127.0.0.1:5173/cb', 'http://[::1]:8080/cb', 'http://localhost/cb', 'https://app.test/cb'];
    const config = loadServiceConfig({ NODE_ENV: 'test', OIDC_CLIENTS: JSON.stringify([{ id: 'native', redirectUris }]) });
    expect(configuredClients(config)[0]?.redirectUris).toEqual(redirectUris);
  });
});

describe('Matrix user ids', () => {
  test.each([
    ['Alice@example.com', 'alice'],
    ['Alice.Smith+news@example.com', 'alice.smithnews'],
    ['jörg_müller@example.de', 'jrg_mller'],
    ['a=b/c-d@x.y', 'a=b/c-d'],
    ['äöü@x.y', 'user'],
  ])('%s → %s', (email, localpart) => {
    expect(matrixLocalpartFromEmail(email)).toBe(localpart);
  });

  test('template and localpart round trip', () => {
    const mxid = matrixUserId('@{localpart}:matrix.example.org', 'alice');
    expect(mxid).toBe('@alice:matrix.example.org');
    expect(localpartOf(mxid)).toBe('alice');
  });
});
