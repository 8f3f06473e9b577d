import { Router, type Request, type RequestHandler } from 'express';
import type { AuditAction } from '../db/schema';
import { parseBody } from '@mana/shared';
import type { FetchAuditBatcher } from '../db/fetch-audit';
import { readKeyOneTrip, readStatusOneTrip } from '../db/hot-paths';
import { VAULT_ERRORS } from '../domain/errors';
import type { Keyring } from '../domain/kek';
import { keyFetched } from '../metrics';
import {
  clearRecoveryWrap,
  disableZeroKnowledge,
  enableZeroKnowledge,
  initVault,
  rotateKey,
  setRecoveryWrap,
  type KeyResponse,
} from '../domain/vault';
import { audited, auditFailure, callerId, requestMeta, type AuditedDeps } from './audited';
import { recoveryWrapBody, zeroKnowledgeBody } from './schemas';

export interface VaultRouteDeps extends AuditedDeps {
  keyring: Keyring;
  /** Writes the audit rows of key fetches in group commits (see db/fetch-audit.ts). */
  fetchAudit: FetchAuditBatcher;
  /** The keyed pseudonym of a user's erasure tombstone (domain/pseudonym.ts): /init refuses a tombstoned user. */
  pseudonymOf: (userId: string) => string;
  /** Step-up check (`requireRecentAuth`) in front of the routes that replace or drop a wrap of the key. */
  stepUp: RequestHandler;
}

/** `/api/v1/me/encryption-vault/*` — mounted behind requireAuth; the user is always the token's `sub`. */
export function encryptionVaultRoutes(deps: VaultRouteDeps): Router {
  const { db, keyring } = deps;
  // A refused step-up is audited like any failed action: a stolen token probing leaves a trail.
  const stepUp =
    (action: (req: Request) => AuditAction): RequestHandler =>
    async (req, res, next) => {
      try {
        await deps.stepUp(req, res, () => undefined);
      } catch (err) {
        throw await auditFailure(deps, req, action(req), err);
      }
      next();
    };
  const wantsDisable = (req: Request) =>
    typeof req.body === 'object' && req.body !== null && (req.body as { enable?: unknown }).enable === false;
  const router = Router();

  // Cheap metadata read for the settings page: no decryption, no audit row.
  router.get('/status', async (req, res) => {
    res.json(await readStatusOneTrip(db, callerId(req)));
  });

  // An erased user's vault is never made again (410 VAULT_ERASED), even with a token issued before the erasure.
  router.post('/init', async (req, res) => {
    const userId = callerId(req);
    res.json(
      await audited(deps, req, 'init', async (tx) => {
        const { key, created } = await initVault(tx, keyring, userId, deps.pseudonymOf(userId));
        return { body: key, context: { created, kekId: 'kekId' in key ? key.kekId : null } };
      }),
    );
  });

  // Hot path: every client fetches its key on every sign-in. One round trip to read; the audit row joins
  // the next group commit, and the key leaves only once its row is committed. No row is written when the
  // vault was erased after the read: that key does not leave either (404, as a fetch after the erasure).
  router.get('/key', async (req, res) => {
    const userId = callerId(req);
    let key: KeyResponse;
    try {
      key = await readKeyOneTrip(db, keyring, userId);
    } catch (err) {
      keyFetched.emit('refused');
      throw await auditFailure(deps, req, 'fetch', err);
    }
    const context = 'kekId' in key ? { kekId: key.kekId } : { zeroKnowledge: true };
    if (!(await deps.fetchAudit.append({ userId, status: 200, ...requestMeta(req), context }))) {
      keyFetched.emit('refused');
      throw await auditFailure(deps, req, 'fetch', VAULT_ERRORS.notFound());
    }
    keyFetched.emit('kekId' in key ? 'server_wrapped' : 'zero_knowledge');
    res.set('Cache-Control', 'no-store').json(key);
  });

  router.post(
    '/rotate',
    stepUp(() => 'rotate'),
    async (req, res) => {
      const userId = callerId(req);
      const body = await audited(deps, req, 'rotate', async (tx) => {
        const { key, recoveryWrapCleared } = await rotateKey(tx, keyring, userId);
        return { body: { ...key, recoveryWrapCleared }, context: { kekId: key.kekId, recoveryWrapCleared } };
      });
      res.set('Cache-Control', 'no-store').json(body);
    },
  );

  router.post(
    '/recovery-wrap',
    stepUp(() => 'recovery_set'),
    async (req, res) => {
      const userId = callerId(req);
      res.json(
        await audited(deps, req, 'recovery_set', async (tx) => {
          const wrap = parseBody(recoveryWrapBody, req.body);
          const { replaced, recoverySetAt } = await setRecoveryWrap(tx, keyring, userId, wrap);
          return { body: { hasRecoveryWrap: true, recoverySetAt: recoverySetAt.toISOString() }, context: { replaced } };
        }),
      );
    },
  );

  router.delete(
    '/recovery-wrap',
    stepUp(() => 'recovery_cleared'),
    async (req, res) => {
      const userId = callerId(req);
      res.json(
        await audited(deps, req, 'recovery_cleared', async (tx) => {
          const { removed } = await clearRecoveryWrap(tx, userId);
          return { body: { hasRecoveryWrap: false }, context: { removed } };
        }),
      );
    },
  );

  router.post(
    '/zero-knowledge',
    stepUp((req) => (wantsDisable(req) ? 'zk_disabled' : 'zk_enabled')),
    async (req, res) => {
      const userId = callerId(req);
      // The action is known only after parsing; a body naming neither counts as an attempt to enable.
      res.json(
        await audited(deps, req, wantsDisable(req) ? 'zk_disabled' : 'zk_enabled', async (tx) => {
          const input = parseBody(zeroKnowledgeBody, req.body);
          if (input.enable) {
            const { changed } = await enableZeroKnowledge(tx, keyring, userId, input.keyCheck);
            return { body: { zeroKnowledge: true }, context: { changed } };
          }
          try {
            const { changed } = await disableZeroKnowledge(tx, keyring, userId, input.masterKey);
            return { body: { zeroKnowledge: false }, context: { changed } };
          } finally {
            input.masterKey.fill(0); // also when the vault is missing or the wrap fails
          }
        }),
      );
    },
  );

  return router;
}
