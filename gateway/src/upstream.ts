import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { UpstreamName } from './routes';

export interface UpstreamInstance {
  /** Base URL as configured, for logs and metrics. */
  url: string;
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number;
  /** Path prefix of the base URL ('' for none). */
  basePath: string;
  agent: HttpAgent;
}

/** The instances of one service: round robin, each request starting at the next one. */
export class UpstreamPool {
  private next = 0;
  constructor(
    readonly name: UpstreamName,
    readonly instances: readonly UpstreamInstance[],
  ) {}

  /** The instances in the order this request should try them. */
  order(): UpstreamInstance[] {
    const n = this.instances.length;
    if (n === 1) return [this.instances[0]];
    const start = this.next;
    this.next = (start + 1) % n;
    const out: UpstreamInstance[] = [];
    for (let i = 0; i < n; i++) out.push(this.instances[(start + i) % n]);
    return out;
  }
}

export interface AgentOptions {
  maxSockets?: number;
  maxFreeSockets?: number;
}

function instanceOf(url: string, opts: AgentOptions): UpstreamInstance {
  const u = new URL(url);
  const https = u.protocol === 'https:';
  // Keep-alive to upstreams: a TCP handshake per request would cost more than the proxying itself.
  const agentOptions = {
    keepAlive: true,
    maxSockets: opts.maxSockets ?? 256,
    maxFreeSockets: opts.maxFreeSockets ?? 64,
    scheduling: 'lifo' as const,
  };
  return {
    url,
    protocol: https ? 'https:' : 'http:',
    hostname: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : https ? 443 : 80,
    basePath: u.pathname.replace(/\/+$/, ''),
    agent: https ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions),
  };
}

export type UpstreamUrls = Record<UpstreamName, readonly string[]>;

export function createPools(urls: UpstreamUrls, opts: AgentOptions = {}): Record<UpstreamName, UpstreamPool> {
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

export function destroyPools(pools: Record<UpstreamName, UpstreamPool>): void {
  for (const pool of Object.values(pools)) for (const i of pool.instances) i.agent.destroy();
}
