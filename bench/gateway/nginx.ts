// nginx as a reference proxy for the gateway benchmark: a plain `proxy_pass` to the same upstream, run as a child
// process with every path (pid, logs, temp files) in a temporary directory, so it needs no root and touches no system file.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@mana/shared/testing';

const NGINX = process.env.NGINX_BIN ?? '/usr/sbin/nginx';

export const NGINX_MISSING = `nginx not found at ${NGINX} (install it with \`apt-get install nginx-light\`, or set NGINX_BIN): the nginx row is skipped`;

export interface Nginx {
  url: string;
  /** `worker_processes` of this run. */
  workers: number;
  /** CPU time (user + system, ms) of the master and its workers so far, from /proc (Linux); NaN elsewhere. */
  cpuMs: () => number;
  /** Stops nginx and removes its directory. */
  stop: () => Promise<void>;
}

/** CPU time of a process and its children (ms), from /proc. */
function treeCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const own = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime in USER_HZ (100)
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return own + children.reduce((sum, c) => sum + treeCpuMs(Number(c)), 0);
  } catch {
    return NaN;
  }
}

/**
 * One worker process by default: the gateway is one Node process (one event loop), so one nginx worker is the
 * like-for-like comparison; `workers` > 1 shows what nginx does with the whole machine.
 */
function config(dir: string, port: number, upstream: URL, workers: number): string {
  const path = (name: string) => join(dir, name);
  return `worker_processes ${workers};
pid ${path('nginx.pid')};
error_log ${path('error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${path('client_body')};
  proxy_temp_path ${path('proxy')};
  fastcgi_temp_path ${path('fastcgi')};
  uwsgi_temp_path ${path('uwsgi')};
  scgi_temp_path ${path('scgi')};
  upstream app {
    server ${upstream.hostname}:${upstream.port};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

async function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Starts nginx in front of `upstreamUrl`, or resolves undefined when nginx is not installed. */
export async function startNginx(upstreamUrl: string, workers = 1): Promise<Nginx | undefined> {
  if (!existsSync(NGINX)) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-nginx-'));
  // Run as root, nginx's workers switch to `nobody`; they must be able to enter the directory.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, config(dir, port, new URL(upstreamUrl), workers));
  const test = spawnSync(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf, '-t'], { encoding: 'utf8' });
  if (test.status !== 0) throw new Error(`nginx refused its configuration: ${test.stderr}`);
  const child: ChildProcess = spawn(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100 && !(await answers(url)); i++) await new Promise((r) => setTimeout(r, 50));
  if (!(await answers(url))) {
    child.kill('SIGTERM');
    throw new Error(`nginx did not start: ${existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''}`);
  }
  return {
    url,
    workers,
    cpuMs: () => (child.pid ? treeCpuMs(child.pid) : NaN),
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      // SIGQUIT: graceful stop of the master and its workers.
      if (child.exitCode === null) child.kill('SIGQUIT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
