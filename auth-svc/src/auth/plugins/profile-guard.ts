import { APIError } from 'better-auth/api';

/** Mirrors the limits of the user events (shared/src/contracts/events.ts): name ≤ 256, locale ≤ 35. */
const MAX_NAME = 256;
const LOCALE = /^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}$/;

export const PROFILE_ERROR_CODES = {
  NAME_TOO_LONG: { code: 'NAME_TOO_LONG', message: `Name must be at most ${MAX_NAME} characters` },
  INVALID_LOCALE: { code: 'INVALID_LOCALE', message: 'Locale must be a language tag such as "de" or "en-GB"' },
} as const;

/** Database hook (create and update of `user`): refuses profile values the events cannot carry. */
export function guardProfile(data: Record<string, unknown>): void {
  if (typeof data.name === 'string' && [...data.name].length > MAX_NAME)
    throw APIError.from('BAD_REQUEST', PROFILE_ERROR_CODES.NAME_TOO_LONG);
  const locale = data.locale;
  if (locale !== undefined && locale !== null && (typeof locale !== 'string' || locale.length > 35 || !LOCALE.test(locale)))
    throw APIError.from('BAD_REQUEST', PROFILE_ERROR_CODES.INVALID_LOCALE);
}
