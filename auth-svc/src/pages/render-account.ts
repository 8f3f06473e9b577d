import { alert, esc, formFields, hidden, raw, type FormBase, type Html } from './render';

interface FormError {
  error?: string;
  /** The rule that failed (password policy codes), shown as `data-code`. */
  errorCode?: string;
}

const backLink = (href: string, text: string) => `<nav class="links"><a href="${esc(href)}">${esc(text)}</a></nav>`;

export function signUpBody(p: FormBase & FormError & { name?: string; email?: string; minLength: number; signInUrl: string }): Html {
  return raw(`<h1>${esc(p.t.signUpTitle)}</h1>
${alert(p.error, p.errorCode)}
<form method="post" action="/auth/sign-up">
${formFields(p)}
<label for="name">${esc(p.t.name)}</label>
<input id="name" name="name" type="text" autocomplete="name" required maxlength="256" value="${esc(p.name ?? '')}" ${p.name ? '' : 'autofocus'}>
<label for="email">${esc(p.t.email)}</label>
<input id="email" name="email" type="email" autocomplete="email" required maxlength="254" value="${esc(p.email ?? '')}">
<label for="password">${esc(p.t.password)}</label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="${p.minLength}" maxlength="128" aria-describedby="password-hint" ${p.name ? 'autofocus' : ''}>
<small id="password-hint" class="hint">${esc(p.t.passwordHint(p.minLength))}</small>
<button type="submit">${esc(p.t.createAccount)}</button>
</form>
${backLink(p.signInUrl, p.t.haveAccount)}`);
}

export function forgotBody(p: FormBase & FormError & { email?: string; signInUrl: string }): Html {
  return raw(`<h1>${esc(p.t.forgotTitle)}</h1>
<p class="lead">${esc(p.t.forgotLead)}</p>
${alert(p.error, p.errorCode)}
<form method="post" action="/auth/forgot-password">
${formFields(p)}
<label for="email">${esc(p.t.email)}</label>
<input id="email" name="email" type="email" autocomplete="email" required autofocus maxlength="254" value="${esc(p.email ?? '')}">
<button type="submit">${esc(p.t.sendResetLink)}</button>
</form>
${backLink(p.signInUrl, p.t.backToSignIn)}`);
}

export function resetBody(p: FormBase & FormError & { token: string; minLength: number }): Html {
  return raw(`<h1>${esc(p.t.resetTitle)}</h1>
${alert(p.error, p.errorCode)}
<form method="post" action="/auth/reset-password">
${formFields(p)}${hidden('token', p.token)}
<label for="password">${esc(p.t.newPassword)}</label>
<input id="password" name="password" type="password" autocomplete="new-password" required autofocus minlength="${p.minLength}" maxlength="128" aria-describedby="password-hint">
<small id="password-hint" class="hint">${esc(p.t.passwordHint(p.minLength))}</small>
<button type="submit">${esc(p.t.savePassword)}</button>
</form>`);
}
