// One process of the gateway benchmarks (gateway, api-keys):
// `tsx bench/gateway/worker.ts <upstream|gateway|bare-proxy|bare-undici|own-proxy|hpm-proxy|hpm-proxy-ejected>`.
// Prints `READY <url>` on stdout once listening; settings come from the environment.
import { createServer, request, Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import { startGateway } from '../../gateway/src/server';
import { hpmProxy, ownProxy } from './proxies';

// `<role>:<label>` runs <role>; the label only tells several workers of one role apart (their CPU time).
const role = (process.argv[2] ?? '').split(':')[0];
const BODY = Buffer.from(JSON.stringify({ ok: true, items: [1, 2, 3] }));
// With EXCHANGE_ANSWER the upstream also plays auth-svc's API-key exchange (an answer the bench process signed)
// and counts the exchanges at GET /exchanges.
const EXCHANGE = process.env.EXCHANGE_ANSWER ? Buffer.from(process.env.EXCHANGE_ANSWER) : undefined;
let exchanges = 0;

async function listen(server: ReturnType<typeof createServer>): Promise<string> {
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function main(): Promise<string> {
  if (role === 'upstream') {
    // The trivial upstream route: a small JSON answer, no work.
    return listen(
      createServer((req, res) => {
        let body = BODY;
        if (EXCHANGE && req.method === 'POST' && req.url === '/api/v1/internal/api-keys/exchange') {
          exchanges++;
          body = EXCHANGE;
        } else if (EXCHANGE && req.url === '/exchanges') body = Buffer.from(String(exchanges));
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
        res.end(body);
      }),
    );
  }
  if (role === 'bare-proxy') {
    // The floor: what any Node proxy costs (keep-alive agent, streamed both ways, nothing checked).
    const target = new URL(process.env.UPSTREAM_URL ?? '');
    const agent = new Agent({ keepAlive: true, maxSockets: 256 });
    return listen(
      createServer((req, res) => {
        const up = request(
          { hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
          (upRes) => {
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            upRes.pipe(res);
          },
        );
        up.on('error', () => {
          res.statusCode = 502;
          res.end();
        });
        req.pipe(up);
      }),
    );
  }
  if (role === 'bare-undici') {
    // The same floor on undici's client, the one the gateway uses: streamed back, nothing checked or rewritten.
    const pool = new Pool(new URL(process.env.UPSTREAM_URL ?? '').origin, { connections: 256 });
    return listen(
      createServer((req, res) => {
        const headers = { ...req.headers };
        delete headers.connection;
        pool.dispatch(
          {
            method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
            path: req.url ?? '/',
            headers,
            body: req.method === 'GET' ? null : req,
          },
          {
            onConnect: () => undefined,
            onHeaders: (status, raw, resume) => {
              const out: string[] = [];
              for (let i = 0; i + 1 < raw.length; i += 2) {
                const key = raw[i].toString('latin1');
                if (!/^(connection|keep-alive|transfer-encoding)$/i.test(key)) out.push(key, raw[i + 1].toString('latin1'));
              }
              res.writeHead(status, out);
              res.on('drain', resume);
              return true;
            },
            onData: (chunk) => res.write(chunk),
            onComplete: () => res.end(),
            onError: () => {
              if (res.headersSent) res.destroy();
              else res.writeHead(502).end();
            },
          },
        );
      }),
    );
  }
  // The gateway's proxy step alone and http-proxy-middleware in its place, each round robin over UPSTREAM_URLS with
  // failover to the next instance on a refused connection.
  const upstreams = (process.env.UPSTREAM_URLS ?? '').split(',').filter(Boolean);
  if (role === 'own-proxy') return listen(createServer(ownProxy(upstreams)));
  if (role === 'hpm-proxy') return listen(createServer(hpmProxy(upstreams, { ejectPlugins: false })));
  if (role === 'hpm-proxy-ejected') return listen(createServer(hpmProxy(upstreams, { ejectPlugins: true })));
  if (role === 'gateway') {
    const handle = await startGateway({ env: process.env });
    return handle.url;
  }
  throw new Error(`unknown role ${role}`);
}

// A clean exit on SIGTERM lets `--cpu-prof` write its profile.
process.on('SIGTERM', () => process.exit(0));

main().then(
  (url) => process.stdout.write(`READY ${url}\n`),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
