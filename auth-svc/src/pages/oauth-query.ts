import type { Db } from '../db/types';
import { activeOAuthClient } from '../domain/oauth-clients';

/**
 * The provider signs the authorization request it hands to the login and consent pages (`sig`,
 * with the signed parameter names in `ba_param`). Only those parameters are passed back, so the
 * page's own parameters (`lang`, `method`) never break the signature.
 */
export function signedOAuthQuery(search: URLSearchParams): string {
  const names = new Set(search.getAll('ba_param'));
  if (!search.has('sig') || names.size === 0) return '';
  const out = new URLSearchParams();
  for (const [key, value] of search) if (key === 'sig' || key === 'ba_param' || names.has(key)) out.append(key, value);
  return out.toString();
}

export function searchOf(url: string): URLSearchParams {
  const q = url.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
}

export interface RequestingClient {
  clientId: string;
  name: string;
  /** Origin of the request's redirect URI, only when it is registered for the client. */
  redirectOrigin?: string;
  scopes: string[];
}

/** The client named in a signed OAuth query (display name, scopes, CSP form-action target). */
export async function requestingClient(db: Db, oauthQuery: string): Promise<RequestingClient | undefined> {
  const q = new URLSearchParams(oauthQuery);
  const clientId = q.get('client_id');
  if (!clientId) return undefined;
  const row = await activeOAuthClient(db, clientId);
  if (!row) return undefined;
  const redirectUri = q.get('redirect_uri');
  const registered = redirectUri && row.redirectUris.includes(redirectUri) ? redirectUri : undefined;
  return {
    clientId,
    name: row.name ?? clientId,
    redirectOrigin: registered ? new URL(registered).origin : undefined,
    scopes: (q.get('scope') ?? '').split(' ').filter(Boolean),
  };
}
