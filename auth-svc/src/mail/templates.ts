import type { MailLocale } from './locale';

export type MailKind = 'verify-email' | 'verify-new-email' | 'confirm-email-change' | 'reset-password';

export interface MailVars {
  name: string;
  url: string;
  newEmail?: string;
}

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

interface Copy {
  subject: string;
  greeting: (name: string) => string;
  body: (v: MailVars) => string;
  action: string;
  footer: string;
}

const COPY: Record<MailKind, Record<MailLocale, Copy>> = {
  'verify-email': {
    en: {
      subject: 'Confirm your email address',
      greeting: (n) => `Hello ${n},`,
      body: () => 'please confirm your email address to finish setting up your Mana account.',
      action: 'Confirm email address',
      footer: 'If you did not create an account, you can ignore this email.',
    },
    de: {
      subject: 'Bestätige deine E-Mail-Adresse',
      greeting: (n) => `Hallo ${n},`,
      body: () => 'bitte bestätige deine E-Mail-Adresse, um dein Mana-Konto fertig einzurichten.',
      action: 'E-Mail-Adresse bestätigen',
      footer: 'Wenn du kein Konto angelegt hast, kannst du diese E-Mail ignorieren.',
    },
  },
  'verify-new-email': {
    en: {
      subject: 'Confirm your new email address',
      greeting: (n) => `Hello ${n},`,
      body: () => 'please confirm this address to make it the new email address of your Mana account.',
      action: 'Confirm new address',
      footer: 'If you did not ask for this change, you can ignore this email.',
    },
    de: {
      subject: 'Bestätige deine neue E-Mail-Adresse',
      greeting: (n) => `Hallo ${n},`,
      body: () => 'bitte bestätige diese Adresse als neue E-Mail-Adresse deines Mana-Kontos.',
      action: 'Neue Adresse bestätigen',
      footer: 'Wenn du diese Änderung nicht angefordert hast, kannst du diese E-Mail ignorieren.',
    },
  },
  'confirm-email-change': {
    en: {
      subject: 'Confirm the change of your email address',
      greeting: (n) => `Hello ${n},`,
      body: (v) => `someone (hopefully you) asked to change the email address of your Mana account to ${v.newEmail ?? ''}.`,
      action: 'Approve the change',
      footer: 'If this was not you, do not follow the link and change your password.',
    },
    de: {
      subject: 'Bestätige die Änderung deiner E-Mail-Adresse',
      greeting: (n) => `Hallo ${n},`,
      body: (v) => `jemand (hoffentlich du) möchte die E-Mail-Adresse deines Mana-Kontos in ${v.newEmail ?? ''} ändern.`,
      action: 'Änderung bestätigen',
      footer: 'Wenn du das nicht warst, folge dem Link nicht und ändere dein Passwort.',
    },
  },
  'reset-password': {
    en: {
      subject: 'Reset your password',
      greeting: (n) => `Hello ${n},`,
      body: () => 'use the link below to choose a new password. It is valid for one hour; all your other sessions end when you reset.',
      action: 'Choose a new password',
      footer: 'If you did not ask for this, you can ignore this email: your password stays as it is.',
    },
    de: {
      subject: 'Setze dein Passwort zurück',
      greeting: (n) => `Hallo ${n},`,
      body: () => 'über den Link unten wählst du ein neues Passwort. Er ist eine Stunde gültig; alle anderen Sitzungen werden dabei beendet.',
      action: 'Neues Passwort wählen',
      footer: 'Wenn du das nicht angefordert hast, ignoriere diese E-Mail: dein Passwort bleibt unverändert.',
    },
  },
};

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/** Plain text and HTML of one mail, in one language. */
export function renderMail(kind: MailKind, locale: MailLocale, vars: MailVars): RenderedMail {
  const c = COPY[kind][locale];
  const greeting = c.greeting(vars.name);
  const body = c.body(vars);
  const text = `${greeting}\n\n${body}\n\n${c.action}: ${vars.url}\n\n${c.footer}\n`;
  const html = `<!doctype html><html lang="${locale}"><body style="font-family:sans-serif;line-height:1.5">
<p>${escapeHtml(greeting)}</p>
<p>${escapeHtml(body)}</p>
<p><a href="${escapeHtml(vars.url)}">${escapeHtml(c.action)}</a></p>
<p style="color:#666;font-size:smaller">${escapeHtml(c.footer)}</p>
</body></html>`;
  return { subject: c.subject, text, html };
}
