// The traffic of the soak: a fixed mix of what clients of the system do, through the gateway, on node:http
// keep-alive connections. Each operation is one request; a user's refresh token is used by one refresh at a time
// (a second use would be a reuse and end the session), and a login or refresh replaces the user's tokens.
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';

export type OpName = 'session' | 'balance' | 'spend' | 'vault-key' | 'refresh' | 'gdpr-summary' | 'admin-directory' | 'login' | 'register';

/**
 * Per 1,000 requests. Reads dominate. The rare ones are rare because they are in real use and because they are
 * expensive: a login or registration is an scrypt (~85 ms of CPU on this machine), a GDPR summary asks four
 * services for their part (~45 ms of CPU over six processes, measured under load) — at 6% it took a third of the CPU.
 */
export const MIX: Readonly<Record<OpName, number>> = {
  session: 350,
  balance: 220,
  spend: 160,
  'vault-key': 120,
  refresh: 80,
  'admin-directory': 54,
  'gdpr-summary': 10,
  login: 4,
  register: 2,
};

/** What a request answers when all is well; anything else counts as an error. */
const EXPECTED: Readonly<Record<OpName, number>> = {
  session: 200,
  balance: 200,
  spend: 201,
  'vault-key': 200,
  refresh: 200,
  'gdpr-summary': 200,
  'admin-directory': 200,
  login: 200,
  register: 201,
};

export interface Actor {
  id: string;
  email: string;
  password: string;
  access: string;
  refresh: string;
  /** A refresh of this actor's token is in flight. */
  refreshing: boolean;
}

export interface Outcome {
  op: OpName;
  /** HTTP status, or 0 for a connection error or timeout. */
  status: number;
  ok: boolean;
  /** `op status` or `op error-code` for the error table. */
  error?: string;
}

export interface Answer {
  status: number;
  body: string;
}

/** The `error` code of an error answer (`TOKEN_REVOKED`), if it has one. */
function errorCode(body: string): string {
  try {
    const code = (JSON.parse(body) as { error?: unknown }).error;
    return typeof code === 'string' ? code : '';
  } catch {
    return '';
  }
}

/** A seeded generator (mulberry32): the same sequence of operations in every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Traffic {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  private readonly base: URL;
  private readonly random = prng(16);
  private deck: OpName[] = [];
  private refreshCursor = 0;
  private readonly retryRefresh: Actor[] = [];
  private registered = 0;
  private readonly tag = randomBytes(3).toString('hex');
  /** 2xx answers to spends and key fetches (the consistency check compares them with the ledger and the audit). */
  readonly confirmed = { spends: 0, keyFetches: 0, registrations: 0 };

  private users: Actor[] = [];
  private admin: Actor | undefined;

  constructor(gatewayUrl: string) {
    this.base = new URL(gatewayUrl);
  }

  /** The signed-in users the operations act as, and the admin of the directory reads. */
  useActors(users: Actor[], admin: Actor): void {
    this.users = users;
    this.admin = admin;
  }

  /** The next operation of the mix: a shuffled deck of 1,000, so every 1,000 requests have the mix exactly. */
  next(): OpName {
    if (!this.deck.length) {
      for (const [op, n] of Object.entries(MIX) as Array<[OpName, number]>) for (let i = 0; i < n; i++) this.deck.push(op);
      for (let i = this.deck.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1));
        [this.deck[i], this.deck[j]] = [this.deck[j], this.deck[i]];
      }
    }
    return this.deck.pop() as OpName;
  }

  async run(op: OpName): Promise<Outcome> {
    try {
      const { status, body } = await this.perform(op);
      const ok = status === EXPECTED[op];
      return { op, status, ok, error: ok ? undefined : `${op} ${status} ${errorCode(body)}`.trim() };
    } catch (err) {
      return { op, status: 0, ok: false, error: `${op} ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
    }
  }

  private user(): Actor {
    return this.users[Math.floor(this.random() * this.users.length)];
  }

  private async perform(op: OpName): Promise<Answer> {
    const u = this.user();
    switch (op) {
      case 'session':
        return this.call('GET', '/api/v1/auth/session', u.access);
      case 'balance':
        return this.call('GET', '/api/v1/credits/balance', u.access);
      case 'spend': {
        const body = { amount: 1, appId: 'soak', description: 'one unit', idempotencyKey: randomUUID() };
        const res = await this.call('POST', '/api/v1/credits/use', u.access, body);
        if (res.status === 201) this.confirmed.spends++;
        return res;
      }
      case 'vault-key': {
        const res = await this.call('GET', '/api/v1/me/encryption-vault/key', u.access);
        if (res.status === 200) this.confirmed.keyFetches++;
        return res;
      }
      case 'gdpr-summary':
        return this.call('GET', '/api/v1/me/data', u.access);
      case 'admin-directory': {
        // Alternately a page of the newest users and a search, as an operator's directory view does.
        const page = Math.floor(this.random() * 3) + 1;
        const path = this.random() < 0.5 ? `/api/v1/admin/users?page=${page}&limit=20` : `/api/v1/admin/users?search=soak&limit=20`;
        return this.call('GET', path, this.admin?.access);
      }
      case 'refresh':
        return this.refresh();
      case 'login': {
        const res = await this.call('POST', '/api/v1/auth/login', undefined, { email: u.email, password: u.password });
        if (res.status === 200) this.adopt(u, res.body);
        return res;
      }
      case 'register': {
        const email = `soak-${this.tag}-${++this.registered}@example.com`;
        const res = await this.call('POST', '/api/v1/auth/register', undefined, { email, password: `Tangerine ${randomUUID()} Orbit` });
        if (res.status === 201) this.confirmed.registrations++;
        return res;
      }
    }
  }

  /** Refreshes the actors in turn (the admin among them), so every access token is renewed long before it expires. */
  private async refresh(): Promise<Answer> {
    const actors = this.admin ? [...this.users, this.admin] : this.users;
    // A refresh that got no answer or a 5xx is retried first, as a client retries at once: auth-svc may have rotated
    // the token without the answer arriving, and only within its grace window is the old one not a reuse.
    let a: Actor | undefined = this.retryRefresh.find((x) => !x.refreshing);
    if (a) this.retryRefresh.splice(this.retryRefresh.indexOf(a), 1);
    for (let i = 0; i < actors.length && !a; i++) {
      const candidate = actors[this.refreshCursor++ % actors.length];
      if (!candidate.refreshing) a = candidate;
    }
    if (!a) return this.call('GET', '/api/v1/auth/session', this.user().access);
    a.refreshing = true;
    const retry = () => this.retryRefresh.push(a);
    try {
      const res = await this.call('POST', '/api/v1/auth/refresh', undefined, { refreshToken: a.refresh }).catch((err: unknown) => {
        retry();
        throw err;
      });
      if (res.status === 200) this.adopt(a, res.body);
      if (res.status >= 500) retry();
      return res;
    } finally {
      a.refreshing = false;
    }
  }

  private adopt(a: Actor, body: string): void {
    const pair = JSON.parse(body) as { accessToken: string; refreshToken: string };
    a.access = pair.accessToken;
    a.refresh = pair.refreshToken;
  }

  call(method: string, path: string, token?: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.base.hostname,
          port: this.base.port,
          method,
          path,
          agent: this.agent,
          timeout: 30_000,
          headers: {
            ...headers,
            ...(token ? { authorization: `Bearer ${token}` } : {}),
            ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
