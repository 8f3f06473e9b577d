import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { createDatabase, createLogger, handleErasureRequest, MemoryBus, type ErasureCounts, type ServiceHandle } from '@mana/shared';
import {
  TEST_REDIS_URL,
  createTestDatabase,
  deleteRedisKeys,
  deleteTestBus,
  startTestIssuer,
  testBusEnv,
  uniqueName,
  type TestDatabase,
  type TestIssuer,
} from '@mana/shared/testing';
import { startGateway } from '../../gateway/src/server';
import { DEV_PSEUDONYM_SECRET } from '../src/config';
import * as tables from '../src/db/schema';
import { vaultDb, type VaultDb } from '../src/db/scope';
import { erasureParticipant } from '../src/events/erasure';
import { startVaultService } from '../src/server';
import { startAuthTimeStub, type AuthTimeStub } from './auth-time-stub';

export const SERVICE_KEY = 'vault-test-service-key-0123456789abcdef0123';
export const VAULT = '/api/v1/me/encryption-vault';

export const newKek = () => randomBytes(32).toString('base64');

export interface CallOptions {
  token?: string;
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface CallResult {
  status: number;
  body: Record<string, unknown>;
}

/**
 * One test file's stack on the real PostgreSQL, RabbitMQ and Redis: its own database, bus names and
 * rate-limit prefix; a test issuer (real Ed25519 JWKS) trusted by both the gateway and vault-svc.
 */
export interface VaultStack {
  db: TestDatabase;
  /** Superuser pool on the file's database (to inspect rows, and to play the attacker with SET ROLE). */
  admin: pg.Client;
  issuer: TestIssuer;
  /** auth-svc's session auth-time API as vault-svc's step-up check sees it. */
  authTime: AuthTimeStub;
  bus: ReturnType<typeof testBusEnv>;
  vault: ServiceHandle;
  gateway: ServiceHandle;
  vaultEnv: Record<string, string>;
  token: (userId: string) => Promise<string>;
  /** Calls the gateway. */
  call: (path: string, opts?: CallOptions) => Promise<CallResult>;
  /** Restarts vault-svc with other env (e.g. a new keyring); the gateway follows. */
  restartVault: (env: Record<string, string>) => Promise<void>;
  /** Stops everything and removes the database, bus topology (vault + `extraQueues`) and rate-limit keys. */
  close: (extraQueues?: string[]) => Promise<void>;
}

export async function startVaultStack(kekEnv: Record<string, string> = { MANA_AUTH_KEK: newKek() }): Promise<VaultStack> {
  const db = await createTestDatabase('vault_test');
  const issuer = await startTestIssuer();
  const authTime = await startAuthTimeStub(SERVICE_KEY);
  const busName = uniqueName('vault');
  const bus = testBusEnv(busName);
  const common = {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    // These tests inspect relayed outbox rows, which by default are deleted once the broker confirmed them.
    OUTBOX_RETENTION_SECONDS: '3600',
    ...bus,
    AUTH_JWKS_URL: issuer.jwksUrl,
    BASE_URL: issuer.issuer,
    JWT_AUDIENCE: issuer.audience,
    MANA_SERVICE_KEY: SERVICE_KEY,
    AUTH_SVC_URL: authTime.url,
  };
  let vaultEnv: Record<string, string> = { ...common, DATABASE_URL: db.url, VAULT_SVC_PORT: '0', ...kekEnv };
  let vault = await startVaultService({ env: vaultEnv });
  const gatewayEnv = (vaultUrl: string) => ({
    ...common,
    PORT: '0',
    VAULT_SVC_URL: vaultUrl,
    AUTH_SVC_URL: 'http://127.0.0.1:9',
    REDIS_URL: TEST_REDIS_URL,
    RATE_LIMIT_PREFIX: busName,
    RATE_LIMIT_POINTS: '1000000',
  });
  let gateway = await startGateway({ env: gatewayEnv(vault.url) });
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();

  const stack: VaultStack = {
    db,
    admin,
    issuer,
    authTime,
    bus,
    get vault() {
      return vault;
    },
    get gateway() {
      return gateway;
    },
    get vaultEnv() {
      return vaultEnv;
    },
    token: (userId) => issuer.sign({ sub: userId, sid: `sid-${userId}` }),
    call: async (path, opts = {}) => {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      if (opts.body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${gateway.url}${path}`, {
        method: opts.method ?? 'GET',
        headers,
        body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
    },
    restartVault: async (env) => {
      await gateway.close();
      await vault.close();
      vaultEnv = { ...common, DATABASE_URL: db.url, VAULT_SVC_PORT: '0', ...env };
      vault = await startVaultService({ env: vaultEnv });
      gateway = await startGateway({ env: gatewayEnv(vault.url) });
    },
    close: async (extraQueues = []) => {
      await gateway?.close();
      await vault?.close();
      await admin.end();
      await issuer.close();
      await authTime.close();
      await db.drop();
      await deleteTestBus(bus, ['vault', ...extraQueues]);
      await deleteRedisKeys(busName);
    },
  };
  return stack;
}

export interface AuditRow {
  user_id: string;
  action: string;
  status: number;
  ip: string | null;
  user_agent: string | null;
  context: Record<string, unknown>;
}

/** Audit rows as the superuser sees them (bypassing RLS), oldest first. */
export async function auditRows(admin: pg.Client, userId: string): Promise<AuditRow[]> {
  const { rows } = await admin.query<AuditRow>(
    'select user_id, action, status, ip, user_agent, context from vault.encryption_vault_audit where user_id = $1 order by id',
    [userId],
  );
  return rows;
}

export interface VaultErasure {
  /** vault-svc's own connection (its roles and row-level security), as its routes and consumers use it. */
  db: VaultDb;
  /** The user's erasure as the participant handles a request (one transaction); its counts. */
  erase: (userId: string) => Promise<ErasureCounts | undefined>;
  close: () => Promise<void>;
}

/** The erasure participant of vault-svc on the stack's database, in this process (no broker in between). */
export function vaultErasure(s: VaultStack): VaultErasure {
  const logger = createLogger('vault-erasure-test', 'silent');
  const database = createDatabase({ url: s.db.url, schema: tables, max: 2 });
  const db = vaultDb(database);
  const participant = erasureParticipant({ db, bus: new MemoryBus(logger), logger, pseudonymSecret: DEV_PSEUDONYM_SECRET });
  return {
    db,
    erase: (userId) => handleErasureRequest(participant, randomUUID(), randomUUID(), userId).then((o) => o?.counts),
    close: () => database.close(),
  };
}
