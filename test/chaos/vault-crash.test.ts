import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';
import { INSTANCES, loop, newUser, tally, type ChaosUser } from './helpers';

const BURST_MS = 8_000;

interface KeyAnswer {
  masterKey: string;
  kekId: string;
  keyCheck: string;
}

/**
 * One vault-svc instance (its own process) is SIGKILLed while users fetch their master keys, then started
 * again. A fetch caught by it is a gateway 502/503 (never a half key); the other instance keeps answering;
 * afterwards every user gets the very key they had — nothing was re-minted or damaged.
 */
describe('chaos: vault-svc killed (SIGKILL) during key fetches', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({ services: ['vault'], instances: INSTANCES, spawn: ['vault'] });
  });
  afterAll(async () => {
    await s?.close();
  });

  const fetchKey = (u: ChaosUser) => call<KeyAnswer>(`${s.gatewayUrl}/api/v1/me/encryption-vault/key`, { token: u.token });

  it('answers every fetch with the same key or a clean 502/503, and serves the same keys after the restart', async () => {
    const users: ChaosUser[] = [];
    for (let i = 0; i < 3; i++) users.push(await newUser(s));
    const keys = new Map<string, string>();
    for (const u of users) {
      const init = await call<KeyAnswer>(`${s.gatewayUrl}/api/v1/me/encryption-vault/init`, { method: 'POST', token: u.token });
      expect(init.status).toBe(200);
      keys.set(u.userId, init.body.masterKey);
    }

    const statuses: number[] = [];
    const wrong: string[] = [];
    const until = Date.now() + BURST_MS;
    await Promise.all([
      loop(4, until, async (w) => {
        const u = users[(statuses.length + w) % users.length];
        const res = await fetchKey(u);
        statuses.push(res.status);
        if (res.status === 200 && res.body.masterKey !== keys.get(u.userId)) wrong.push(u.userId);
      }),
      (async () => {
        await new Promise((r) => setTimeout(r, BURST_MS / 4));
        await s.crash('vault', 0);
        await new Promise((r) => setTimeout(r, BURST_MS / 4));
        await s.revive('vault', 0);
      })(),
    ]);
    console.info(`SIGKILL of vault-svc during ${statuses.length} key fetches: ${JSON.stringify(tally(statuses))}`);
    expect(statuses.filter((x) => ![200, 502, 503].includes(x))).toEqual([]);
    expect(wrong).toEqual([]);

    // Both instances answer again (round robin: two rounds reach both), with the keys the users had.
    for (let round = 0; round < INSTANCES; round++)
      for (const u of users) {
        const res = await fetchKey(u);
        expect(res.status).toBe(200);
        expect(res.body.masterKey).toBe(keys.get(u.userId));
      }
    for (const h of s.instances.vault) {
      const direct = await call<KeyAnswer>(`${h.url}/api/v1/me/encryption-vault/key`, { token: users[0].token });
      expect(direct.body.masterKey).toBe(keys.get(users[0].userId));
    }
  });
});
