/**
 * auth-svc's drizzle schema, split by concern under ./schema/ (drizzle.config.ts and every
 * `import * as tables from './db/schema'` read this barrel). Each file owns one concern's tables.
 */
export { authSchema } from './schema/base';
export * from './schema/messaging';
export * from './schema/core';
export * from './schema/sessions';
export * from './schema/security';
export * from './schema/two-factor';
export * from './schema/oidc';
export * from './schema/organizations';
export * from './schema/api-keys';
export * from './schema/passkeys';
