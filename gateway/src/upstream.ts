import { Pool } from 'undici';
import type { UpstreamName } from './routes';

export interface UpstreamInstance {
  /** Base URL as configured, for logs and metrics. */
  url: string;
  hostname: string;
  port: number;
  /** Path prefix of the base URL ('' for none). */
  basePath: string;
  /** Kept-alive connections to this instance (undici). */
  pool: Pool;
}

/** The instances of one service: round robin, each request starting at the next one. */
export class UpstreamPool {
  private next = 0;
  constructor(
    readonly name: UpstreamName,
    readonly instances: readonly UpstreamInstance[],
  ) {}

  /** The instances in the order this request should try them. */
  order(): readonly UpstreamInstance[] {
    const n = this.instances.length;
    if (n === 1) return this.instances;
    const start = this.next;
    this.next = (start + 1) % n;
    const out: UpstreamInstance[] = [];
    for (let i = 0; i < n; i++) out.push(this.instances[(start + i) % n]);
    return out;
  }
}

export interface PoolOptions {
  /** Connections to one instance at most (requests beyond wait for one). */
  connections?: number;
}

function instanceOf(url: string, opts: PoolOptions): UpstreamInstance {
  const u = new URL(url);
  const https = u.protocol === 'https:';
  // Keep-alive to upstreams: a TCP handshake per request would cost more than the proxying itself. undici rather than
  // node:http's client: the same proxying costs about half the CPU per request (gateway/README.md).
  return {
    url,
    hostname: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : https ? 443 : 80,
    basePath: u.pathname.replace(/\/+$/, ''),
    pool: new Pool(u.origin, { connections: opts.connections ?? 256, pipelining: 1 }),
  };
}

export type UpstreamUrls = Record<UpstreamName, readonly string[]>;

export function createPools(urls: UpstreamUrls, opts: PoolOptions = {}): Record<UpstreamName, UpstreamPool> {
  const make = (name: UpstreamName) =>
    new UpstreamPool(
      name,
      urls[name].map((u) => instanceOf(u, opts)),
    );
  return {
    auth: make('auth'),
    vault: make('vault'),
    gdpr: make('gdpr'),
    admin: make('admin'),
    credits: make('credits'),
  };
}

/** Closes every upstream connection (requests still running are cut). */
export async function destroyPools(pools: Record<UpstreamName, UpstreamPool>): Promise<void> {
  await Promise.all(Object.values(pools).flatMap((pool) => pool.instances.map((i) => i.pool.destroy())));
}
