// One process of the API-key benchmark: `tsx bench/api-keys/worker.ts <upstream|gateway>`.
// Prints `READY <url>` on stdout once listening; settings come from the environment.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGateway } from '../../gateway/src/server';

const role = process.argv[2];
const BODY = Buffer.from(JSON.stringify({ ok: true, items: [1, 2, 3] }));
// auth-svc's answer to the gateway's key exchange, prepared (and signed) by the bench process.
const EXCHANGE = Buffer.from(process.env.EXCHANGE_ANSWER ?? '{}');

async function main(): Promise<string> {
  if (role === 'upstream') {
    // The trivial upstream route (a small JSON answer), which also plays auth-svc's exchange endpoint.
    const server = createServer((req, res) => {
      const exchange = req.method === 'POST' && req.url === '/api/v1/internal/api-keys/exchange';
      if (exchange) exchanges++;
      const body = exchange ? EXCHANGE : req.url === '/exchanges' ? Buffer.from(String(exchanges)) : BODY;
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
    let exchanges = 0;
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  if (role === 'gateway') return (await startGateway({ env: process.env })).url;
  throw new Error(`unknown role ${role}`);
}

process.on('SIGTERM', () => process.exit(0));

main().then(
  (url) => process.stdout.write(`READY ${url}\n`),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
