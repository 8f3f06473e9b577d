import { passkey } from '@better-auth/passkey';
import { APIError } from 'better-auth/api';
import type { Config } from '../../../config';
import type { Db } from '../../../db/types';
import { relyingParty } from './config';
import { passkeyPolicy } from './policy';

/** A passkey sign-in stands in for password and second factor together, so the authenticator must verify the user. */
export const PASSKEY_USER_VERIFICATION_REQUIRED = {
  code: 'PASSKEY_USER_VERIFICATION_REQUIRED',
  message: 'The authenticator did not verify the user (PIN or biometrics); use a passkey that does',
};

/**
 * Passkeys (WebAuthn) through Better Auth's passkey plugin (`/api/auth/passkey/*`): the relying party
 * from config (RP_ID, RP_NAME, PASSKEY_ORIGINS — responses from any other origin are refused), user
 * verification required on registration and sign-in, and Mana's policy on top (`./policy.ts`: step-up,
 * email-first sign-in, error statuses). Security events are recorded by the audit plugin.
 */
export function passkeyPlugins(config: Config, db: Db) {
  const rp = relyingParty(config);
  return [
    passkey({
      rpID: rp.rpID,
      rpName: rp.rpName,
      origin: rp.origins,
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
      registration: {
        afterVerification: async ({ verification }) => {
          if (!verification.registrationInfo?.userVerified) throw APIError.from('BAD_REQUEST', PASSKEY_USER_VERIFICATION_REQUIRED);
          return undefined;
        },
      },
      authentication: {
        afterVerification: async ({ verification }) => {
          if (!verification.authenticationInfo.userVerified) throw APIError.from('UNAUTHORIZED', PASSKEY_USER_VERIFICATION_REQUIRED);
        },
      },
    }),
    passkeyPolicy(db, config),
  ];
}
