import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { SERVICE_NODE_FLAGS } from '../node-flags';

/**
 * A service started as its own Node process (`node <SERVICE_NODE_FLAGS> --import tsx <script>`, as in production), ready
 * once it answered /readyz.
 */
export interface ServiceProcess {
  url: string;
  child: ChildProcess;
  /** Resolves with the signal or exit code once the process has ended. */
  exited: Promise<NodeJS.Signals | number>;
  /** Sends `signal` (unless the process already ended) and waits for the end. */
  kill: (signal: NodeJS.Signals) => Promise<void>;
  /** A graceful stop: SIGTERM (the service's own ordered shutdown), SIGKILL after `graceMs` if it hangs. */
  stop: (graceMs?: number) => Promise<void>;
}

export interface ServiceProcessOptions {
  /** For error messages. */
  name: string;
  /** The entry file, relative to `cwd`. */
  script: string;
  cwd: string;
  /** The port the service listens on (its env must say so); readiness is asked at 127.0.0.1:<port>/readyz. */
  port: number;
  /** Added to this process's environment. */
  env: Record<string, string>;
  readyTimeoutMs?: number;
  /** A file that receives the process's stdout and stderr; without it stdout is dropped. */
  logFile?: string;
  /** Called with the child as soon as it exists (before it is ready), e.g. to kill it when the caller is interrupted. */
  onSpawn?: (child: ChildProcess) => void;
}

/**
 * Starts a service process and waits for its /readyz. If it exits or is not ready in time the start fails with the
 * end of its stderr, and a process that hangs is killed, so nothing is left running.
 */
export async function startServiceProcess(opts: ServiceProcessOptions): Promise<ServiceProcess> {
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, '--import', 'tsx', opts.script], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', opts.logFile ? 'pipe' : 'ignore', 'pipe'],
  });
  opts.onSpawn?.(child);
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  if (opts.logFile) {
    const out = createWriteStream(opts.logFile);
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
  }
  const exited = new Promise<NodeJS.Signals | number>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code ?? 0)));
  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  const stop = async (graceMs = 15_000) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await kill('SIGTERM');
    clearTimeout(timer);
  };
  const url = `http://127.0.0.1:${opts.port}`;
  const timeoutMs = opts.readyTimeoutMs ?? 90_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${opts.name} exited with ${child.exitCode}: ${stderr}`);
    const ok = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return { url, child, exited, kill, stop };
    if (Date.now() > deadline) {
      await kill('SIGKILL');
      throw new Error(`${opts.name} on port ${opts.port} not ready within ${timeoutMs / 1000} s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
