import type { Logger } from 'pino';

/** Claims of a verified Mana access token (minimal claims by design). */
export interface AccessClaims {
  sub: string;
  email: string;
  role: string;
  sid: string;
  iat: number;
  exp: number;
  iss: string;
  aud: string | string[];
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- augmenting Express's global Request type is only possible through its namespace
  namespace Express {
    interface Request {
      id: string;
      log: Logger;
      /** Set by requireAuth once the bearer token verified. */
      auth?: AccessClaims;
      /** The raw bearer token that produced `auth`. */
      bearerToken?: string;
    }
  }
}

export {};
