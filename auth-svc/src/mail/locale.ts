export type MailLocale = 'de' | 'en';

const SUPPORTED: readonly MailLocale[] = ['de', 'en'];

function primary(tag: string): MailLocale | undefined {
  const lang = tag.trim().toLowerCase().split(/[-_]/)[0];
  return SUPPORTED.find((l) => l === lang);
}

/** The user's stored locale wins; then the request's Accept-Language (by q-value); then English. */
export function pickLocale(userLocale: string | null | undefined, acceptLanguage?: string | null): MailLocale {
  if (userLocale) {
    const l = primary(userLocale);
    if (l) return l;
  }
  if (acceptLanguage) {
    const ranked = acceptLanguage
      .split(',')
      .map((part) => {
        const [tag = '', ...params] = part.split(';');
        const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find(Boolean);
        return { tag, q: q === undefined ? 1 : Number(q) };
      })
      .filter((x) => x.q > 0)
      .sort((a, b) => b.q - a.q);
    for (const { tag } of ranked) {
      const l = primary(tag);
      if (l) return l;
    }
  }
  return 'en';
}
