import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, createEvent } from '@mana/shared';
import { eventually } from '@mana/shared/testing';
import * as tables from '../../gdpr-svc/src/db/schema';
import { rotateSigningKey } from '../../gdpr-svc/src/domain/keys';
import { listOpen, redriveDue } from '../../gdpr-svc/src/domain/redrive';
import { deriveSecrets } from '../../gdpr-svc/src/domain/secrets';
import { scanForIdentifiers } from '../helpers/erasure-scan';
import { call } from '../helpers/http';
import { startStack, STACK_SERVICE_KEY, type Stack } from '../helpers/stack';
import { registerVerified } from '../helpers/users';

const key = { 'x-service-key': STACK_SERVICE_KEY };

interface Started {
  requestId: string;
  status: string;
  statusUrl: string;
}
interface StatusView {
  status: string;
  missing: string[];
  services: Record<string, { status: string; retained: Record<string, number> | null }>;
  receipt: string | null;
}

/**
 * The saga's slow paths with a participant that is not there: `ghost` is listed in ERASURE_PARTICIPANTS but
 * no service answers for it until the test does. The deadline is a fraction of a second, the re-ask fast.
 */
describe('gdpr-svc erasure saga: retries, deadline, operator command, late participant', () => {
  let s: Stack;

  beforeAll(async () => {
    s = await startStack({
      services: ['gdpr'],
      serviceEnv: { gdpr: { ERASURE_PARTICIPANTS: 'auth,ghost', ERASURE_RETRY_MS: '200', ERASURE_DEADLINE_HOURS: '0.0002' } },
    });
  });
  afterAll(async () => {
    await s?.close();
  });

  const start = (body: unknown) => call<Started>(`${s.gatewayUrl}/api/v1/internal/gdpr/erasures`, { body, headers: key });

  it('the internal route validates its body and needs the service key', async () => {
    const bad = await start({ userId: '', actorId: 'admin-1' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: 'VALIDATION_FAILED' });
    expect(new Set((bad.body as unknown as { details: { path: string }[] }).details.map((d) => d.path))).toEqual(
      new Set(['reason', 'userId']),
    );
    const noKey = await call(`${s.gatewayUrl}/api/v1/internal/gdpr/erasures`, { body: { userId: 'u', actorId: 'a', reason: 'r' } });
    expect(noKey.status).toBe(401);
    expect(noKey.body).toMatchObject({ error: 'SERVICE_KEY_MISSING' });
  });

  it('asks a missing participant again, turns partial at the deadline, completes when it answers late', async () => {
    const { userId, email } = await registerVerified(s);
    const first = await start({ userId, actorId: 'admin-7', reason: 'support ticket 42' });
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({
      status: 'in_progress',
      statusUrl: expect.stringContaining(`/api/v1/gdpr/erasures/${first.body.requestId}?token=`),
    });
    // A second request while one runs joins it: same requestId, a capability token of its own.
    const second = await start({ userId, actorId: 'admin-8', reason: 'again' });
    expect(second.status).toBe(202);
    expect(second.body.requestId).toBe(first.body.requestId);
    expect(second.body.statusUrl).not.toBe(first.body.statusUrl);
    const { requestId } = first.body;

    const partial = await eventually(async () => {
      const res = await call<StatusView>(first.body.statusUrl);
      return res.body.status === 'partial' && res.body.services.auth?.status === 'completed' ? res.body : undefined;
    });
    expect(partial).toMatchObject({ missing: ['ghost'], receipt: null, services: { ghost: { status: 'pending' } } });
    expect((await call<StatusView>(second.body.statusUrl)).body.status).toBe('partial');
    // Still retrying: the same request goes out again (auth repeats its first answer).
    await eventually(() => s.events.filter((e) => e.type === 'user.erasure.requested.v1' && e.data.requestId === requestId).length >= 3);

    // The operator command's two halves (spawning tsx here would cost seconds): list shows it, re-drive asks now.
    const database = createDatabase({ url: s.db.url, schema: tables, max: 1 });
    try {
      const open = await listOpen(database.db);
      expect(open).toEqual([expect.objectContaining({ requestId, status: 'partial', origin: 'admin', missing: ['ghost'] })]);
      expect(JSON.stringify(open)).not.toContain(userId);
      // SKIP LOCKED: while the service's own loop holds the row, the command skips it; ask until it gets its turn.
      const asked = await eventually(async () => {
        const got = await redriveDue(database.db, 60_000, { force: true, only: [requestId] });
        return got.length > 0 ? got : undefined;
      });
      expect(asked).toEqual([expect.objectContaining({ requestId, status: 'partial', missing: ['ghost'] })]);
    } finally {
      await database.close();
    }

    // Any service joins by answering with its own name: the ghost answers at last.
    await s.publish(
      createEvent('user.erasure.completed.v1', {
        requestId,
        userId,
        service: 'ghost',
        deleted: { notes: 3 },
        pseudonymized: {},
        retained: { invoices: 2 },
      }),
    );
    const done = await eventually(async () => {
      const res = await call<StatusView>(first.body.statusUrl);
      return res.body.status === 'completed' ? res.body : undefined;
    });
    expect(done.missing).toEqual([]);
    const jwks = createRemoteJWKSet(new URL(`${s.gatewayUrl}/api/v1/gdpr/jwks.json`));
    const { payload } = await jwtVerify(done.receipt ?? '', jwks, { typ: 'erasure-receipt+jwt', algorithms: ['EdDSA'] });
    expect(payload).toMatchObject({
      requestId,
      services: { ghost: { deleted: { notes: 3 }, retained: { invoices: 2 } }, auth: { deleted: { users: 1 } } },
    });

    // gdpr-svc's own tables keep no raw user id (nor the admin's, nor the free-text reason) once done; a re-ask
    // enqueued just before the last answer leaves the outbox once the broker confirmed it.
    const inGdpr = async () =>
      (await scanForIdentifiers(s.sql, [userId, email, 'admin-7', 'support ticket 42'])).filter((h) => h.table.startsWith('gdpr.'));
    await eventually(async () => ((await inGdpr()).length === 0 ? true : undefined)).catch(() => undefined);
    expect(await inGdpr()).toEqual([]);
  });

  it('a rotated receipt key signs new receipts; receipts of the old key still verify', async () => {
    const database = createDatabase({ url: s.db.url, schema: tables, max: 1 });
    try {
      const before = await call<{ keys: { kid: string }[] }>(`${s.gatewayUrl}/api/v1/gdpr/jwks.json`);
      expect(before.body.keys).toHaveLength(1);
      const { kid, retired } = await rotateSigningKey(
        database.db,
        deriveSecrets(s.env.GDPR_SECRET ?? 'dev-only-gdpr-secret-change-me-000000000000').sealKey,
      );
      expect(retired).toEqual([before.body.keys[0]?.kid]);
      const after = await call<{ keys: { kid: string }[] }>(`${s.gatewayUrl}/api/v1/gdpr/jwks.json`);
      expect(after.body.keys.map((k) => k.kid)).toEqual([kid, before.body.keys[0]?.kid]);
    } finally {
      await database.close();
    }
    // A new erasure (nobody's account: participants answer with nothing) is signed by the new key.
    const res = await start({ userId: 'never-registered-user', actorId: 'admin-1', reason: 'cleanup' });
    const { requestId } = res.body;
    await s.publish(
      createEvent('user.erasure.completed.v1', {
        requestId,
        userId: 'never-registered-user',
        service: 'ghost',
        deleted: {},
        pseudonymized: {},
        retained: {},
      }),
    );
    const done = await eventually(async () => {
      const st = await call<StatusView>(res.body.statusUrl);
      return st.body.status === 'completed' ? st.body : undefined;
    });
    const jwks = createRemoteJWKSet(new URL(`${s.gatewayUrl}/api/v1/gdpr/jwks.json`));
    const verified = await jwtVerify(done.receipt ?? '', jwks, { typ: 'erasure-receipt+jwt' });
    const keys = await call<{ keys: { kid: string }[] }>(`${s.gatewayUrl}/api/v1/gdpr/jwks.json`);
    expect(verified.protectedHeader.kid).toBe(keys.body.keys[0]?.kid);
  });
});
