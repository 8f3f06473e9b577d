import { describe, expect, test } from 'vitest';
import { ConfigError } from '@mana/shared';
import { relyingParty } from '../src/auth/plugins/passkey/config';
import { loadServiceConfig } from '../src/config';

const load = (env: Record<string, string>) => loadServiceConfig({ NODE_ENV: 'test', ...env });

function configError(env: Record<string, string>): string {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('config was accepted');
}

describe('passkey relying party configuration', () => {
  test('defaults: RP ID = BASE_URL host, name Mana, only the public origin', () => {
    expect(relyingParty(load({ BASE_URL: 'https://auth.mana.how' }))).toEqual({
      rpID: 'auth.mana.how',
      rpName: 'Mana',
      origins: ['https://auth.mana.how'],
    });
  });

  test('COOKIE_DOMAIN widens the RP ID to the parent domain; the CORS origins on it are accepted, others not', () => {
    const rp = relyingParty(
      load({
        BASE_URL: 'https://auth.mana.how/',
        COOKIE_DOMAIN: '.mana.how',
        CORS_ORIGINS: 'https://app.mana.how,https://partner.example.com,http://localhost:5173',
        RP_NAME: 'Mana (staging)',
      }),
    );
    expect(rp).toEqual({ rpID: 'mana.how', rpName: 'Mana (staging)', origins: ['https://auth.mana.how', 'https://app.mana.how'] });
  });

  test('RP_ID and PASSKEY_ORIGINS set explicitly win over the derived values', () => {
    const rp = relyingParty(
      load({ BASE_URL: 'https://auth.mana.how', RP_ID: 'mana.how', PASSKEY_ORIGINS: 'https://mana.how, https://auth.mana.how' }),
    );
    expect(rp).toEqual({ rpID: 'mana.how', rpName: 'Mana', origins: ['https://mana.how', 'https://auth.mana.how'] });
  });

  test('startup refuses an origin off the RP ID, a non-origin and a malformed RP ID, naming the variable', () => {
    expect(configError({ BASE_URL: 'https://auth.mana.how', RP_ID: 'other.example' })).toMatch(
      /RP_ID.*https:\/\/auth\.mana\.how is not on the relying party ID "other\.example"/,
    );
    expect(configError({ BASE_URL: 'https://auth.mana.how', PASSKEY_ORIGINS: 'https://evil.example' })).toMatch(/PASSKEY_ORIGINS/);
    expect(configError({ BASE_URL: 'https://auth.mana.how', PASSKEY_ORIGINS: 'https://auth.mana.how/login' })).toMatch(
      /PASSKEY_ORIGINS.*not an origin/,
    );
    expect(configError({ RP_ID: 'https://mana.how' })).toMatch(/RP_ID/);
    // A look-alike suffix is not a subdomain.
    expect(configError({ BASE_URL: 'https://auth.mana.how', RP_ID: 'mana.how', PASSKEY_ORIGINS: 'https://evilmana.how' })).toMatch(
      /not on the relying party ID/,
    );
  });
});
