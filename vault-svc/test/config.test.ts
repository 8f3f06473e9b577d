import { describe, expect, it } from 'vitest';
import { loadServiceConfig } from '../src/config';
import { pseudonymFor } from '../src/domain/pseudonym';

describe('vault-svc configuration', () => {
  it('production requires its own tombstone pseudonym secret', () => {
    const prod = { NODE_ENV: 'production', MANA_SERVICE_KEY: 'p'.repeat(40), AMQP_URL: 'amqp://x', METRICS_TOKEN: 'm'.repeat(24) };
    expect(() => loadServiceConfig(prod)).toThrow(/VAULT_PSEUDONYM_SECRET: required in production/);
    expect(() => loadServiceConfig({ ...prod, VAULT_PSEUDONYM_SECRET: 'short' })).toThrow(/VAULT_PSEUDONYM_SECRET/);
    expect(loadServiceConfig({ ...prod, VAULT_PSEUDONYM_SECRET: 's'.repeat(40) }).VAULT_PSEUDONYM_SECRET).toBe('s'.repeat(40));
  });

  it('the tombstone pseudonym is keyed and stable', () => {
    expect(pseudonymFor('a'.repeat(32), 'u1')).toBe(pseudonymFor('a'.repeat(32), 'u1'));
    expect(pseudonymFor('a'.repeat(32), 'u1')).not.toBe(pseudonymFor('b'.repeat(32), 'u1'));
    expect(pseudonymFor('a'.repeat(32), 'u1')).toMatch(/^erased:[0-9a-f]{64}$/);
  });
});
