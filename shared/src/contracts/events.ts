import { randomUUID } from 'node:crypto';
import { z } from 'zod';

const userId = z.string().min(1).max(128);

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
    service: z.enum(['auth', 'vault', 'credits', 'admin', 'gdpr']),
    deleted: z.record(z.string(), z.number().int().nonnegative()).default({}),
    pseudonymized: z.record(z.string(), z.number().int().nonnegative()).default({}),
  }),
  'user.tier.changed.v1': z.object({
    userId,
    tier: z.string().min(1).max(64),
  }),
} as const;

export type EventType = keyof typeof EVENT_SCHEMAS;
export type EventData<T extends EventType> = z.output<(typeof EVENT_SCHEMAS)[T]>;

export interface EventEnvelope<T extends EventType = EventType> {
  id: string;
  type: T;
  occurredAt: string;
  data: EventData<T>;
}

export const EVENT_TYPES = Object.keys(EVENT_SCHEMAS) as EventType[];

const envelopeBase = z.object({
  id: z.uuid(),
  type: z.enum(EVENT_TYPES as [EventType, ...EventType[]]),
  occurredAt: z.iso.datetime({ offset: true }),
  data: z.unknown(),
});

export class EventValidationError extends Error {
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
export function createEvent<T extends EventType>(type: T, data: EventData<T>): EventEnvelope<T> {
  return parseEnvelope({ id: randomUUID(), type, occurredAt: new Date().toISOString(), data }) as EventEnvelope<T>;
}
