import { describe, expect, it } from 'vitest';
import { createLogger } from '@mana/shared';
import { loadServiceConfig } from '../src/config';
import { backoffMs } from '../src/domain/erasure';
import { deriveSecrets, newCapabilityToken, seal, tokenMatches, unseal } from '../src/domain/secrets';
import { createSources, gather, type SourceFetch, type SourceName } from '../src/domain/sources';
import { summarize } from '../src/domain/summary';

const logger = createLogger('gdpr-test', 'silent');

describe('gdpr-svc domain', () => {
  it('hashes user ids with a key: stable, different per secret, never the id itself', () => {
    const a = deriveSecrets('a'.repeat(32));
    const b = deriveSecrets('b'.repeat(32));
    expect(a.subject('user-1')).toBe(a.subject('user-1'));
    expect(a.subject('user-1')).not.toBe(b.subject('user-1'));
    expect(a.subject('user-1')).not.toContain('user-1');
  });

  it('seals the signing key with AES-GCM; a changed byte does not open', () => {
    const { sealKey } = deriveSecrets('s'.repeat(32));
    const sealed = seal(sealKey, '{"d":"secret"}');
    expect(unseal(sealKey, sealed)).toBe('{"d":"secret"}');
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[3] ?? '', 'base64url');
    ct[0] = (ct[0] ?? 0) ^ 1;
    expect(() => unseal(sealKey, [...parts.slice(0, 3), ct.toString('base64url')].join('.'))).toThrow();
    expect(() => unseal(deriveSecrets('t'.repeat(32)).sealKey, sealed)).toThrow();
  });

  it('matches capability tokens against any stored hash, and nothing else', () => {
    const one = newCapabilityToken();
    const two = newCapabilityToken();
    expect(tokenMatches(one.token, [one.hash, two.hash])).toBe(true);
    expect(tokenMatches(two.token, [one.hash, two.hash])).toBe(true);
    expect(tokenMatches(one.hash, [one.hash])).toBe(false);
    expect(tokenMatches('', [])).toBe(false);
  });

  it('backs off by doubling, capped at 64 times the first delay', () => {
    expect([1, 2, 3, 7, 8, 50].map((n) => backoffMs(100, n))).toEqual([100, 200, 400, 6400, 6400, 6400]);
  });

  it('marks a failing or slow source unavailable and an unconfigured one not_configured', async () => {
    const ok: SourceFetch = async () => ({ fine: true });
    const fetchers: Record<SourceName, SourceFetch> = {
      auth: ok,
      vault: async () => {
        throw new Error('boom');
      },
      credits: (_id, signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
      admin: () => new Promise(() => undefined),
      projects: async () => null,
    };
    const out = await gather(fetchers, 'u1', 50, logger);
    expect(out.sources).toEqual({
      auth: 'ok',
      vault: 'unavailable',
      credits: 'unavailable',
      admin: 'unavailable',
      projects: 'not_configured',
    });
    expect(out.sections).toEqual({ auth: { fine: true }, vault: null, credits: null, admin: null, projects: null });
  });

  it('projects are null without SYNC_DATABASE_URL; the summary counts credit transactions', async () => {
    const sources = createSources(loadServiceConfig({ NODE_ENV: 'test' }), logger);
    expect(await sources.fetchers.projects('u1', AbortSignal.timeout(1000))).toBeNull();
    await sources.close();
    const s = summarize({
      auth: null,
      vault: null,
      admin: null,
      projects: null,
      credits: { balance: 5, transactions: [{}, {}], purchases: [], reservations: [] },
    });
    expect(s.credits).toEqual({ balance: 5, transactionCount: 2, purchases: [], reservationCount: 0 });
  });

  it('refuses the development secret in production and bad participant names', () => {
    expect(() => loadServiceConfig({ NODE_ENV: 'production', AMQP_URL: 'amqp://x', MANA_SERVICE_KEY: 'k'.repeat(40) })).toThrow(
      /GDPR_SECRET/,
    );
    expect(() => loadServiceConfig({ ERASURE_PARTICIPANTS: 'auth,Bad Name' })).toThrow(/ERASURE_PARTICIPANTS/);
    expect(loadServiceConfig({}).ERASURE_PARTICIPANTS).toEqual(['auth', 'vault', 'credits', 'admin']);
  });
});
