import type * as tables from '../db/schema';

type UserRow = typeof tables.user.$inferSelect;
type SessionRow = typeof tables.session.$inferSelect;

/** What clients see of a user (never a password hash or token). */
export function publicUser(u: UserRow) {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    emailVerified: u.emailVerified,
    image: u.image,
    role: u.role,
    locale: u.locale,
    createdAt: u.createdAt.toISOString(),
    updatedAt: u.updatedAt.toISOString(),
  };
}

/**
 * The answer of POST /api/v1/auth/register, one fixed shape whether the email was new or already registered
 * (Better Auth answers a taken email with a look-alike user whose keys differ): the id, what the request said,
 * and the time — nothing the database knows about an existing account.
 */
export function registeredUser(u: { id: string; createdAt: Date }, input: { email: string; name: string; locale?: string }) {
  const at = u.createdAt.toISOString();
  return {
    id: u.id,
    email: input.email,
    name: input.name,
    emailVerified: false,
    image: null,
    role: 'user',
    locale: input.locale ?? null,
    createdAt: at,
    updatedAt: at,
  };
}

/** What clients see of a session (never its cookie token). */
export function publicSession(s: SessionRow, currentSessionId?: string) {
  return {
    id: s.id,
    deviceId: s.deviceId,
    deviceName: s.deviceName,
    ipAddress: s.ipAddress,
    userAgent: s.userAgent,
    createdAt: s.createdAt.toISOString(),
    lastUsedAt: s.updatedAt.toISOString(),
    expiresAt: s.expiresAt.toISOString(),
    current: s.id === currentSessionId,
  };
}
