import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isConnectionRefused, parseServiceUrls, serviceUrls } from '../src/http/service-urls';

/** A real HTTP server that answers its name and counts hits. */
async function instance(name: string, status = 200): Promise<{ url: string; hits: () => number; server: Server }> {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.writeHead(status, { 'content-type': 'text/plain' }).end(name);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits, server };
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  await new Promise<void>((r) => s.close(() => r()));
  return url;
}

describe('service URL lists', () => {
  let a: Awaited<ReturnType<typeof instance>>;
  let b: Awaited<ReturnType<typeof instance>>;
  let failing: Awaited<ReturnType<typeof instance>>;
  let dead: string;
  beforeAll(async () => {
    [a, b, failing] = await Promise.all([instance('a'), instance('b'), instance('failing', 503)]);
    dead = await closedPort();
  });
  afterAll(async () => {
    for (const i of [a, b, failing]) await new Promise<void>((r) => i.server.close(() => r()));
  });

  it('parses one URL or a comma list (trimmed, no trailing slash, no empties)', () => {
    expect(parseServiceUrls('http://x:1/')).toEqual(['http://x:1']);
    expect(parseServiceUrls(' http://x:1 , http://y:2/,')).toEqual(['http://x:1', 'http://y:2']);
    expect(parseServiceUrls(['http://x:1/'])).toEqual(['http://x:1']);
    expect(() => serviceUrls(' , ')).toThrow(/at least one URL/);
  });

  it('round-robins over the instances', async () => {
    const target = serviceUrls(`${a.url},${b.url}`);
    const names = [];
    for (let i = 0; i < 4; i++) names.push(await (await target.fetch('/')).text());
    expect(names.sort()).toEqual(['a', 'a', 'b', 'b']);
  });

  it('fails over to the next instance when the connection is refused, for every request', async () => {
    const target = serviceUrls([dead, a.url]);
    for (let i = 0; i < 3; i++) expect(await (await target.fetch('/x', { method: 'POST', body: 'once' })).text()).toBe('a');
  });

  it('does not fail over on an HTTP answer: a 503 is the caller’s to handle', async () => {
    const target = serviceUrls([failing.url, a.url]);
    const before = a.hits();
    const statuses = [(await target.fetch('/')).status, (await target.fetch('/')).status];
    expect(statuses.sort()).toEqual([200, 503]);
    expect(a.hits()).toBe(before + 1);
  });

  it('throws the connection error when every instance refuses', async () => {
    const target = serviceUrls([dead, dead]);
    const err = await target.fetch('/').catch((e: unknown) => e);
    expect(isConnectionRefused(err)).toBe(true);
  });
});
