import { Router, type Response } from 'express';
import { ERRORS, parseBody, parseParams, parseQuery } from '@mana/shared';
import { withOwnerScope, withWalletWrite } from '../db/scope';
import { balanceOf } from '../domain/balance';
import { CREDITS_ERRORS } from '../domain/errors';
import { actorClaim } from '../domain/ledger';
import { listTransactions, usage } from '../domain/history';
import { listPurchases, startCheckout } from '../domain/purchases';
import { capture, getReservation, hold, release } from '../domain/reservations';
import { orInsufficient, spend, spendAlone } from '../domain/spend';
import { callerId, idempotencyKeyOf, walletOf, type CreditsContext } from './context';
import {
  captureBody,
  organizationQuery,
  purchaseBody,
  releaseBody,
  reservationBody,
  reservationParams,
  transactionsQuery,
  usageQuery,
  useBody,
} from './schemas';

/** A replayed idempotent request answers the first answer again, 200 instead of 201, and says so. */
function created(res: Response, replayed: boolean, body: unknown): void {
  if (replayed) res.set('Idempotency-Replayed', 'true');
  res.status(replayed ? 200 : 201).json(body);
}

/** `/api/v1/credits/*` — mounted behind requireAuth; the user is always the token's `sub`. */
export function creditsRoutes(ctx: CreditsContext): Router {
  const router = Router();

  router.get('/balance', async (req, res) => {
    const { organizationId } = parseQuery(organizationQuery, req.query);
    const owner = await walletOf(ctx, callerId(req), organizationId);
    res.set('Cache-Control', 'no-store').json(await balanceOf(ctx.db, owner, ctx.policy()));
  });

  router.post('/use', async (req, res) => {
    const body = parseBody(useBody, req.body);
    const key = idempotencyKeyOf(req, body.idempotencyKey);
    const userId = callerId(req);
    const owner = await walletOf(ctx, userId, body.organizationId);
    const input = {
      owner,
      actor: userId,
      amount: body.amount,
      appId: body.appId,
      description: body.description,
      idempotencyKey: key,
      metadata: body.metadata,
    };
    const result = orInsufficient(
      await withWalletWrite(ctx.db, owner, (tx) => spend(tx, input, ctx.policy()), {
        atomic: true,
        alone: () => spendAlone(ctx.db, input, ctx.policy()),
        claim: actorClaim(owner, userId, ctx.policy()),
      }),
    );
    created(res, result.replayed, result.body);
  });

  router.get('/transactions', async (req, res) => {
    const q = parseQuery(transactionsQuery, req.query);
    const owner = await walletOf(ctx, callerId(req), q.organizationId);
    const page = await withOwnerScope(ctx.db, owner, (tx) => listTransactions(tx, owner, q));
    if (page.next) {
      const next = new URLSearchParams({ limit: String(q.limit), cursor: page.next });
      if (q.organizationId) next.set('organizationId', q.organizationId);
      res.set('Link', `<${req.baseUrl}/transactions?${next.toString()}>; rel="next"`);
    }
    res.json(page.items);
  });

  router.get('/usage', async (req, res) => {
    const q = parseQuery(usageQuery, req.query);
    const owner = await walletOf(ctx, callerId(req), q.organizationId);
    res.json(await withOwnerScope(ctx.db, owner, (tx) => usage(tx, owner, q.from, q.to)));
  });

  router.get('/packages', (_req, res) => {
    res.json(ctx.packages.map(({ id, name, credits, priceCents, currency }) => ({ id, name, credits, priceCents, currency })));
  });

  router.get('/purchases', async (req, res) => {
    const { organizationId } = parseQuery(organizationQuery, req.query);
    const owner = await walletOf(ctx, callerId(req), organizationId);
    res.json(await withOwnerScope(ctx.db, owner, (tx) => listPurchases(tx, owner)));
  });

  router.post('/purchases', async (req, res) => {
    const body = parseBody(purchaseBody, req.body);
    const userId = callerId(req);
    const pkg = ctx.packages.find((p) => p.id === body.packageId);
    if (!pkg) throw CREDITS_ERRORS.packageNotFound();
    if (body.organizationId) await ctx.membership.requireBuyer(body.organizationId, userId);
    const owner = await walletOf(ctx, userId, body.organizationId);
    res.status(201).json(await startCheckout(ctx, owner, userId, pkg));
  });

  router.post('/reservations', async (req, res) => {
    const body = parseBody(reservationBody, req.body);
    const key = idempotencyKeyOf(req, body.idempotencyKey);
    if (!key) throw ERRORS.validation('request body', [{ path: 'idempotencyKey', message: 'required (or the Idempotency-Key header)' }]);
    const userId = callerId(req);
    const owner = await walletOf(ctx, userId, body.organizationId);
    const input = {
      owner,
      actor: userId,
      amount: body.amount,
      appId: body.appId,
      description: body.description,
      ttlSeconds: body.ttlSeconds,
      idempotencyKey: key,
    };
    const result = orInsufficient(
      await withWalletWrite(ctx.db, owner, (tx) => hold(tx, input, ctx.policy()), { claim: actorClaim(owner, userId, ctx.policy()) }),
    );
    created(res, result.replayed, result.reservation);
  });

  router.get('/reservations/:id', async (req, res) => {
    const { id } = parseParams(reservationParams, req.params);
    const { organizationId } = parseQuery(organizationQuery, req.query);
    const owner = await walletOf(ctx, callerId(req), organizationId);
    res.json(await withOwnerScope(ctx.db, owner, (tx) => getReservation(tx, owner, id)));
  });

  router.post('/reservations/:id/capture', async (req, res) => {
    const { id } = parseParams(reservationParams, req.params);
    const body = parseBody(captureBody, req.body);
    const userId = callerId(req);
    const owner = await walletOf(ctx, userId, body.organizationId);
    res.json(
      await withWalletWrite(ctx.db, owner, (tx) => capture(tx, owner, userId, id, body.amount, ctx.policy()), {
        claim: actorClaim(owner, userId, ctx.policy()),
      }),
    );
  });

  router.post('/reservations/:id/release', async (req, res) => {
    const { id } = parseParams(reservationParams, req.params);
    const body = parseBody(releaseBody, req.body ?? {});
    const userId = callerId(req);
    const owner = await walletOf(ctx, userId, body.organizationId);
    res.json(
      await withWalletWrite(ctx.db, owner, (tx) => release(tx, owner, userId, id, ctx.policy()), {
        claim: actorClaim(owner, userId, ctx.policy()),
      }),
    );
  });

  return router;
}
