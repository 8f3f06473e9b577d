import { describe, expect, it } from 'vitest';
import { checkPassword } from '../src/domain/passwords';
import { pickLocale } from '../src/mail/locale';
import { renderMail } from '../src/mail/templates';

describe('password rules (ASVS 2.1)', () => {
  it('names the failing rule', () => {
    expect(checkPassword('short', 8)?.code).toBe('PASSWORD_TOO_SHORT');
    expect(checkPassword('a'.repeat(129), 8)?.code).toBe('PASSWORD_TOO_LONG');
    expect(checkPassword('Password123', 8)?.code).toBe('PASSWORD_TOO_COMMON');
    expect(checkPassword('qwertzuiop', 8)?.code).toBe('PASSWORD_TOO_COMMON');
    expect(checkPassword('correct horse battery staple', 8)).toBeUndefined();
  });

  it('counts code points, allows 128, honours the configured minimum, has no composition rules', () => {
    expect(checkPassword('😀'.repeat(8), 8)).toBeUndefined();
    expect(checkPassword('😀'.repeat(128), 8)).toBeUndefined();
    expect(checkPassword('😀'.repeat(129), 8)?.code).toBe('PASSWORD_TOO_LONG');
    expect(checkPassword('lowercase only words', 12)).toBeUndefined();
    expect(checkPassword('elevenchars', 12)?.code).toBe('PASSWORD_TOO_SHORT');
  });
});

describe('mail language', () => {
  it('prefers the stored locale, then Accept-Language by q, then English', () => {
    expect(pickLocale('de-AT', 'en')).toBe('de');
    expect(pickLocale(null, 'fr;q=1, de;q=0.8, en;q=0.5')).toBe('de');
    expect(pickLocale(undefined, 'en-GB,de;q=0.9')).toBe('en');
    expect(pickLocale('fr', 'es')).toBe('en');
  });

  it('renders text and HTML, escaping what it interpolates', () => {
    const m = renderMail('reset-password', 'de', { name: '<b>Eve</b>', url: 'https://x.test/r?a=1&b=2' });
    expect(m.subject).toBe('Setze dein Passwort zurück');
    expect(m.text).toContain('https://x.test/r?a=1&b=2');
    expect(m.html).toContain('&lt;b&gt;Eve&lt;/b&gt;');
    expect(m.html).toContain('href="https://x.test/r?a=1&amp;b=2"');
  });
});
