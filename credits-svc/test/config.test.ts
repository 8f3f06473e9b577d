import { describe, expect, it } from 'vitest';
import { ConfigError } from '@mana/shared';
import { loadServiceConfig } from '../src/config';
import { pseudonymFor } from '../src/events/erasure';
import { requestHash } from '../src/domain/request-hash';

describe('credits-svc configuration', () => {
  it('defaults: signup bonus 150, daily 5, the 100 mana = €1 packages', () => {
    const c = loadServiceConfig({});
    expect(c.CREDITS_SIGNUP_BONUS).toBe(150);
    expect(c.CREDITS_DAILY_FREE).toBe(5);
    expect(c.CREDITS_PACKAGES.map((p) => [p.id, p.credits, p.priceCents, p.currency])).toContainEqual(['mana-100', 100, 100, 'eur']);
  });

  it('reads CREDITS_PACKAGES as JSON and refuses bad or duplicate packages at startup', () => {
    const one = [{ id: 'big', name: 'Big', credits: 10_000, priceCents: 9_000, currency: 'usd' }];
    expect(loadServiceConfig({ CREDITS_PACKAGES: JSON.stringify(one) }).CREDITS_PACKAGES).toEqual(one);
    expect(() => loadServiceConfig({ CREDITS_PACKAGES: '{nope' })).toThrow(ConfigError);
    expect(() => loadServiceConfig({ CREDITS_PACKAGES: JSON.stringify([...one, ...one]) })).toThrow(/CREDITS_PACKAGES/);
    expect(() => loadServiceConfig({ CREDITS_PACKAGES: JSON.stringify([{ ...one[0], credits: 1.5 }]) })).toThrow(/CREDITS_PACKAGES/);
  });

  it('production requires its own pseudonym secret', () => {
    const prod = { NODE_ENV: 'production', MANA_SERVICE_KEY: 'p'.repeat(40), AMQP_URL: 'amqp://x', METRICS_TOKEN: 'm'.repeat(24) };
    expect(() => loadServiceConfig(prod)).toThrow(/CREDITS_PSEUDONYM_SECRET/);
    expect(loadServiceConfig({ ...prod, CREDITS_PSEUDONYM_SECRET: 's'.repeat(40) }).CREDITS_PSEUDONYM_SECRET).toBe('s'.repeat(40));
  });
});

describe('idempotency request hash and erasure pseudonym', () => {
  it('hashes equal requests equally whatever the key order, and different requests differently', () => {
    const a = requestHash({ amount: 5, appId: 'x', metadata: { b: 1, a: [1, { d: 2, c: 3 }] } });
    const b = requestHash({ metadata: { a: [1, { c: 3, d: 2 }], b: 1 }, appId: 'x', amount: 5, description: undefined });
    expect(a).toBe(b);
    expect(requestHash({ amount: 6, appId: 'x' })).not.toBe(requestHash({ amount: 5, appId: 'x' }));
  });

  it('the pseudonym is keyed: stable per secret and user, different with another secret', () => {
    const p = pseudonymFor('k'.repeat(32), 'user-1');
    expect(p).toMatch(/^erased:[0-9a-f]{64}$/);
    expect(pseudonymFor('k'.repeat(32), 'user-1')).toBe(p);
    expect(pseudonymFor('j'.repeat(32), 'user-1')).not.toBe(p);
    expect(p).not.toContain('user-1');
  });
});
