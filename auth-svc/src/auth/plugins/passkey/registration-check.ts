import { APIError } from 'better-auth/api';
import { z } from 'zod';

const base64url = z.string().regex(/^[A-Za-z0-9_-]+$/, 'base64url');

/** The parts of a `PublicKeyCredential.toJSON()` attestation the verification reads. */
const registrationBody = z.object({
  response: z.looseObject({
    id: base64url.max(1024),
    rawId: base64url.max(1024),
    type: z.literal('public-key'),
    response: z.looseObject({ clientDataJSON: base64url.max(8192), attestationObject: base64url.max(65_536) }),
  }),
});

const clientData = z.looseObject({ type: z.literal('webauthn.create'), origin: z.string(), challenge: z.string() });

export const FAILED_TO_VERIFY_REGISTRATION = { code: 'FAILED_TO_VERIFY_REGISTRATION', message: 'Failed to verify registration' };

/**
 * Refuses a registration response that cannot verify before the plugin sees it: malformed, not a
 * creation, or made on an origin that is not accepted. The plugin reports those as 500; they are the
 * client's error (400). Everything cryptographic is still the plugin's check.
 */
export function checkRegistrationResponse(body: unknown, origins: readonly string[]): void {
  const parsed = registrationBody.safeParse(body);
  if (!parsed.success) throw APIError.from('BAD_REQUEST', FAILED_TO_VERIFY_REGISTRATION);
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(parsed.data.response.response.clientDataJSON, 'base64url').toString('utf8'));
  } catch {
    throw APIError.from('BAD_REQUEST', FAILED_TO_VERIFY_REGISTRATION);
  }
  const client = clientData.safeParse(data);
  if (!client.success || !origins.includes(client.data.origin)) throw APIError.from('BAD_REQUEST', FAILED_TO_VERIFY_REGISTRATION);
}
