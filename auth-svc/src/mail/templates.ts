import type { MailLocale } from './locale';

export type MailKind =
  | 'verify-email'
  | 'verify-new-email'
  | 'confirm-email-change'
  | 'reset-password'
  | 'account-locked'
  | 'new-device'
  | 'magic-link'
  | 'org-invitation';

export interface MailVars {
  name: string;
  url: string;
  newEmail?: string;
  /** account-locked: how long the lock lasts. */
  minutes?: number;
  /** new-device: user agent and IP address of the sign-in. */
  device?: string;
  /** org-invitation: organization name, inviter and role. */
  organization?: string;
  inviter?: string;
  role?: string;
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
      body: () =>
        'über den Link unten wählst du ein neues Passwort. Er ist eine Stunde gültig; alle anderen Sitzungen werden dabei beendet.',
      action: 'Neues Passwort wählen',
      footer: 'Wenn du das nicht angefordert hast, ignoriere diese E-Mail: dein Passwort bleibt unverändert.',
    },
  },
  'account-locked': {
    en: {
      subject: 'Your Mana account is temporarily locked',
      greeting: (n) => `Hello ${n},`,
      body: (v) =>
        `there were too many failed sign-in attempts for your account, so signing in is blocked for ${v.minutes ?? 15} minutes. If this was not you, someone may be guessing your password: choose a new one and turn on two-factor authentication.`,
      action: 'Open Mana',
      footer: 'You do not need to do anything if it was you: the lock ends on its own.',
    },
    de: {
      subject: 'Dein Mana-Konto ist vorübergehend gesperrt',
      greeting: (n) => `Hallo ${n},`,
      body: (v) =>
        `es gab zu viele fehlgeschlagene Anmeldeversuche für dein Konto, daher ist die Anmeldung für ${v.minutes ?? 15} Minuten gesperrt. Wenn du das nicht warst, versucht vielleicht jemand, dein Passwort zu erraten: wähle ein neues und schalte die Zwei-Faktor-Anmeldung ein.`,
      action: 'Mana öffnen',
      footer: 'Wenn du es warst, musst du nichts tun: die Sperre endet von selbst.',
    },
  },
  'new-device': {
    en: {
      subject: 'New sign-in to your Mana account',
      greeting: (n) => `Hello ${n},`,
      body: (v) => `your account was just signed in to from a device we have not seen before: ${v.device ?? 'unknown device'}.`,
      action: 'Review your sessions',
      footer: 'If this was not you, change your password right away and end the session.',
    },
    de: {
      subject: 'Neue Anmeldung bei deinem Mana-Konto',
      greeting: (n) => `Hallo ${n},`,
      body: (v) => `gerade hat sich jemand von einem neuen Gerät bei deinem Konto angemeldet: ${v.device ?? 'unbekanntes Gerät'}.`,
      action: 'Sitzungen ansehen',
      footer: 'Wenn du das nicht warst, ändere sofort dein Passwort und beende die Sitzung.',
    },
  },
  'magic-link': {
    en: {
      subject: 'Your sign-in link for Mana',
      greeting: (n) => `Hello ${n},`,
      body: () => 'use the link below to sign in. It works once and is valid for 10 minutes.',
      action: 'Sign in',
      footer: 'If you did not ask for this link, you can ignore this email.',
    },
    de: {
      subject: 'Dein Anmeldelink für Mana',
      greeting: (n) => `Hallo ${n},`,
      body: () => 'mit dem Link unten meldest du dich an. Er funktioniert einmal und ist 10 Minuten gültig.',
      action: 'Anmelden',
      footer: 'Wenn du diesen Link nicht angefordert hast, kannst du diese E-Mail ignorieren.',
    },
  },
  'org-invitation': {
    en: {
      subject: 'You are invited to an organization on Mana',
      greeting: (n) => `Hello ${n},`,
      body: (v) => `${v.inviter ?? 'Someone'} invited you to join "${v.organization ?? ''}" on Mana as ${v.role ?? 'member'}.`,
      action: 'Accept or decline',
      footer: 'If you do not know the sender, you can ignore this email.',
    },
    de: {
      subject: 'Du bist zu einer Organisation auf Mana eingeladen',
      greeting: (n) => `Hallo ${n},`,
      body: (v) =>
        `${v.inviter ?? 'Jemand'} hat dich eingeladen, „${v.organization ?? ''}“ auf Mana als ${v.role ?? 'member'} beizutreten.`,
      action: 'Annehmen oder ablehnen',
      footer: 'Wenn du den Absender nicht kennst, kannst du diese E-Mail ignorieren.',
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
