/* global window, document, PublicKeyCredential */
// "Sign in with a passkey" on the hosted login page, served as /auth/passkey.js (script-src 'self': no
// inline script, no handler attributes, no CDN). It runs the WebAuthn ceremony against Better Auth's
// passkey endpoints on this origin and posts the signed assertion to /auth/login/passkey, which finishes
// the sign-in server-side exactly like the password form (CSRF token, OIDC continuation). Where the
// browser supports conditional UI, passkeys are also offered in the email field's autofill.
'use strict';

(() => {
  const form = document.getElementById('passkey-form');
  const button = document.getElementById('passkey-button');
  const field = document.getElementById('passkey-response');
  const failure = document.getElementById('passkey-error');
  const email = document.getElementById('email');
  if (!form || !button || !field || !window.PublicKeyCredential || !navigator.credentials) return;
  form.hidden = false;

  const fromBase64url = (s) => {
    const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
  };
  const toBase64url = (buf) => {
    let bin = '';
    for (const b of new Uint8Array(buf)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };

  /** Fresh options (a new challenge, bound to this browser by a cookie); with the typed email when asked. */
  const requestOptions = async (withEmail) => {
    const typed = withEmail && email ? email.value.trim() : '';
    const query = typed ? `?email=${encodeURIComponent(typed)}` : '';
    const res = await fetch(`/api/auth/passkey/generate-authenticate-options${query}`, {
      credentials: 'same-origin',
      headers: { accept: 'application/json' },
    });
    if (!res.ok) throw new Error(`options: HTTP ${res.status}`);
    const o = await res.json();
    return {
      challenge: fromBase64url(o.challenge),
      rpId: o.rpId,
      timeout: o.timeout,
      userVerification: o.userVerification,
      allowCredentials: (o.allowCredentials || []).map((c) => ({ type: 'public-key', id: fromBase64url(c.id), transports: c.transports })),
    };
  };

  const submit = (credential) => {
    const r = credential.response;
    field.value = JSON.stringify({
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: {
        clientDataJSON: toBase64url(r.clientDataJSON),
        authenticatorData: toBase64url(r.authenticatorData),
        signature: toBase64url(r.signature),
        userHandle: r.userHandle ? toBase64url(r.userHandle) : undefined,
      },
    });
    form.submit();
  };

  // The autofill request; a click aborts it and waits for it to end (one WebAuthn request at a time).
  let conditional;
  let conditionalDone = Promise.resolve();
  const startConditional = async () => {
    if (!PublicKeyCredential.isConditionalMediationAvailable || !(await PublicKeyCredential.isConditionalMediationAvailable())) return;
    const abort = new AbortController();
    conditional = abort;
    try {
      const publicKey = await requestOptions(false);
      const credential = await navigator.credentials.get({ mediation: 'conditional', publicKey, signal: abort.signal });
      if (credential && conditional === abort) submit(credential);
    } catch {
      // Aborted for the button, or dismissed: the button still works.
    }
  };

  button.addEventListener('click', async () => {
    if (conditional) conditional.abort();
    conditional = undefined;
    await conditionalDone;
    if (failure) failure.hidden = true;
    button.disabled = true;
    try {
      const credential = await navigator.credentials.get({ publicKey: await requestOptions(true) });
      if (credential) return submit(credential);
    } catch {
      if (failure) failure.hidden = false;
    }
    button.disabled = false;
  });

  conditionalDone = startConditional();
})();
