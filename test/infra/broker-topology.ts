import { AmqpBus, createLogger } from '@mana/shared';
import { CONSUMER as ADMIN_USER_REGISTERED } from '../../admin-svc/src/events/user-registered';
import { CONSUMER as ADMIN_USER_UPDATED } from '../../admin-svc/src/events/user-updated';
import { ERASURE_QUEUE as ADMIN_ERASURE } from '../../admin-svc/src/events/erasure';
import { ERASURE_QUEUE as CREDITS_ERASURE } from '../../credits-svc/src/events/erasure';
import { SIGNUP_QUEUE as CREDITS_SIGNUP } from '../../credits-svc/src/events/user-registered';
import { ERASURE_QUEUE as VAULT_ERASURE } from '../../vault-svc/src/events/erasure';
import { retryExchangeName, topologyQueues } from '../../shared/src/bus/amqp-topology';

/**
 * What each service does on the broker, named as the code names it: its queues (a shared queue with its
 * `.dlq` and `.retry.<n>` queues; a per-instance queue — the revocation denylist, `<service name>.revocations`
 * from shared/src/service.ts — with `.instance.<id>`), the event types it publishes and the keys it binds.
 */
export interface ServiceTopology {
  /** Shared (durable) queues with their dead-letter and retry queues. */
  shared: string[];
  /** Per-instance queue names as one instance declares them. */
  perInstance: string[];
  publishes: string[];
  binds: string[];
}

const bus = new AmqpBus({ url: 'amqp://unused', logger: createLogger('test', 'silent') });
const instance = (queue: string) => bus.queueName({ queue, perInstance: true });

export const BROKER_SERVICES: Record<string, ServiceTopology> = {
  // auth joins the erasure saga under its service name (auth-svc/src/events/erasure.ts, `service: 'auth'`).
  'auth-svc': {
    shared: ['auth'],
    perInstance: [],
    publishes: ['user.registered.v1', 'user.updated.v1', 'session.revoked.v1', 'user.erasure.completed.v1'],
    binds: ['user.erasure.requested.v1'],
  },
  'vault-svc': {
    shared: [VAULT_ERASURE],
    perInstance: [instance('vault-svc.revocations')],
    publishes: ['user.erasure.completed.v1'],
    binds: ['user.erasure.requested.v1', 'session.revoked.v1'],
  },
  // gdpr-svc/src/events/erasure-completed.ts subscribes on queue 'gdpr'.
  'gdpr-svc': {
    shared: ['gdpr'],
    perInstance: [instance('gdpr-svc.revocations')],
    publishes: ['user.erasure.requested.v1'],
    binds: ['user.erasure.completed.v1', 'session.revoked.v1'],
  },
  'admin-svc': {
    shared: [ADMIN_ERASURE, ADMIN_USER_REGISTERED, ADMIN_USER_UPDATED],
    perInstance: [instance('admin-svc.revocations')],
    publishes: ['user.tier.changed.v1', 'user.erasure.completed.v1'],
    binds: ['user.registered.v1', 'user.updated.v1', 'user.erasure.requested.v1', 'session.revoked.v1'],
  },
  'credits-svc': {
    shared: [CREDITS_ERASURE, CREDITS_SIGNUP],
    perInstance: [instance('credits-svc.revocations')],
    publishes: ['user.erasure.completed.v1'],
    binds: ['user.registered.v1', 'user.erasure.requested.v1', 'session.revoked.v1'],
  },
  // gateway/src/server.ts: the denylist queue 'gateway.revocations', per instance; it publishes nothing.
  gateway: { shared: [], perInstance: [instance('gateway.revocations')], publishes: [], binds: ['session.revoked.v1'] },
};

/** Every queue name of a service: shared ones with their `.dlq` and `.retry.<n>`, and the per-instance ones. */
export function queuesOf(t: ServiceTopology): string[] {
  return [...t.shared.flatMap((queue) => topologyQueues({ queue, retryDelaysMs: [1_000, 5_000, 30_000] })), ...t.perInstance];
}

/** The exchanges a service declares of its own: each shared queue's retry exchange. */
export function exchangesOf(t: ServiceTopology): string[] {
  return t.shared.map(retryExchangeName);
}
