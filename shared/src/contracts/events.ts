import { randomUUID } from 'node:crypto';
import { z } from 'zod';

const userId = z.string().min(1).max(128);
/** A participant's name in an erasure (`auth`, `credits`, `sync`, an app backend…). */
export const SERVICE_NAME_PATTERN = /^[a-z][a-z0-9-]{1,40}$/;
const serviceName = z.string().regex(SERVICE_NAME_PATTERN, 'a lowercase service name (a-z, 0-9, -)');
const counts = z.record(z.string().max(64), z.number().int().nonnegative()).default({});

/** Data schema of every event in the architecture table, by versioned type. */
export const EVENT_SCHEMAS = {
  'user.registered.v1': z.object({
    userId,
    email: z.email(),
    name: z.string().max(256).nullable().optional(),
    locale: z.string().max(35).nullable().optional(),
  }),
  'user.updated.v1': z.object({
    userId,
    changes: z
      .object({
        email: z.email().optional(),
        name: z.string().max(256).nullable().optional(),
        role: z.string().max(64).optional(),
        emailVerified: z.boolean().optional(),
      })
      .refine((c) => Object.keys(c).length > 0, 'at least one changed field'),
  }),
  'session.revoked.v1': z.object({
    sessionId: z.string().min(1).max(256),
    userId,
    /** When the last access token of this session expires; the denylist entry may be dropped after it. */
    expiresAt: z.iso.datetime({ offset: true }),
  }),
  'user.erasure.requested.v1': z.object({
    requestId: z.uuid(),
    userId,
  }),
  'user.erasure.completed.v1': z.object({
    requestId: z.uuid(),
    userId,
    /** Any service of the ecosystem may take part in an erasure: it answers with its own name. */
    service: serviceName,
    deleted: counts,
    pseudonymized: counts,
    /** Rows kept for a legal duty (bookkeeping), with the user id replaced by a keyed pseudonym. */
    retained: counts,
  }),
  'user.tier.changed.v1': z.object({
    userId,
    tier: z.string().min(1).max(64),
  }),
} as const;

export type EventType = keyof typeof EVENT_SCHEMAS;
export type EventData<T extends EventType> = z.output<(typeof EVENT_SCHEMAS)[T]>;
/** What a publisher passes (defaults such as empty count maps may be left out). */
export type EventInput<T extends EventType> = z.input<(typeof EVENT_SCHEMAS)[T]>;

/**
 * An event on the bus. Without a type argument it is the union of every event, so checking `type`
 * narrows `data`: `if (event.type === 'user.registered.v1') event.data.email`.
 */
export type EventEnvelope<T extends EventType = EventType> = {
  [K in T]: { id: string; type: K; occurredAt: string; data: EventData<K> };
}[T];

export const EVENT_TYPES = Object.keys(EVENT_SCHEMAS) as EventType[];

const envelopeBase = z.object({
  id: z.uuid(),
  type: z.enum(EVENT_TYPES as [EventType, ...EventType[]]),
  occurredAt: z.iso.datetime({ offset: true }),
  data: z.unknown(),
});

export class EventValidationError extends Error {
  readonly code = 'EVENT_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'EventValidationError';
  }
}

/** Validates a whole envelope (on publish and on consume). Throws EventValidationError. */
export function parseEnvelope(value: unknown): EventEnvelope {
  const base = envelopeBase.safeParse(value);
  if (!base.success) throw new EventValidationError(`invalid envelope: ${base.error.message}`);
  const data = EVENT_SCHEMAS[base.data.type].safeParse(base.data.data);
  if (!data.success) throw new EventValidationError(`invalid ${base.data.type} data: ${data.error.message}`);
  return { ...base.data, data: data.data } as EventEnvelope;
}

/** Builds a validated envelope with a fresh id. */
export function createEvent<T extends EventType>(type: T, data: EventInput<T>): EventEnvelope<T> {
  return parseEnvelope({ id: randomUUID(), type, occurredAt: new Date().toISOString(), data }) as EventEnvelope<T>;
}
