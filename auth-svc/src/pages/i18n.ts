import { pickLocale, type MailLocale } from '../mail/locale';
import { accountDe, accountEn } from './i18n-account';

export type PageLocale = MailLocale;

const en = {
  signInTitle: 'Sign in to Mana',
  signInLead: (client: string) => `to continue to ${client}`,
  email: 'Email',
  password: 'Password',
  signIn: 'Sign in',
  forgotPassword: 'Forgot your password?',
  signUp: 'No account yet? Sign up',
  magicLink: 'Email me a sign-in link',
  passkeySignIn: 'Sign in with a passkey',
  passkeyCancelled: 'No passkey was used. Try again, or sign in with your password.',
  passkeyFailed: 'That passkey could not be verified. Try again, or sign in with your password.',
  invalidCredentials: 'Invalid email or password.',
  emailNotVerified: 'Please confirm your email address first: we have sent you a new link.',
  badRequest: 'Please fill in every field.',
  expired: 'This sign-in request has expired. Please start again from the application.',
  csrf: 'Your form expired. Please try again.',
  tooMany: 'Too many attempts. Please wait a moment and try again.',
  failed: 'Sign-in failed. Please try again.',
  twoFactorTitle: 'Two-step verification',
  twoFactorLead: 'Enter the 6-digit code from your authenticator app.',
  code: 'Code',
  verify: 'Verify',
  useBackupCode: 'Use a backup code instead',
  useTotp: 'Use your authenticator app instead',
  backupLead: 'Enter one of your backup codes. Each code works once.',
  backupCode: 'Backup code',
  invalidCode: 'That code is not valid. Please try again.',
  consentTitle: 'Allow access?',
  consentLead: (client: string) => `${client} would like to:`,
  allow: 'Allow',
  deny: 'Deny',
  scopes: {
    openid: 'Know who you are',
    profile: 'See your name and username',
    email: 'See your email address',
    offline_access: 'Stay signed in while you are away',
  } as Record<string, string>,
  signedInTitle: 'You are signed in',
  signedInLead: 'You can close this page and return to your application.',
  ...accountEn,
};

type Strings = typeof en;

const de: Strings = {
  signInTitle: 'Bei Mana anmelden',
  signInLead: (client: string) => `um mit ${client} fortzufahren`,
  email: 'E-Mail',
  password: 'Passwort',
  signIn: 'Anmelden',
  forgotPassword: 'Passwort vergessen?',
  signUp: 'Noch kein Konto? Registrieren',
  magicLink: 'Anmeldelink per E-Mail senden',
  passkeySignIn: 'Mit einem Passkey anmelden',
  passkeyCancelled: 'Es wurde kein Passkey verwendet. Versuche es noch einmal oder melde dich mit deinem Passwort an.',
  passkeyFailed: 'Dieser Passkey konnte nicht bestätigt werden. Versuche es noch einmal oder melde dich mit deinem Passwort an.',
  invalidCredentials: 'E-Mail oder Passwort ist falsch.',
  emailNotVerified: 'Bitte bestätige zuerst deine E-Mail-Adresse: Wir haben dir einen neuen Link geschickt.',
  badRequest: 'Bitte fülle alle Felder aus.',
  expired: 'Diese Anmeldeanfrage ist abgelaufen. Bitte starte erneut in der Anwendung.',
  csrf: 'Das Formular ist abgelaufen. Bitte versuche es noch einmal.',
  tooMany: 'Zu viele Versuche. Bitte warte einen Moment.',
  failed: 'Die Anmeldung ist fehlgeschlagen. Bitte versuche es noch einmal.',
  twoFactorTitle: 'Bestätigung in zwei Schritten',
  twoFactorLead: 'Gib den 6-stelligen Code aus deiner Authenticator-App ein.',
  code: 'Code',
  verify: 'Bestätigen',
  useBackupCode: 'Stattdessen einen Backup-Code verwenden',
  useTotp: 'Stattdessen die Authenticator-App verwenden',
  backupLead: 'Gib einen deiner Backup-Codes ein. Jeder Code funktioniert nur einmal.',
  backupCode: 'Backup-Code',
  invalidCode: 'Dieser Code ist ungültig. Bitte versuche es noch einmal.',
  consentTitle: 'Zugriff erlauben?',
  consentLead: (client: string) => `${client} möchte:`,
  allow: 'Erlauben',
  deny: 'Ablehnen',
  scopes: {
    openid: 'Wissen, wer du bist',
    profile: 'Deinen Namen und Benutzernamen sehen',
    email: 'Deine E-Mail-Adresse sehen',
    offline_access: 'Angemeldet bleiben, während du nicht da bist',
  },
  signedInTitle: 'Du bist angemeldet',
  signedInLead: 'Du kannst diese Seite schließen und zu deiner Anwendung zurückkehren.',
  ...accountDe,
};

export type PageStrings = Strings;
export const STRINGS: Record<PageLocale, Strings> = { en, de };

/** `lang` (query or form) wins over Accept-Language; English otherwise. */
export function pageLocale(lang: unknown, acceptLanguage: string | undefined): PageLocale {
  return pickLocale(typeof lang === 'string' ? lang : null, acceptLanguage);
}
