import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level, so equal requests hash equally whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** What an idempotency key is bound to: the request it was first used with. */
export function requestHash(request: Record<string, unknown>): string {
  return createHash('sha256').update(canonical(request)).digest('base64url');
}
