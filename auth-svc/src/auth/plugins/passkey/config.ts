import { z } from 'zod';
import { csv } from '@mana/shared';

/** Passkey (WebAuthn) relying party settings; every one derives from BASE_URL and COOKIE_DOMAIN when unset. */
export const passkeyEnv = {
  /**
   * WebAuthn relying party ID: the domain passkeys are bound to. Default: COOKIE_DOMAIN without its
   * leading dot when set (passkeys work on every subdomain), else BASE_URL's host name. Changing it
   * later orphans every registered passkey.
   */
  RP_ID: z
    .string()
    .regex(/^[a-z0-9.-]+$/, 'a host name (lower case, no scheme, no port)')
    .optional(),
  /** Name the authenticator shows for the relying party. */
  RP_NAME: z.string().min(1).max(64).default('Mana'),
  /**
   * Origins whose WebAuthn responses are accepted (comma-separated). Default: BASE_URL's origin plus
   * the CORS_ORIGINS on RP_ID or one of its subdomains.
   */
  PASSKEY_ORIGINS: csv,
};

interface PasskeyConfigView {
  BASE_URL: string;
  COOKIE_DOMAIN?: string;
  CORS_ORIGINS: string[];
  RP_ID?: string;
  RP_NAME: string;
  PASSKEY_ORIGINS: string[];
}

export interface RelyingParty {
  rpID: string;
  rpName: string;
  origins: string[];
}

/** A host is on the RP ID when it is the RP ID or one of its subdomains (WebAuthn §5.1.3/§5.1.4). */
const onRpId = (host: string, rpId: string) => host === rpId || host.endsWith(`.${rpId}`);

const hostOf = (origin: string): string | undefined => {
  try {
    return new URL(origin).hostname;
  } catch {
    return undefined;
  }
};

/** RP ID, name and accepted origins, with the defaults applied. */
export function relyingParty(cfg: PasskeyConfigView): RelyingParty {
  const rpID = cfg.RP_ID ?? cfg.COOKIE_DOMAIN?.replace(/^\./, '') ?? new URL(cfg.BASE_URL).hostname;
  const derived = [new URL(cfg.BASE_URL).origin, ...cfg.CORS_ORIGINS.filter((o) => onRpId(hostOf(o) ?? '', rpID))];
  const origins = cfg.PASSKEY_ORIGINS.length ? cfg.PASSKEY_ORIGINS : derived;
  return { rpID, rpName: cfg.RP_NAME, origins: [...new Set(origins.map((o) => new URL(o).origin))] };
}

/** Refuses a relying party browsers would refuse: every accepted origin must be on the RP ID. */
export function passkeyRules(cfg: PasskeyConfigView, ctx: z.RefinementCtx): void {
  for (const origin of cfg.PASSKEY_ORIGINS) {
    const url = URL.canParse(origin) ? new URL(origin) : undefined;
    if (!url || url.origin !== origin.replace(/\/$/, ''))
      ctx.addIssue({ code: 'custom', path: ['PASSKEY_ORIGINS'], message: `"${origin}" is not an origin (scheme://host[:port])` });
  }
  if (cfg.PASSKEY_ORIGINS.some((o) => !URL.canParse(o))) return;
  const rp = relyingParty(cfg);
  for (const origin of rp.origins) {
    if (!onRpId(new URL(origin).hostname, rp.rpID))
      ctx.addIssue({
        code: 'custom',
        path: [cfg.RP_ID ? 'RP_ID' : 'PASSKEY_ORIGINS'],
        message: `origin ${origin} is not on the relying party ID "${rp.rpID}" (nor a subdomain of it)`,
      });
  }
}
