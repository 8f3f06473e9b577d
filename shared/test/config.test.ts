import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, commonEnv, csv, boolFlag, isDevServiceKey, jwtIssuer, loadConfig, port, productionRules } from '@mana/shared';

const schema = commonEnv.extend({ DEMO_PORT: port(3999), DEMO_FLAG: boolFlag(false), DEMO_LIST: csv }).superRefine(productionRules);
const load = (env: Record<string, string | undefined>) => loadConfig('demo-svc', schema, env);

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('fills defaults and parses types', () => {
    const cfg = load({ DEMO_FLAG: 'yes', DEMO_LIST: ' a, b ,,c', DEMO_PORT: '0' });
    expect(cfg).toMatchObject({
      NODE_ENV: 'development',
      BASE_URL: 'http://localhost:3001',
      DEMO_PORT: 0,
      DEMO_FLAG: true,
      DEMO_LIST: ['a', 'b', 'c'],
    });
    expect(jwtIssuer(cfg)).toBe('http://localhost:3001');
    expect(isDevServiceKey(cfg.MANA_SERVICE_KEY)).toBe(true);
  });

  it('returns a deeply frozen object', () => {
    const cfg = load({ DEMO_LIST: 'a,b' });
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(Object.isFrozen(cfg.DEMO_LIST)).toBe(true);
    expect(() => {
      (cfg as { DEMO_PORT: number }).DEMO_PORT = 1;
    }).toThrow(TypeError);
  });

  it('treats empty strings as unset', () => {
    const cfg = load({ DEMO_PORT: '', AMQP_URL: '' });
    expect(cfg.DEMO_PORT).toBe(3999);
    expect(cfg.AMQP_URL).toBeUndefined();
  });

  it('names every bad variable in one error, never its value', () => {
    const secret = 'short-secret-value';
    let message = '';
    try {
      load({ DEMO_PORT: '70000', BASE_URL: 'not a url', LOG_LEVEL: 'loud', MANA_SERVICE_KEY: secret, DEMO_FLAG: 'maybe' });
    } catch (err) {
      message = (err as Error).message;
    }
    for (const name of ['DEMO_PORT', 'BASE_URL', 'LOG_LEVEL', 'MANA_SERVICE_KEY', 'DEMO_FLAG']) expect(message).toContain(name);
    expect(message).toContain('demo-svc');
    expect(message).not.toContain(secret);
  });

  it('refuses development fallbacks in production', () => {
    const problems = problemsOf({ NODE_ENV: 'production' });
    expect(problems.join('\n')).toMatch(/MANA_SERVICE_KEY: required in production/);
    expect(problems.join('\n')).toMatch(/AMQP_URL: required in production/);
    // /metrics names routes, queues and business volumes: production refuses to serve it unguarded.
    expect(problems.join('\n')).toMatch(/METRICS_TOKEN: required in production/);
    const prod = { NODE_ENV: 'production', MANA_SERVICE_KEY: 'p'.repeat(40), AMQP_URL: 'amqp://rabbit' };
    expect(() => load(prod)).toThrow(/METRICS_TOKEN/);
    expect(problemsOf({ ...prod, METRICS_TOKEN: 'short' }).join('\n')).toMatch(/METRICS_TOKEN: must be at least 16 characters/);
    expect(() => load({ ...prod, METRICS_TOKEN: 'm'.repeat(24) })).not.toThrow();
  });

  it('reports production rules together with malformed variables', () => {
    const problems = problemsOf({ NODE_ENV: 'production', DEMO_PORT: 'abc' }).join('\n');
    expect(problems).toMatch(/DEMO_PORT/);
    expect(problems).toMatch(/MANA_SERVICE_KEY: required in production/);
    expect(problems).toMatch(/AMQP_URL: required in production/);
  });

  it('reports a missing required variable of a service schema', () => {
    const strict = commonEnv.extend({ NEEDED: z.string().min(1) });
    expect(() => loadConfig('x', strict, {})).toThrow(/NEEDED/);
    expect(() => loadConfig('x', strict, {})).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});
