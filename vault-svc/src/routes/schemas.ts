import { z } from 'zod';
import { isUserId } from '../db/scope';
import { decodeBase64 } from '../domain/base64';
import { IV_BYTES, MK_BYTES, TAG_BYTES } from '../domain/kek';

/** Standard padded base64 that decodes to exactly `bytes` bytes → Buffer. */
export const base64Bytes = (bytes: number) =>
  z
    .string()
    .max(256)
    .transform((text, ctx) => {
      const decoded = decodeBase64(text);
      if (!decoded) {
        ctx.addIssue({ code: 'custom', message: 'must be standard base64' });
        return z.NEVER;
      }
      if (decoded.length !== bytes) {
        ctx.addIssue({ code: 'custom', message: `must decode to exactly ${bytes} bytes (got ${decoded.length})` });
        return z.NEVER;
      }
      return decoded;
    });

/** A client-built AES-GCM wrap of the 32-byte MK under the recovery secret: ciphertext ‖ 16-byte tag. */
/**
 * The check value of the master key the client holds (`keyCheck` of GET /key). Missing or wrong is a 409
 * MASTER_KEY_MISMATCH from the domain, not a 400: the request is well-formed, the key is not this vault's.
 */
const keyCheck = z.string().max(256).optional();

export const recoveryWrapBody = z.object({
  recoveryWrappedMk: base64Bytes(MK_BYTES + TAG_BYTES),
  recoveryIv: base64Bytes(IV_BYTES),
  keyCheck,
});

export const zeroKnowledgeBody = z.discriminatedUnion('enable', [
  z.object({ enable: z.literal(true), keyCheck }),
  z.object({ enable: z.literal(false), masterKey: base64Bytes(MK_BYTES) }),
]);

export const userIdParams = z.object({
  id: z.string().min(1).max(256).refine(isUserId, 'not a user id'),
});
