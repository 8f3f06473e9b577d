import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { commonEnv } from '@mana/shared';
import { configSchema as auth } from '../../auth-svc/src/config';
import { configSchema as vault } from '../../vault-svc/src/config';
import { configSchema as gdpr } from '../../gdpr-svc/src/config';
import { configSchema as admin } from '../../admin-svc/src/config';
import { configSchema as credits } from '../../credits-svc/src/config';
import { configSchema as gateway } from '../../gateway/src/config';

const root = new URL('../../', import.meta.url);
const read = (file: string) => readFileSync(new URL(file, root), 'utf8');

/** Every variable any process reads, straight from the zod schemas (so the docs cannot drift). */
const variables = new Set(
  [commonEnv, auth, vault, gdpr, admin, credits, gateway].flatMap((s) => Object.keys((s as unknown as { shape: object }).shape)),
);

describe('configuration documentation', () => {
  it('.env.example lists every variable', () => {
    const listed = new Set(read('.env.example').match(/^[A-Z][A-Z0-9_]*(?==)/gm));
    expect([...variables].filter((v) => !listed.has(v))).toEqual([]);
  });

  it('the README configuration table names every variable', () => {
    const readme = read('README.md');
    expect([...variables].filter((v) => !readme.includes(`\`${v}\``))).toEqual([]);
  });
});
