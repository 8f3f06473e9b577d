import {
  acceptedServiceKeys,
  createBusFromConfig,
  createJwtVerifier,
  createLogger,
  jwtIssuer,
  runServiceMain,
  trackRevocations,
  startHttp,
  type ServiceHandle,
  type ServiceStartOptions,
} from '@mana/shared';
import { ApiKeyExchanger } from './api-keys';
import { buildGateway } from './app';
import { loadGatewayConfig, parseByteSize } from './config';
import { GatewayMetrics } from './metrics';
import { createRateLimiter } from './rate-limit';
import { createApiReference } from './reference';
import { createPools, destroyPools } from './upstream';

export const SERVICE_NAME = 'gateway';

/**
 * Starts the gateway: config → bus (revocation events) → rate-limit store → HTTP. It holds no
 * data of its own; close() drains requests, then stops the consumer, the bus and the store.
 */
export async function startGateway(opts: ServiceStartOptions = {}): Promise<ServiceHandle> {
  const config = loadGatewayConfig(opts.env ?? process.env);
  const logger = opts.logger ?? createLogger(SERVICE_NAME, config.LOG_LEVEL);
  const state = { shuttingDown: false };
  if (!config.GATEWAY_VERIFY_JWT) logger.warn('JWT VERIFICATION IS SWITCHED OFF (GATEWAY_VERIFY_JWT=false): benchmarks only');

  const bus = createBusFromConfig(config, logger.child({ component: 'bus' }));
  await bus.start();
  const revocations = await trackRevocations({
    bus,
    queue: 'gateway.revocations',
    authUrls: config.AUTH_SVC_URL,
    serviceKey: config.MANA_SERVICE_KEY,
    logger: logger.child({ component: 'revocations' }),
  });
  const { denylist } = revocations;

  const metrics = new GatewayMetrics();
  const rateLimiter = await createRateLimiter(
    {
      prefix: config.RATE_LIMIT_PREFIX,
      general: { points: config.RATE_LIMIT_POINTS, windowS: config.RATE_LIMIT_WINDOW_S },
      auth: { points: config.RATE_LIMIT_AUTH_POINTS, windowS: config.RATE_LIMIT_AUTH_WINDOW_S },
      apiKey: { points: config.RATE_LIMIT_API_KEY_POINTS, windowS: config.RATE_LIMIT_API_KEY_WINDOW_S },
      sync: { localShare: config.RATE_LIMIT_LOCAL_SHARE, syncMs: config.RATE_LIMIT_SYNC_MS },
    },
    {
      redisUrl: config.REDIS_URL,
      databaseUrl: config.GATEWAY_DATABASE_URL ?? config.DATABASE_URL,
      onFallback: () => metrics.rateLimitFallback.inc(),
    },
    logger.child({ component: 'rate-limit' }),
  );
  const verifier = config.GATEWAY_VERIFY_JWT
    ? createJwtVerifier({
        jwksUrl: config.AUTH_JWKS_URL,
        issuer: jwtIssuer(config),
        audience: config.JWT_AUDIENCE,
        cacheSize: config.JWT_CACHE_SIZE,
      })
    : undefined;
  const pools = createPools({
    auth: config.AUTH_SVC_URL,
    vault: config.VAULT_SVC_URL,
    gdpr: config.GDPR_SVC_URL,
    admin: config.ADMIN_SVC_URL,
    credits: config.CREDITS_SVC_URL,
  });
  metrics.watchRateLimitStore(() => rateLimiter.storeUp());
  const apiKeys = new ApiKeyExchanger({
    authUrls: config.AUTH_SVC_URL,
    serviceKey: config.MANA_SERVICE_KEY,
    cacheSize: config.API_KEY_CACHE_SIZE,
    logger: logger.child({ component: 'api-keys' }),
  });

  const handler = buildGateway({
    logger,
    state,
    verifier,
    denylist,
    rateLimiter,
    apiKeys,
    pools,
    metrics,
    // Not ready until the revocation list was loaded once (fail closed: no tokens of ended sessions meanwhile).
    readiness: {
      bus: () => bus.ping(),
      rateLimitStore: () => rateLimiter.ping(),
      revocations: () => revocations.loader.assertLoaded(),
    },
    reference: createApiReference({ pools, baseUrl: config.BASE_URL, logger: logger.child({ component: 'reference' }) }),
    serviceKey: config.MANA_SERVICE_KEY,
    acceptedServiceKeys: acceptedServiceKeys(config),
    corsOrigins: config.CORS_ORIGINS,
    bodyLimit: parseByteSize(config.BODY_LIMIT),
    upstreamTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
    trustProxy: config.TRUST_PROXY,
    metricsToken: config.METRICS_TOKEN,
  });

  return startHttp({
    name: SERVICE_NAME,
    handler,
    port: config.PORT,
    logger,
    state,
    drainTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    steps: [
      { name: 'stop consumers', run: () => bus.stopConsuming() },
      { name: 'stop revocation tracking', run: () => revocations.stop() },
      { name: 'close bus', run: () => bus.close() },
      { name: 'close rate-limit store', run: () => rateLimiter.close() },
      { name: 'close upstream connections', run: () => destroyPools(pools) },
    ],
  });
}

runServiceMain(import.meta.url, SERVICE_NAME, () => startGateway());
