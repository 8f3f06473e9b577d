import { fileURLToPath } from 'node:url';
import Stripe from 'stripe';
import {
  acceptedServiceKeys,
  createLogger,
  createRuntime,
  runServiceMain,
  serve,
  type ServiceHandle,
  type ServiceStartOptions,
} from '@mana/shared';
import { buildApp } from './app';
import { loadServiceConfig, type Config } from './config';
import * as tables from './db/schema';
import { creditsDb } from './db/scope';
import type { LedgerPolicy } from './domain/ledger';
import { MembershipClient } from './domain/membership';
import { Sweeper } from './domain/sweeper';
import { pseudonymFor, subscribeErasure } from './events/erasure';
import { subscribeUserRegistered } from './events/user-registered';
import { creditsMetrics } from './metrics';

export const SERVICE_NAME = 'credits-svc';

export interface CreditsStartOptions extends ServiceStartOptions {
  /** The time the ledger uses (tests move it; defaults to the wall clock). */
  clock?: () => Date;
}

function stripeClient(config: Config): Stripe | undefined {
  if (!config.STRIPE_SECRET_KEY) return undefined;
  const api = config.STRIPE_API_URL ? new URL(config.STRIPE_API_URL) : undefined;
  return new Stripe(config.STRIPE_SECRET_KEY, {
    maxNetworkRetries: 2,
    timeout: 15_000,
    telemetry: false,
    ...(api
      ? {
          host: api.hostname,
          port: api.port || (api.protocol === 'https:' ? 443 : 80),
          protocol: api.protocol === 'https:' ? 'https' : 'http',
        }
      : {}),
  });
}

/** Starts credits-svc: config → migrations → bus → consumers → sweeper → HTTP. */
export async function startCreditsService(opts: CreditsStartOptions = {}): Promise<ServiceHandle> {
  const config = loadServiceConfig(opts.env ?? process.env);
  const logger = opts.logger ?? createLogger(SERVICE_NAME, config.LOG_LEVEL);
  const rt = await createRuntime({
    name: SERVICE_NAME,
    config,
    dbSchema: tables.creditsSchema,
    databaseUrl: config.CREDITS_DATABASE_URL ?? config.DATABASE_URL,
    tables,
    migrationsFolder: fileURLToPath(new URL('../drizzle', import.meta.url)),
    outbox: tables.outbox,
    logger,
  });
  const db = creditsDb(rt.database);
  const stopMetrics = creditsMetrics(rt.metrics);
  const clock = opts.clock ?? (() => new Date());
  const pseudonymOf = (userId: string) => pseudonymFor(config.CREDITS_PSEUDONYM_SECRET, userId);
  const policy = (): LedgerPolicy => ({ now: clock(), dailyFree: config.CREDITS_DAILY_FREE, pseudonymOf });
  await subscribeUserRegistered({
    db,
    bus: rt.bus,
    logger: logger.child({ component: 'signup' }),
    bonus: config.CREDITS_SIGNUP_BONUS,
    policy,
  });
  await subscribeErasure({
    db,
    bus: rt.bus,
    relay: rt.relay,
    logger: logger.child({ component: 'erasure' }),
    pseudonymSecret: config.CREDITS_PSEUDONYM_SECRET,
  });
  const sweeper = new Sweeper(db, policy, config.CREDITS_SWEEP_INTERVAL_MS, logger.child({ component: 'sweeper' }));
  sweeper.start();
  const ctx = {
    db,
    policy,
    membership: new MembershipClient(config.AUTH_SVC_URL, config.MANA_SERVICE_KEY, logger.child({ component: 'membership' })),
    packages: config.CREDITS_PACKAGES,
    stripe: stripeClient(config),
    webhookSecret: config.STRIPE_WEBHOOK_SECRET,
    returnUrl: config.BASE_URL.replace(/\/+$/, ''),
    serviceKey: acceptedServiceKeys(config),
  };
  return serve(rt, buildApp({ rt, config, ctx }), config.CREDITS_SVC_PORT, [
    { name: 'stop sweeper', run: () => sweeper.stop() },
    { name: 'stop business metrics', run: async () => stopMetrics() },
  ]);
}

runServiceMain(import.meta.url, SERVICE_NAME, () => startCreditsService());
