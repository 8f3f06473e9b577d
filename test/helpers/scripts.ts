import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const run = promisify(execFile);

/**
 * Runs an operator script the way the docs say (`npx tsx <script>`), without npx's own npm process in
 * front: node with tsx's loader, from the repository root. Rejects with the exit code as `code`.
 */
export function runScript(script: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', script, ...args], { cwd: ROOT, env });
}
