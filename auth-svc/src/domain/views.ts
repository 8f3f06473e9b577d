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
