import nodemailer from 'nodemailer';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { pickLocale } from './locale';
import { renderMail, type MailKind, type MailVars } from './templates';

export interface MailRequest {
  kind: MailKind;
  to: string;
  /** The recipient's stored locale, if any. */
  locale?: string | null;
  /** The request's Accept-Language, used when the user has no locale. */
  acceptLanguage?: string | null;
  vars: MailVars;
}

export interface Mailer {
  send(req: MailRequest): Promise<void>;
  close(): void;
}

/**
 * Nodemailer over SMTP. Without SMTP_HOST (never allowed in production by config) the mail, link
 * included, goes to the log so a developer can follow it.
 */
export function createMailer(config: Config, logger: Logger): Mailer {
  const log = logger.child({ component: 'mail' });
  const transport = config.SMTP_HOST
    ? nodemailer.createTransport({
        host: config.SMTP_HOST,
        port: config.SMTP_PORT,
        secure: config.SMTP_SECURE,
        auth: config.SMTP_USER ? { user: config.SMTP_USER, pass: config.SMTP_PASS ?? '' } : undefined,
      })
    : undefined;
  if (!transport) log.warn('SMTP_HOST is not set: mails are written to the log instead of being sent');
  return {
    async send(req) {
      const locale = pickLocale(req.locale, req.acceptLanguage);
      const mail = renderMail(req.kind, locale, req.vars);
      if (!transport) {
        log.info({ to: req.to, kind: req.kind, subject: mail.subject, link: req.vars.url, text: mail.text }, 'mail (not sent: no SMTP)');
        return;
      }
      await transport.sendMail({ from: config.MAIL_FROM, to: req.to, subject: mail.subject, text: mail.text, html: mail.html });
      log.debug({ kind: req.kind }, 'mail sent');
    },
    close() {
      transport?.close();
    },
  };
}
