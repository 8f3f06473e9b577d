import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy {
  /** 127.0.0.1 port the proxy listens on. */
  port: number;
  /** Rewrites `url` (e.g. the AMQP URL) to go through the proxy. */
  urlFor: (url: string) => string;
  /** Simulates an outage for the clients of this proxy only: drops every connection and refuses new ones. */
  cut: () => void;
  /** Ends the outage: new connections reach the target again. */
  restore: () => void;
  /** Connections currently relayed. */
  connections: () => number;
  close: () => Promise<void>;
}

/**
 * A TCP relay in front of a shared dependency (RabbitMQ, PostgreSQL) so one test can take "the broker"
 * away from its own clients without stopping it for every other test running at the same time.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let down = false;
  const track = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    // A reset is the expected way these sockets end; it must not become an uncaught error.
    s.on('error', () => s.destroy());
  };
  const server: Server = createServer((client) => {
    track(client);
    if (down) {
      client.destroy();
      return;
    }
    const upstream = createConnection(target);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const dropAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    port,
    urlFor: (url) => {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString().replace(/\/$/, '');
    },
    cut: () => {
      down = true;
      dropAll();
    },
    restore: () => {
      down = false;
    },
    connections: () => sockets.size,
    close: async () => {
      down = true;
      dropAll();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
