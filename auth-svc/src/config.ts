import { z } from 'zod';
import { commonEnv, loadConfig, port, productionRules } from '@mana/shared';

export const configSchema = commonEnv
  .extend({
    /** Port auth-svc listens on. */
    AUTH_SVC_PORT: port(3101),
    /** Moves this service's schema to its own database (defaults to DATABASE_URL). */
    AUTH_DATABASE_URL: z.string().min(1).optional(),
  })
  .superRefine(productionRules);

export type Config = z.output<typeof configSchema>;

export const loadServiceConfig = (env: Record<string, string | undefined> = process.env): Config =>
  loadConfig('auth-svc', configSchema, env);
