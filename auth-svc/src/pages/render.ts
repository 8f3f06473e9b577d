import type { PageLocale, PageStrings } from './i18n';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);

/** Pieces of HTML built only by this module (escaped at construction). */
export interface Html {
  readonly html: string;
}
export const raw = (html: string): Html => ({ html });

/** `script`: the path of a same-origin script the page loads (the login page's passkey script). */
export function layout(locale: PageLocale, title: string, body: Html, script?: string): string {
  return `<!doctype html>
<html lang="${locale}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${esc(title)}</title>
<link rel="stylesheet" href="/auth/style.css">${script ? `\n<script src="${esc(script)}" defer></script>` : ''}
</head>
<body>
<main class="card">
${body.html}
</main>
</body>
</html>`;
}

export const hidden = (name: string, value: string) => `<input type="hidden" name="${esc(name)}" value="${esc(value)}">`;
/** `code` names the failed rule (e.g. PASSWORD_TOO_SHORT) for tests and assistive tooling. */
export const alert = (message?: string, code?: string) =>
  message ? `<p class="error" role="alert"${code ? ` data-code="${esc(code)}"` : ''}>${esc(message)}</p>` : '';

/** The hidden fields every hosted form carries. */
export const formFields = (p: FormBase) => `${hidden('csrf', p.csrf)}${hidden('oauth_query', p.oauthQuery)}${hidden('lang', p.locale)}`;

export interface FormBase {
  t: PageStrings;
  csrf: string;
  oauthQuery: string;
  locale: PageLocale;
  error?: string;
}

/**
 * The magic-link button posts the same form elsewhere (formaction), so the email is typed once;
 * formnovalidate lets it go without a password. Enter still submits the first button: sign in.
 */
export function loginBody(p: FormBase & { clientName?: string; email?: string; signupUrl: string; resetUrl: string }): Html {
  return raw(`<h1>${esc(p.t.signInTitle)}</h1>
${p.clientName ? `<p class="lead">${esc(p.t.signInLead(p.clientName))}</p>` : ''}
${alert(p.error)}
<form method="post" action="/auth/login">
${hidden('csrf', p.csrf)}${hidden('oauth_query', p.oauthQuery)}${hidden('lang', p.locale)}
<label for="email">${esc(p.t.email)}</label>
<input id="email" name="email" type="email" autocomplete="username webauthn" required maxlength="254" value="${esc(p.email ?? '')}" ${p.email ? '' : 'autofocus'}>
<label for="password">${esc(p.t.password)}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="128" ${p.email ? 'autofocus' : ''}>
<button type="submit">${esc(p.t.signIn)}</button>
<button type="submit" class="secondary" formaction="/auth/login/magic-link" formnovalidate>${esc(p.t.magicLink)}</button>
</form>
${passkeyForm(p)}
<nav class="links"><a href="${esc(p.resetUrl)}">${esc(p.t.forgotPassword)}</a>
<a href="${esc(p.signupUrl)}">${esc(p.t.signUp)}</a></nav>`);
}

/**
 * Shown by /auth/passkey.js only where the browser has WebAuthn (hidden otherwise: no script, no button).
 * The script fills `response` with the signed assertion and submits; with an email typed, only that
 * account's passkeys are offered.
 */
function passkeyForm(p: FormBase): string {
  return `<form method="post" action="/auth/login/passkey" id="passkey-form" hidden>
${formFields(p)}<input type="hidden" name="response" id="passkey-response">
<button type="button" class="secondary" id="passkey-button">${esc(p.t.passkeySignIn)}</button>
<p class="error" role="alert" id="passkey-error" hidden>${esc(p.t.passkeyCancelled)}</p>
</form>`;
}

export function twoFactorBody(p: FormBase & { method: 'totp' | 'backup' }): Html {
  const totp = p.method === 'totp';
  const switchQuery = new URLSearchParams(p.oauthQuery);
  switchQuery.set('method', totp ? 'backup' : 'totp');
  switchQuery.set('lang', p.locale);
  return raw(`<h1>${esc(p.t.twoFactorTitle)}</h1>
<p class="lead">${esc(totp ? p.t.twoFactorLead : p.t.backupLead)}</p>
${alert(p.error)}
<form method="post" action="/auth/login/2fa">
${hidden('csrf', p.csrf)}${hidden('oauth_query', p.oauthQuery)}${hidden('lang', p.locale)}${hidden('method', p.method)}
<label for="code">${esc(totp ? p.t.code : p.t.backupCode)}</label>
<input id="code" name="code" type="text" required autofocus autocomplete="one-time-code" maxlength="32" ${totp ? 'inputmode="numeric" pattern="[0-9]{6}"' : ''}>
<button type="submit">${esc(p.t.verify)}</button>
</form>
<nav class="links"><a href="/auth/login/2fa?${esc(switchQuery.toString())}">${esc(totp ? p.t.useBackupCode : p.t.useTotp)}</a></nav>`);
}

export function consentBody(p: FormBase & { clientName: string; scopes: string[] }): Html {
  const items = p.scopes.map((s) => `<li>${esc(p.t.scopes[s] ?? s)}</li>`).join('');
  return raw(`<h1>${esc(p.t.consentTitle)}</h1>
<p class="lead">${esc(p.t.consentLead(p.clientName))}</p>
<ul class="scopes">${items}</ul>
${alert(p.error)}
<form method="post" action="/auth/consent" class="actions">
${hidden('csrf', p.csrf)}${hidden('oauth_query', p.oauthQuery)}${hidden('lang', p.locale)}
<button type="submit" name="accept" value="false" class="secondary">${esc(p.t.deny)}</button>
<button type="submit" name="accept" value="true">${esc(p.t.allow)}</button>
</form>`);
}

export function messageBody(title: string, lead: string, link?: { href: string; text: string }): Html {
  const nav = link ? `\n<nav class="links"><a href="${esc(link.href)}">${esc(link.text)}</a></nav>` : '';
  return raw(`<h1>${esc(title)}</h1>\n<p class="lead">${esc(lead)}</p>${nav}`);
}
