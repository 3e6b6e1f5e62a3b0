/** Run the built regfs executable as a user would, and collect what it printed. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REGFS_BIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** True if `timeoutMs` ran out and the child was killed. */
  killed: boolean;
}

/**
 * `node dist/cli/main.js ...args`, with optional standard input and extra environment (for
 * this child only). With `timeoutMs`, a child still running then is killed (its code is null).
 */
export function runCli(args: string[], opts: { stdin?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [REGFS_BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0', ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    let killed = false;
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            killed = true;
            child.kill('SIGKILL');
          }, opts.timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, killed });
    });
    // regfs may stop reading early (a refused list): the rest of the input is not its to take.
    child.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') reject(err);
    });
    child.stdin.end(opts.stdin ?? '');
  });
}
