import { organization } from 'better-auth/plugins/organization';
import type { Config } from '../../config';
import type { Db } from '../../db/types';
import { recordSecurityEvent } from '../../domain/security-events';
import type { MailRequest } from '../../mail/mailer';

export const ORG_ROLES = ['owner', 'admin', 'member'] as const;

/** Where an invitation mail sends the invitee: the app accepts or rejects with the invitation id. */
export const invitationUrl = (config: Config, id: string) =>
  `${new URL(config.BASE_URL).origin}/accept-invitation?id=${encodeURIComponent(id)}`;

/**
 * Better Auth's organization plugin: roles owner/admin/member with its access-control statements,
 * invitations by mail, an active organization per session; membership changes are audited.
 */
export function organizationPlugin(config: Config, db: Db, sendMail: (req: MailRequest) => void) {
  const audit = (
    userId: string,
    type: 'org_created' | 'org_deleted' | 'org_member_added' | 'org_member_removed' | 'org_role_changed',
    context: Record<string, unknown>,
  ) => recordSecurityEvent(db, { userId, type, context });
  return organization({
    // No `ac`/`roles`: the plugin's defaults are exactly owner/admin/member over its default statements.
    creatorRole: 'owner',
    allowUserToCreateOrganization: true,
    invitationExpiresIn: 7 * 24 * 3600,
    sendInvitationEmail: async (data, request) => {
      sendMail({
        kind: 'org-invitation',
        to: data.email,
        acceptLanguage: request?.headers.get('accept-language'),
        vars: {
          name: data.email,
          url: invitationUrl(config, data.id),
          organization: data.organization.name,
          inviter: data.inviter.user.name,
          role: data.role,
        },
      });
    },
    organizationHooks: {
      afterCreateOrganization: async ({ organization: org, user }) => audit(user.id, 'org_created', { organizationId: org.id }),
      afterDeleteOrganization: async ({ organization: org, user }) => audit(user.id, 'org_deleted', { organizationId: org.id }),
      afterAddMember: async ({ member, organization: org }) =>
        audit(member.userId, 'org_member_added', { organizationId: org.id, role: member.role }),
      afterAcceptInvitation: async ({ member, organization: org }) =>
        audit(member.userId, 'org_member_added', { organizationId: org.id, role: member.role, via: 'invitation' }),
      afterRemoveMember: async ({ member, organization: org }) => audit(member.userId, 'org_member_removed', { organizationId: org.id }),
      afterUpdateMemberRole: async ({ member, previousRole, organization: org }) =>
        audit(member.userId, 'org_role_changed', { organizationId: org.id, from: previousRole, to: member.role }),
    },
  });
}
