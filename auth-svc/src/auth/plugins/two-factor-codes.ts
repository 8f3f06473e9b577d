import { createHmac } from 'node:crypto';
import type { BetterAuthPlugin } from 'better-auth';
import { createAuthMiddleware } from 'better-auth/api';
import { renderSVG } from 'uqr';

/** Prefix of a stored backup code: generated codes (letters, digits, "-") never start with it. */
const HASHED = 'h1:';

export interface BackupCodeHasher {
  hash: (code: string) => string;
  /** `backupCodeOptions.storeBackupCodes` of the two-factor plugin. */
  storage: { encrypt: (json: string) => Promise<string>; decrypt: (stored: string) => Promise<string> };
}

const codeList = (json: string): string[] => {
  const parsed: unknown = JSON.parse(json);
  return Array.isArray(parsed) ? parsed.filter((c): c is string => typeof c === 'string') : [];
};

/**
 * Backup codes stored as keyed SHA-256 (HMAC with the auth secret), never recoverable. The plugin
 * compares the stored list with the submitted code; the `twoFactorCodes` hook hashes the submitted
 * code first, so its comparison and its "remove the used code" both work on hashes.
 */
export function backupCodeHasher(secret: string): BackupCodeHasher {
  const hash = (code: string) => HASHED + createHmac('sha256', secret).update(code.trim()).digest('base64url');
  return {
    hash,
    storage: {
      // Fresh codes arrive in plain text (enable, regenerate); a list after a use is already hashed.
      encrypt: async (json) => JSON.stringify(codeList(json).map((c) => (c.startsWith(HASHED) ? c : hash(c)))),
      decrypt: async (stored) => stored,
    },
  };
}

/** The otpauth:// URI as an SVG QR code in a data URL (shown once, next to the URI). */
export function qrCodeDataUrl(uri: string): string {
  return `data:image/svg+xml;base64,${Buffer.from(renderSVG(uri, { border: 2 })).toString('base64')}`;
}

/** Local plugin around Better Auth's two-factor plugin: hashed backup codes and the enrolment QR code. */
export function twoFactorCodes(hasher: BackupCodeHasher) {
  return {
    id: 'mana-two-factor-codes',
    hooks: {
      before: [
        {
          matcher: (ctx) => ctx.path === '/two-factor/verify-backup-code',
          handler: createAuthMiddleware(async (ctx) => {
            const body: unknown = ctx.body;
            if (typeof body !== 'object' || body === null) return;
            const code = (body as Record<string, unknown>).code;
            if (typeof code !== 'string') return;
            return { context: { body: { ...body, code: hasher.hash(code) } } };
          }),
        },
      ],
      after: [
        {
          matcher: (ctx) => ctx.path === '/two-factor/enable',
          handler: createAuthMiddleware(async (ctx) => {
            const returned: unknown = ctx.context.returned;
            if (typeof returned !== 'object' || returned === null || !('totpURI' in returned)) return;
            const uri = returned.totpURI;
            if (typeof uri !== 'string') return;
            return ctx.json({ ...returned, qrCode: qrCodeDataUrl(uri) });
          }),
        },
      ],
    },
  } satisfies BetterAuthPlugin;
}
