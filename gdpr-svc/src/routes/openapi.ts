import { openApiFragment, type ApiOperation } from '@mana/shared';
import { adminErasureBody, confirmBody, erasureParams, erasureQuery, userIdParams } from './schemas';

const ERASURE = '`{ requestId, status, statusUrl, created }`: `statusUrl` (with its capability token) answers how the erasure goes';

/** Every route of gdpr-svc, with the schemas the routes parse (`./schemas`). */
export const gdprApi: readonly ApiOperation[] = [
  {
    method: 'get',
    path: '/api/v1/me/data',
    access: 'bearer',
    summary: 'What every service holds about the caller (counts and sections)',
    responses: { 200: 'data summary, one section per service' },
  },
  {
    method: 'get',
    path: '/api/v1/me/data/export',
    access: 'bearer',
    summary: 'Download everything about the caller as one JSON document (attachment)',
    responses: { 200: 'the export document (`Content-Disposition: attachment`)' },
    errors: { 429: ['EXPORT_RATE_LIMITED'] },
  },
  {
    method: 'delete',
    path: '/api/v1/me/data',
    access: 'bearer',
    stepUp: true,
    summary: 'Erase the caller’s account in every service (body `{ "confirm": "DELETE" }`)',
    body: confirmBody,
    responses: { 202: ERASURE },
    errors: { 400: ['CONFIRMATION_REQUIRED'] },
  },
  {
    method: 'get',
    path: '/api/v1/gdpr/erasures/:requestId',
    access: 'public',
    summary: 'Status of an erasure by its capability token; a finished one carries the signed receipt',
    params: erasureParams,
    query: erasureQuery,
    responses: { 200: '`{ requestId, status, participants, receipt? }`' },
    errors: { 404: ['ERASURE_NOT_FOUND'] },
  },
  {
    method: 'get',
    path: '/api/v1/gdpr/jwks.json',
    access: 'public',
    summary: 'Public keys that verify erasure receipts',
    responses: { 200: 'JWKS' },
  },
  {
    method: 'post',
    path: '/api/v1/internal/gdpr/erasures',
    access: 'service',
    summary: 'Start an erasure on an administrator’s behalf (admin-svc)',
    body: adminErasureBody,
    responses: { 202: ERASURE },
  },
  {
    method: 'get',
    path: '/api/v1/internal/gdpr/users/:id/data',
    access: 'service',
    summary: 'A user’s data summary (admin-svc)',
    params: userIdParams,
    responses: { 200: 'data summary' },
  },
];

export const gdprOpenApi = () =>
  openApiFragment({
    service: 'gdpr-svc',
    description: 'Self-service data summary, export and erasure across every service, with signed receipts.',
    operations: gdprApi,
  });
