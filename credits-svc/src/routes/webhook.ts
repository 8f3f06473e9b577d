import express, { Router } from 'express';
import Stripe from 'stripe';
import { handleStripeEvent } from '../domain/purchases';
import { CREDITS_ERRORS } from '../domain/errors';
import { paymentForErased } from '../metrics';
import type { CreditsContext } from './context';

/** Stripe's signature tolerance: a delivery older than five minutes is refused (replay protection). */
const TOLERANCE_SECONDS = 300;

/**
 * `POST /api/v1/credits/webhook` — public at the gateway; Stripe's signature over the raw body is the
 * only credential. Mounted before the JSON parser so the body stays byte-exact.
 */
export function webhookRoutes(ctx: CreditsContext, bodyLimit: string): Router {
  const router = Router();
  router.post('/', express.raw({ type: '*/*', limit: bodyLimit }), async (req, res) => {
    const signature = req.get('stripe-signature');
    const raw: unknown = req.body;
    if (!ctx.webhookSecret || !signature || !Buffer.isBuffer(raw)) throw CREDITS_ERRORS.invalidSignature();
    let event: Stripe.Event;
    try {
      // constructEvent compares signatures in constant time and checks the timestamp tolerance.
      event = Stripe.webhooks.constructEvent(raw, signature, ctx.webhookSecret, TOLERANCE_SECONDS);
    } catch {
      throw CREDITS_ERRORS.invalidSignature();
    }
    const outcome = await handleStripeEvent(ctx.db, event, ctx.policy());
    if (outcome === 'erased') {
      // Acknowledged (Stripe stops retrying) and counted; the event id is all an operator needs to find the payment in
      // Stripe and refund it. No user id: the purchase and its ledger rows carry the erasure's pseudonym only.
      paymentForErased.emit(event.type);
      req.log.warn(
        { eventId: event.id, type: event.type, outcome },
        'stripe event for an erased user: nothing granted, settle it in Stripe',
      );
    } else if (outcome === 'refused')
      // A signed event that does not match its purchase (another session, amount or currency): nothing granted.
      req.log.warn(
        { eventId: event.id, type: event.type, outcome },
        'stripe event refused: session, amount or currency differ from the purchase',
      );
    else req.log.info({ eventId: event.id, type: event.type, outcome }, 'stripe event');
    res.json({ received: true, outcome });
  });
  return router;
}
