import { AppError, type ApiKeyScope } from '@mana/shared';

/**
 * Which scope a personal API key needs, per bearer route of the route table (`src/routes.ts`):
 * `<area>:read` allows GET and HEAD, `<area>` every method. Routes not listed here (`/api/v1/auth/*`:
 * sessions, API keys, 2FA, step-up) are never reachable with a key. Documented in gateway/README.md.
 */
const AREAS: Readonly<Record<string, { read: ApiKeyScope | undefined; write: ApiKeyScope }>> = {
  me: { read: 'me:read', write: 'me' },
  vault: { read: 'vault:read', write: 'vault' },
  credits: { read: 'credits:read', write: 'credits' },
  // The admin route also needs the owner to be an admin: the exchanged token carries role admin only then.
  admin: { read: undefined, write: 'admin' },
};

const scopeDenied = (route: string, needed: string | undefined) =>
  new AppError(
    'SCOPE_DENIED',
    403,
    needed ? `This API key lacks the scope "${needed}" needed here` : `API keys cannot be used on this route (${route})`,
  );

/** Whether a key's route is one a key can ever reach (checked before any exchange). */
export function keyReachable(routeName: string): boolean {
  return routeName in AREAS;
}

/** Throws 403 SCOPE_DENIED unless the scopes allow this method on this route. */
export function assertScope(scopes: ReadonlySet<ApiKeyScope>, routeName: string, method: string | undefined): void {
  const area = AREAS[routeName];
  if (!area) throw scopeDenied(routeName, undefined);
  const reading = method === 'GET' || method === 'HEAD';
  if (scopes.has(area.write) || (reading && area.read !== undefined && scopes.has(area.read))) return;
  throw scopeDenied(routeName, reading && area.read ? area.read : area.write);
}

export { scopeDenied };
