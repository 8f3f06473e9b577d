import type { Section, SourceName } from './sources';

/**
 * The summary shows what is held at a glance: long record lists become counts. The export carries the
 * full records instead. Sources are other services' answers, so every shape is read defensively.
 */
const condense: Partial<Record<SourceName, (s: Section) => Section>> = {
  auth: (s) => {
    const { securityEvents, ...rest } = s;
    return { ...rest, securityEventCount: Array.isArray(securityEvents) ? securityEvents.length : (rest.securityEventCount ?? 0) };
  },
  credits: (s) => {
    const { transactions, purchases, reservations, ...rest } = s;
    return {
      ...rest,
      transactionCount: Array.isArray(transactions) ? transactions.length : (transactions ?? 0),
      purchases: Array.isArray(purchases) ? purchases : [],
      reservationCount: Array.isArray(reservations) ? reservations.length : (reservations ?? 0),
    };
  },
};

export function summarize(sections: Record<SourceName, Section | null>): Record<SourceName, Section | null> {
  const out = { ...sections };
  for (const [name, fn] of Object.entries(condense) as [SourceName, (s: Section) => Section][]) {
    const section = out[name];
    if (section) out[name] = fn(section);
  }
  return out;
}
