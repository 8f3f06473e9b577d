import { z } from 'zod';
import { openApiFragment, type ApiOperation } from '@mana/shared';
import { recoveryWrapBody, userIdParams, zeroKnowledgeBody } from './schemas';

const V = '/api/v1/me/encryption-vault';
/**
 * What the vault answers, as documented (`domain/vault.ts` builds it: `KeyResponse`, `VaultStatus`);
 * test/e2e/openapi.test.ts parses real answers with these, so the reference cannot drift.
 */
const b64 = z.string().describe('standard base64');
const standardKey = z.strictObject({
  masterKey: b64.describe('the 32-byte master key'),
  formatVersion: z.number().int(),
  kekId: z.string(),
  keyCheck: b64,
});
export const keyResponse = z.union([
  standardKey,
  z.strictObject({ requiresRecoveryCode: z.literal(true), recoveryWrappedMk: b64, recoveryIv: b64, keyCheck: b64.nullable() }),
]);
export const rotateResponse = standardKey.extend({ recoveryWrapCleared: z.boolean() });
export const statusResponse = z.strictObject({
  vaultExists: z.boolean(),
  hasRecoveryWrap: z.boolean(),
  zeroKnowledge: z.boolean(),
  recoverySetAt: z.iso.datetime({ offset: true }).nullable(),
});
const KEY = { description: 'the master key; in zero-knowledge mode the recovery wrap only the client can open', schema: keyResponse };

/** Every route of vault-svc, with the schemas the routes parse (`./schemas`). */
export const vaultApi: readonly ApiOperation[] = [
  {
    method: 'get',
    path: `${V}/status`,
    access: 'bearer',
    summary: 'Vault state for the settings page (no decryption, no audit row)',
    responses: { 200: { description: 'the vault’s state', schema: statusResponse } },
  },
  {
    method: 'post',
    path: `${V}/init`,
    access: 'bearer',
    summary: 'Create the master key on first use; return the existing one afterwards (never again after the user’s erasure)',
    responses: { 200: KEY },
    errors: { 410: ['VAULT_ERASED'] },
  },
  {
    method: 'get',
    path: `${V}/key`,
    access: 'bearer',
    summary: 'The caller’s master key (audited, `Cache-Control: no-store`)',
    responses: { 200: KEY },
    errors: { 404: ['VAULT_NOT_FOUND'] },
  },
  {
    method: 'post',
    path: `${V}/rotate`,
    access: 'bearer',
    stepUp: true,
    summary: 'Replace the master key (destructive: the old key and its recovery wrap are gone)',
    responses: {
      200: { description: 'the new master key, and whether a recovery wrap of the old one was removed', schema: rotateResponse },
    },
    errors: { 404: ['VAULT_NOT_FOUND'], 409: ['ZK_ROTATE_FORBIDDEN'] },
  },
  {
    method: 'post',
    path: `${V}/recovery-wrap`,
    access: 'bearer',
    stepUp: true,
    summary: 'Store a client-made wrap of the master key under a recovery secret',
    body: recoveryWrapBody,
    responses: { 200: '`{ hasRecoveryWrap: true, recoverySetAt }`' },
    errors: { 404: ['VAULT_NOT_FOUND'], 409: ['MASTER_KEY_MISMATCH'] },
  },
  {
    method: 'delete',
    path: `${V}/recovery-wrap`,
    access: 'bearer',
    stepUp: true,
    summary: 'Remove the recovery wrap (idempotent)',
    responses: { 200: '`{ hasRecoveryWrap: false }`' },
    errors: { 409: ['ZK_ACTIVE'] },
  },
  {
    method: 'post',
    path: `${V}/zero-knowledge`,
    access: 'bearer',
    stepUp: true,
    summary: 'Turn zero-knowledge mode on (drop the server wrap) or off (re-wrap the key the client unwrapped)',
    body: zeroKnowledgeBody,
    responses: { 200: '`{ zeroKnowledge }`' },
    errors: { 400: ['RECOVERY_WRAP_MISSING'], 404: ['VAULT_NOT_FOUND'], 409: ['MASTER_KEY_MISMATCH'] },
  },
  {
    method: 'get',
    path: '/api/v1/internal/vault/users/:id',
    access: 'service',
    summary: 'Vault metadata for the GDPR view (never key material)',
    params: userIdParams,
    responses: { 200: 'vault metadata, or `{ vaultExists: false }`' },
  },
];

export const vaultOpenApi = () =>
  openApiFragment({
    service: 'vault-svc',
    description: 'Per-user master-key custody: keys wrapped with the KEK, recovery wrap, zero-knowledge mode.',
    operations: vaultApi,
  });
