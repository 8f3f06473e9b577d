import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';

/**
 * A local stand-in for Stripe's API (the one outside system that cannot run here): it answers the
 * Checkout Session calls credits-svc makes and records them. Webhook deliveries are signed with the
 * real `stripe` package, so the service verifies them exactly as in production.
 */
export interface FakeStripe {
  url: string;
  sessions: Array<{ id: string; params: URLSearchParams }>;
  /** The next session creation answers this HTTP status with a Stripe error. */
  failNext: (status: number) => void;
  /** A signed delivery of `event` (the `Stripe-Signature` header and the exact body). */
  sign: (event: object, opts?: { timestamp?: number; secret?: string }) => { body: string; signature: string };
  close: () => Promise<void>;
}

const read = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (data += c));
    req.on('end', () => resolve(data));
  });

export async function startFakeStripe(webhookSecret: string): Promise<FakeStripe> {
  const sessions: FakeStripe['sessions'] = [];
  let failWith: number | undefined;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await read(req);
    res.setHeader('content-type', 'application/json');
    if (req.method === 'POST' && req.url === '/v1/checkout/sessions') {
      if (failWith) {
        res.statusCode = failWith;
        failWith = undefined;
        res.end(JSON.stringify({ error: { type: 'invalid_request_error', message: 'fake failure' } }));
        return;
      }
      const params = new URLSearchParams(body);
      const id = `cs_test_${sessions.length + 1}_${Math.random().toString(36).slice(2, 10)}`;
      sessions.push({ id, params });
      res.end(
        JSON.stringify({
          id,
          object: 'checkout.session',
          mode: 'payment',
          url: `https://checkout.stripe.test/c/pay/${id}`,
          client_reference_id: params.get('client_reference_id'),
          metadata: { purchaseId: params.get('metadata[purchaseId]') },
          payment_intent: null,
          status: 'open',
        }),
      );
      return;
    }
    res.statusCode = 404;
    res.end(JSON.stringify({ error: { type: 'invalid_request_error', message: `no fake for ${req.method} ${req.url}` } }));
  };
  const server: Server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    sessions,
    failNext: (status) => {
      failWith = status;
    },
    sign: (event, opts = {}) => {
      const body = JSON.stringify(event);
      const signature = Stripe.webhooks.generateTestHeaderString({
        payload: body,
        secret: opts.secret ?? webhookSecret,
        timestamp: opts.timestamp,
      });
      return { body, signature };
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A `checkout.session.completed` event for a session the fake created: `amountTotal` cents paid in `currency`. */
export function checkoutCompleted(
  eventId: string,
  session: { id: string; purchaseId: string; paymentIntent: string; amountTotal: number; currency: string },
) {
  return {
    id: eventId,
    object: 'event',
    type: 'checkout.session.completed',
    api_version: '2025-01-01',
    created: Math.floor(Date.now() / 1000),
    data: {
      object: {
        id: session.id,
        object: 'checkout.session',
        client_reference_id: session.purchaseId,
        metadata: { purchaseId: session.purchaseId },
        payment_intent: session.paymentIntent,
        amount_total: session.amountTotal,
        currency: session.currency,
        payment_status: 'paid',
        status: 'complete',
      },
    },
  };
}

/** A `charge.refunded` event: `amountRefunded` of `amount` cents of the purchase's payment. */
export function chargeRefunded(eventId: string, c: { paymentIntent: string; amount: number; amountRefunded: number; purchaseId?: string }) {
  return {
    id: eventId,
    object: 'event',
    type: 'charge.refunded',
    api_version: '2025-01-01',
    created: Math.floor(Date.now() / 1000),
    data: {
      object: {
        id: `ch_${eventId}`,
        object: 'charge',
        payment_intent: c.paymentIntent,
        amount: c.amount,
        amount_refunded: c.amountRefunded,
        refunded: c.amount === c.amountRefunded,
        // The PaymentIntent's metadata (startCheckout sets purchaseId there) when the test gives it.
        metadata: c.purchaseId ? { purchaseId: c.purchaseId } : {},
      },
    },
  };
}

/**
 * Stripe's completion of the purchase `purchaseId` that a test wrote itself (session `cs_<purchaseId>`, 100 cents in
 * eur, the amount and currency of the test packages), as the webhook handler gets it after the signature check.
 */
export const completionOf = (purchaseId: string) =>
  checkoutCompleted(`evt_${randomUUID()}`, {
    id: `cs_${purchaseId}`,
    purchaseId,
    paymentIntent: `pi_${purchaseId}`,
    amountTotal: 100,
    currency: 'eur',
  }) as unknown as Stripe.Event;
