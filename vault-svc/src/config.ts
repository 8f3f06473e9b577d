import { z } from 'zod';
import { commonEnv, loadConfig, port, productionRules } from '@mana/shared';

export const configSchema = commonEnv
  .extend({
    /** Port vault-svc listens on. */
    VAULT_SVC_PORT: port(3102),
    /** Moves this service's schema to its own database (defaults to DATABASE_URL). */
    VAULT_DATABASE_URL: z.string().min(1).optional(),
  })
  .superRefine(productionRules);

export type Config = z.output<typeof configSchema>;

export const loadServiceConfig = (env: Record<string, string | undefined> = process.env): Config =>
  loadConfig('vault-svc', configSchema, env);
