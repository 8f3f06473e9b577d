import { startAuthService } from '../../auth-svc/src/server';
import { recordQueries, statementLabel } from '../../auth-svc/test/helpers/query-log';

/** What each statement of one `POST /api/v1/auth/login` is for (labels as `statementLabel` makes them). */
export const PURPOSE: Record<string, string> = {
  'insert auth.sign_in_lockouts':
    'lockout plugin: count this attempt before the password is checked (upsert); is the email locked, is the attempt beyond the limit',
  'select auth.user': 'Better Auth: the user by email',
  'select auth.account': 'Better Auth: the credential account (password hash)',
  'insert auth.session':
    'Better Auth: the session row; its trigger `session_user_not_banned` takes the user row FOR SHARE and refuses a banned user',
  'with auth.security_events':
    'audit: `sign_in_success` + known-device upsert (+ is it a new device) + the lockout count goes (the success clears it) — one statement',
  'with auth.session': '/api/v1: device fields, refresh token, user and current signing-key id — one statement',
  'delete auth.sign_in_lockouts': 'lockout plugin: the sign-in succeeded, the failure count goes',
};

/** The 18 statements of one login before issue 16's work (measured the same way on 93338ad). */
export const BEFORE: Array<[string, string]> = [
  ['select auth.sign_in_lockouts', 'lockout plugin: is the email locked'],
  ['select auth.user', 'Better Auth: the user by email'],
  ['select auth.account', 'Better Auth: the credential account'],
  ['select auth.user_bans', 'ban plugin: no session for a banned user'],
  ['insert auth.session', 'Better Auth: the session row'],
  ['begin', 'ban plugin re-check: transaction'],
  ['select auth.user … for share', 'ban plugin re-check: order with a concurrent ban'],
  ['select auth.user_bans', 'ban plugin re-check: a ban committed meanwhile'],
  ['commit', 'ban plugin re-check'],
  ['delete auth.sign_in_lockouts', 'lockout plugin: clear the failure count (always)'],
  ['insert auth.security_events', 'audit: `sign_in_success`'],
  ['insert auth.known_devices … on conflict', 'audit: known device'],
  ['begin', '/api/v1: refresh-token family'],
  ['update auth.session', '/api/v1: device fields'],
  ['insert auth.refresh_tokens', '/api/v1: refresh token'],
  ['commit', '/api/v1: refresh-token family'],
  ['select auth.session join auth.user', '/api/v1: re-read session and user for the token'],
  ['select auth.jwks', 'jwt plugin: the signing key (decrypted and imported on every token)'],
];

export interface Statements {
  login: string[];
  loginSql: string[];
  sessionCheck: string[];
}

/**
 * Counts the statements of one login and one bearer session check on an auth-svc of its own in this process
 * (pg's client wrapped; only statements the request made are counted, not the outbox relay's poll).
 */
export async function countStatements(env: Record<string, string>): Promise<Statements> {
  const svc = await startAuthService({ env: { ...env, AUTH_SVC_PORT: '0' } });
  try {
    const queries = recordQueries(svc.server);
    const headers = { 'content-type': 'application/json', 'user-agent': 'bench-statements' };
    const body = JSON.stringify({ email: 'bench-statements@example.com', password: 'Counted Statements Passphrase 7' });
    await fetch(`${svc.url}/api/v1/auth/register`, { method: 'POST', headers, body });
    const login = () => fetch(`${svc.url}/api/v1/auth/login`, { method: 'POST', headers, body });
    await (await login()).text(); // the account's first device, the signing key into memory
    let accessToken = '';
    const loginSql = await queries.record(async () => {
      const res = await login();
      if (res.status !== 200) throw new Error(`login: ${res.status}`);
      accessToken = ((await res.json()) as { accessToken: string }).accessToken;
    });
    const check = () => fetch(`${svc.url}/api/v1/auth/session`, { headers: { authorization: `Bearer ${accessToken}` } });
    await (await check()).text();
    const sessionSql = await queries.record(async () => (await check()).text());
    return { login: loginSql.map(statementLabel), loginSql, sessionCheck: sessionSql.map(statementLabel) };
  } finally {
    await svc.close();
  }
}
