import type { JwtVerifier, Runtime } from '@mana/shared';
import type { Auth } from './auth/auth';
import type { Config } from './config';
import type * as tables from './db/schema';
import type { Db } from './db/types';

/** What routes and consumers are built from. */
export interface AuthContext {
  rt: Runtime<typeof tables>;
  config: Config;
  db: Db;
  auth: Auth;
  /** Verifies access tokens against auth-svc's own keys. */
  verifier: JwtVerifier;
  /** Relays freshly committed outbox rows now instead of on the next poll. */
  kickOutbox: () => void;
}
