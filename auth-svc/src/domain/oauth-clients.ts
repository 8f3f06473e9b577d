import { eq } from 'drizzle-orm';
import * as tables from '../db/schema';
import type { Conn } from '../db/types';

/** A registered OAuth client's display name and redirect URIs, unless it is unknown or disabled. */
export async function activeOAuthClient(
  conn: Conn,
  clientId: string,
): Promise<{ name: string | null; redirectUris: string[] } | undefined> {
  const [row] = await conn
    .select({ name: tables.oauthClient.name, redirectUris: tables.oauthClient.redirectUris, disabled: tables.oauthClient.disabled })
    .from(tables.oauthClient)
    .where(eq(tables.oauthClient.clientId, clientId))
    .limit(1);
  if (!row || row.disabled) return undefined;
  return { name: row.name, redirectUris: row.redirectUris };
}
