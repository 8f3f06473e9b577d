import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '@mana/shared';
import { createManaAuthClient, type ManaAuthClient } from '../../auth-svc/src/client';
import { call, cookieFetch } from '../helpers/http';
import { STACK_SERVICE_KEY, startStack, type Stack } from '../helpers/stack';
import { registerVerified } from '../helpers/users';

interface Person {
  email: string;
  password: string;
  userId: string;
  c: ManaAuthClient;
}

describe('organizations: full life cycle through the gateway', () => {
  let s: Stack;
  let owner: Person;
  let admin: Person;
  let member: Person;
  let orgId = '';
  const key = { 'x-service-key': STACK_SERVICE_KEY };
  const membership = (userId: string, org = orgId) =>
    call<{ member: boolean; role: string | null }>(`${s.gatewayUrl}/api/v1/internal/org/${org}/member/${userId}`, { headers: key });
  const person = async (tag: string): Promise<Person> => {
    const u = await registerVerified(s, `${tag}-${crypto.randomUUID().slice(0, 8)}@example.com`);
    const c = createManaAuthClient({ baseURL: `${s.gatewayUrl}/api/auth`, fetch: cookieFetch(s.gatewayUrl).fetch });
    expect((await c.signIn.email({ email: u.email, password: u.password })).error).toBeNull();
    return { ...u, c };
  };
  const invitationId = async (to: Person) => {
    const mail = await s.smtp.waitFor(to.email, (m) => m.subject === 'You are invited to an organization on Mana' && !seen.has(m.raw));
    seen.add(mail.raw);
    return new URL(s.smtp.linkIn(mail)).searchParams.get('id') ?? '';
  };
  const seen = new Set<string>();

  beforeAll(async () => {
    s = await startStack();
    [owner, admin, member] = await Promise.all([person('owner'), person('admin'), person('member')]);
  });
  afterAll(async () => {
    await s?.close();
  });

  it('creates an organization (creator = owner) and makes it the active one of the session', async () => {
    const created = await owner.c.organization.create({ name: 'Acme', slug: `acme-${owner.userId.slice(0, 6).toLowerCase()}` });
    expect(created.error).toBeNull();
    orgId = created.data?.id ?? '';
    expect((await membership(owner.userId)).body).toEqual({ member: true, role: 'owner' });
    expect((await owner.c.organization.setActive({ organizationId: orgId })).error).toBeNull();
    const active = await s.sql.query('select active_organization_id from auth.session where user_id = $1', [owner.userId]);
    expect(active.rows.map((r: { active_organization_id: string }) => r.active_organization_id)).toContain(orgId);
    expect((await owner.c.organization.getActiveMember()).data?.role).toBe('owner');
  });

  it('invites by mail; the invitee accepts or rejects', async () => {
    expect((await owner.c.organization.inviteMember({ email: admin.email, role: 'admin', organizationId: orgId })).error).toBeNull();
    const invite = await s.smtp.waitFor(admin.email, (m) => m.subject === 'You are invited to an organization on Mana');
    expect(invite.text).toContain('Acme');
    expect(invite.text).toContain('admin');
    const id = await invitationId(admin);
    // Only the invitee can accept.
    expect((await member.c.organization.acceptInvitation({ invitationId: id })).error?.status).toBeGreaterThanOrEqual(400);
    expect((await admin.c.organization.acceptInvitation({ invitationId: id })).error).toBeNull();
    expect((await membership(admin.userId)).body).toEqual({ member: true, role: 'admin' });

    expect((await admin.c.organization.inviteMember({ email: member.email, role: 'member', organizationId: orgId })).error).toBeNull();
    expect((await member.c.organization.rejectInvitation({ invitationId: await invitationId(member) })).error).toBeNull();
    expect((await membership(member.userId)).body).toEqual({ member: false, role: null });
    expect((await owner.c.organization.inviteMember({ email: member.email, role: 'member', organizationId: orgId })).error).toBeNull();
    expect((await member.c.organization.acceptInvitation({ invitationId: await invitationId(member) })).error).toBeNull();

    const listed = await owner.c.organization.listMembers({ query: { organizationId: orgId } });
    const roles = Object.fromEntries((listed.data?.members ?? []).map((m) => [m.userId, m.role]));
    expect(roles).toEqual({ [owner.userId]: 'owner', [admin.userId]: 'admin', [member.userId]: 'member' });
  });

  it('enforces the roles’ permissions', async () => {
    const other = await s.sql.query<{ id: string }>('select id from auth.member where user_id = $1 and organization_id = $2', [
      admin.userId,
      orgId,
    ]);
    const adminMemberId = other.rows[0].id;
    // A member may not invite, change roles or delete; an admin may not delete the organization.
    expect(
      (await member.c.organization.inviteMember({ email: 'x@example.com', role: 'member', organizationId: orgId })).error?.status,
    ).toBe(403);
    expect(
      (await member.c.organization.updateMemberRole({ memberId: adminMemberId, role: 'member', organizationId: orgId })).error?.status,
    ).toBe(403);
    expect((await admin.c.organization.delete({ organizationId: orgId })).error?.status).toBe(403);
    expect((await member.c.organization.delete({ organizationId: orgId })).error?.status).toBe(403);
    const perm = await member.c.organization.hasPermission({ organizationId: orgId, permissions: { member: ['delete'] } });
    expect(perm.data?.success).toBe(false);
    const ownerPerm = await owner.c.organization.hasPermission({ organizationId: orgId, permissions: { organization: ['delete'] } });
    expect(ownerPerm.data?.success).toBe(true);
  });

  it('changes roles, removes members, lets members leave, answers the internal check, and audits it all', async () => {
    const row = await s.sql.query<{ id: string }>('select id from auth.member where user_id = $1 and organization_id = $2', [
      member.userId,
      orgId,
    ]);
    const memberId = row.rows[0].id;
    expect((await owner.c.organization.updateMemberRole({ memberId, role: 'admin', organizationId: orgId })).error).toBeNull();
    expect((await membership(member.userId)).body).toEqual({ member: true, role: 'admin' });

    const data = await call<{ organizations: Array<{ id: string; role: string }> }>(
      `${s.gatewayUrl}/api/v1/internal/users/${member.userId}/data`,
      { headers: key },
    );
    expect(data.body.organizations).toEqual([expect.objectContaining({ id: orgId, name: 'Acme', role: 'admin' })]);

    expect((await owner.c.organization.removeMember({ memberIdOrEmail: member.email, organizationId: orgId })).error).toBeNull();
    expect((await membership(member.userId)).body).toEqual({ member: false, role: null });
    expect((await admin.c.organization.leave({ organizationId: orgId })).error).toBeNull();
    expect((await membership(admin.userId)).body).toEqual({ member: false, role: null });

    // The internal check is for services only.
    expect((await call(`${s.gatewayUrl}/api/v1/internal/org/${orgId}/member/${owner.userId}`)).status).toBe(401);
    expect((await membership(owner.userId, 'no-such-org')).body).toEqual({ member: false, role: null });

    const events = await s.sql.query<{ user_id: string; type: string; context: unknown }>(
      `select user_id, type, context from auth.security_events where type like 'org_%' order by created_at`,
    );
    const seenTypes = events.rows.map((r: { user_id: string; type: string }) => `${r.type}@${r.user_id}`);
    expect(seenTypes).toEqual(
      expect.arrayContaining([
        `org_created@${owner.userId}`,
        `org_member_added@${admin.userId}`,
        `org_role_changed@${member.userId}`,
        `org_member_removed@${member.userId}`,
      ]),
    );
    expect(events.rows.find((r: { type: string }) => r.type === 'org_role_changed')?.context).toMatchObject({
      organizationId: orgId,
      from: 'member',
      to: 'admin',
    });
  });

  it('deletes the organization (owner only)', async () => {
    expect((await owner.c.organization.delete({ organizationId: orgId })).error).toBeNull();
    expect((await s.sql.query('select 1 from auth.organization where id = $1', [orgId])).rowCount).toBe(0);
    expect((await membership(owner.userId)).body).toEqual({ member: false, role: null });
    const deleted = await s.sql.query(`select 1 from auth.security_events where user_id = $1 and type = 'org_deleted'`, [owner.userId]);
    expect(deleted.rowCount).toBe(1);
  });

  it('erasure removes the user’s memberships, invitations to them, and organizations left empty', async () => {
    const solo = await person('solo');
    const mine = await solo.c.organization.create({ name: 'Solo', slug: `solo-${solo.userId.slice(0, 6).toLowerCase()}` });
    const shared = await owner.c.organization.create({ name: 'Shared', slug: `shared-${owner.userId.slice(0, 6).toLowerCase()}` });
    const sharedId = shared.data?.id ?? '';
    await owner.c.organization.inviteMember({ email: solo.email, role: 'member', organizationId: sharedId });
    await solo.c.organization.acceptInvitation({ invitationId: await invitationId(solo) });
    await owner.c.organization.inviteMember({ email: solo.email, role: 'admin', organizationId: sharedId }).catch(() => undefined);
    await s.publish(createEvent('user.erasure.requested.v1', { requestId: crypto.randomUUID(), userId: solo.userId }));
    const done = await s.waitForEvent('user.erasure.completed.v1', (e) => (e.data as { userId: string }).userId === solo.userId);
    expect(done.data).toMatchObject({ deleted: { users: 1, memberships: 2, organizations: 1 } });
    expect((await s.sql.query('select 1 from auth.organization where id = $1', [mine.data?.id])).rowCount).toBe(0);
    expect((await s.sql.query('select 1 from auth.organization where id = $1', [sharedId])).rowCount).toBe(1);
    expect((await s.sql.query('select 1 from auth.member where user_id = $1', [solo.userId])).rowCount).toBe(0);
    expect((await s.sql.query('select 1 from auth.invitation where email = $1', [solo.email])).rowCount).toBe(0);
  });
});
