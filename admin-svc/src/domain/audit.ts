import { listAudit, type AuditFilter } from '../db/audit';
import { asApp } from '../db/scope';
import type { AdminDeps } from './context';

export function auditTrail(deps: AdminDeps, filter: AuditFilter) {
  return asApp(deps.db, (tx) => listAudit(tx, filter));
}
