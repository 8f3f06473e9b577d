import { describe, expect, it } from 'vitest';
import { createLogger } from '@mana/shared';

function capture() {
  const lines: string[] = [];
  return { lines, dest: { write: (s: string) => void lines.push(s) } };
}

describe('createLogger', () => {
  it('redacts credentials, cookies, passwords, tokens and keys wherever they appear', () => {
    const { lines, dest } = capture();
    const log = createLogger('test-svc', 'info', dest);
    log.info(
      {
        req: { headers: { authorization: 'Bearer SECRET-JWT', cookie: 'session=SECRET-COOKIE', 'x-service-key': 'SECRET-SVC-KEY' } },
        res: { headers: { 'set-cookie': 'session=SECRET-SET-COOKIE' } },
        password: 'SECRET-PW',
        token: 'SECRET-TOKEN',
        body: { password: 'SECRET-PW2', newPassword: 'SECRET-PW3', refreshToken: 'SECRET-RT', masterKey: 'SECRET-MK', code: '123456' },
        email: 'visible@example.com',
      },
      'request',
    );
    const out = lines.join('');
    expect(out).not.toMatch(/SECRET-|123456/);
    expect(out).toContain('[redacted]');
    expect(out).toContain('visible@example.com');
    expect(JSON.parse(out)).toMatchObject({ svc: 'test-svc', msg: 'request' });
  });

  it('honours the level', () => {
    const { lines, dest } = capture();
    const log = createLogger('quiet', 'warn', dest);
    log.info('hidden');
    log.warn('shown');
    expect(lines).toHaveLength(1);
  });
});
