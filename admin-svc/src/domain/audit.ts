import { listAudit, type AuditFilter } from '../db/audit';
import type { AdminDeps } from './context';

export function auditTrail(deps: AdminDeps, filter: AuditFilter) {
  return listAudit(deps.db, filter);
}
