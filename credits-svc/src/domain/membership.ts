import type { Logger } from 'pino';
import { serviceUrls, type ServiceUrls } from '@mana/shared';
import { CREDITS_ERRORS } from './errors';

export type OrgRole = string;

/** What auth-svc's `GET /api/v1/internal/org/:orgId/member/:userId` answers. */
interface MemberAnswer {
  member: boolean;
  role: OrgRole | null;
}

const POSITIVE_TTL_MS = 30_000;
const MAX_ENTRIES = 10_000;

/**
 * Asks auth-svc whether a user belongs to an organization. Positive answers are cached for at most 30 s
 * (a removed member keeps access that long at most); negative answers are never cached.
 */
export class MembershipClient {
  private readonly cache = new Map<string, { role: OrgRole; until: number }>();
  private readonly auth: ServiceUrls;

  constructor(
    /** `AUTH_SVC_URL`: one URL or a comma-separated list of instances (failover on a refused connection). */
    authUrl: string,
    private readonly serviceKey: string,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
  ) {
    this.auth = serviceUrls(authUrl);
  }

  /** The caller's role in the organization; 403 NOT_A_MEMBER otherwise. */
  async roleOf(orgId: string, userId: string): Promise<OrgRole> {
    const key = `${orgId}\u0000${userId}`;
    const hit = this.cache.get(key);
    if (hit && hit.until > this.clock()) return hit.role;
    this.cache.delete(key);
    const answer = await this.ask(orgId, userId);
    if (!answer.member || !answer.role) throw CREDITS_ERRORS.notAMember();
    if (this.cache.size >= MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, { role: answer.role, until: this.clock() + POSITIVE_TTL_MS });
    return answer.role;
  }

  async requireBuyer(orgId: string, userId: string): Promise<void> {
    const role = await this.roleOf(orgId, userId);
    if (role !== 'owner' && role !== 'admin') throw CREDITS_ERRORS.notAnOrgAdmin();
  }

  private async ask(orgId: string, userId: string): Promise<MemberAnswer> {
    const path = `/api/v1/internal/org/${encodeURIComponent(orgId)}/member/${encodeURIComponent(userId)}`;
    let res: Response;
    try {
      res = await this.auth.fetch(path, { headers: { 'x-service-key': this.serviceKey }, signal: AbortSignal.timeout(5_000) });
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'membership check failed');
      throw CREDITS_ERRORS.membershipUnavailable(err);
    }
    if (res.status === 400 || res.status === 404) return { member: false, role: null };
    if (!res.ok) {
      this.logger.warn({ status: res.status }, 'membership check failed');
      throw CREDITS_ERRORS.membershipUnavailable();
    }
    const body = (await res.json()) as Partial<MemberAnswer>;
    return { member: body.member === true, role: typeof body.role === 'string' ? body.role : null };
  }
}
