import { fileURLToPath } from 'node:url';
import { createRuntime, runServiceMain, serve, type ServiceHandle, type ServiceStartOptions } from '@mana/shared';
import { buildApp } from './app';
import { createAuth } from './auth/auth';
import { createLocalVerifier, currentJwks } from './auth/tokens';
import { loadServiceConfig } from './config';
import type { AuthContext } from './context';
import * as tables from './db/schema';
import { applySessionPolicy } from './domain/sessions';
import { subscribeErasure } from './events/erasure';
import { createMailer } from './mail/mailer';
import { authMetrics } from './metrics';

export const SERVICE_NAME = 'auth-svc';

/** Starts auth-svc: config → migrations → bus → Better Auth → consumers → HTTP. close() shuts down in order. */
export async function startAuthService(opts: ServiceStartOptions = {}): Promise<ServiceHandle> {
  const env = opts.env ?? process.env;
  const config = loadServiceConfig(env);
  const rt = await createRuntime({
    name: SERVICE_NAME,
    config,
    dbSchema: tables.authSchema,
    databaseUrl: config.AUTH_DATABASE_URL ?? config.DATABASE_URL,
    tables,
    migrationsFolder: fileURLToPath(new URL('../drizzle', import.meta.url)),
    outbox: tables.outbox,
    logger: opts.logger,
    // auth-svc checks every token's session in its own database: no denylist needed here.
    trackRevocations: false,
  });
  const mailer = createMailer(config, rt.logger);
  const kickOutbox = () => rt.relay?.kick();
  const db = rt.database.db;
  const auth = createAuth({ config, db, mailer, logger: rt.logger, onOutboxWrite: kickOutbox });
  const ctx: AuthContext = { rt, config, db, auth, verifier: createLocalVerifier(auth, config), kickOutbox };
  try {
    await ensureSigningKey(ctx);
    if ((await applySessionPolicy(db, config.SESSION_MAX_LIFETIME_SECONDS)) === 'owed')
      rt.logger.warn('session lifetime lowered, but sessions held by long transactions are not capped yet: the next start caps them');
    await subscribeErasure(ctx);
  } catch (err) {
    // Nothing is listening yet: release what the runtime opened before giving up.
    await rt.relay?.stop();
    await rt.bus.close();
    await rt.database.close();
    throw err;
  }
  const stopMetrics = authMetrics(rt.metrics, db, rt.bus);
  const app = buildApp(ctx);
  return serve(rt, app, config.AUTH_SVC_PORT, [
    { name: 'close mailer', run: async () => mailer.close() },
    { name: 'stop business metrics', run: async () => stopMetrics() },
  ]);
}

/**
 * Creates the first signing key at startup, one instance at a time (advisory lock), so that two
 * instances starting together do not each mint one.
 */
async function ensureSigningKey(ctx: AuthContext): Promise<void> {
  const client = await ctx.rt.database.pool.connect();
  try {
    await client.query("select pg_advisory_lock(hashtext('mana-auth:jwks'))");
    try {
      await currentJwks(ctx.auth);
    } finally {
      await client.query("select pg_advisory_unlock(hashtext('mana-auth:jwks'))");
    }
  } finally {
    client.release();
  }
}

runServiceMain(import.meta.url, SERVICE_NAME, () => startAuthService());
