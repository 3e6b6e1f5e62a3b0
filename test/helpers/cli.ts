/** Run the built regfs executable as a user would, and collect what it printed. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
export function runCli(args: string[], opts: { stdin?: string; env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [REGFS_BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0', ...opts.env }, ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }) });
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

/** What the loader of the built CLI (scripts/build/loader.ts) did with one file of the bundle. */
export interface CompiledFile {
  file: string;
  /** A code cache was offered to V8. */
  offered: boolean;
  /** V8 rejected the cache offered. */
  rejected: boolean;
}

/**
 * Run a built CLI (`main`, a dist/cli/main.js) with a preload (written into `dir`) that
 * reports, at exit, each file the loader compiled. The run must succeed within 30 s.
 */
export function compiled(dir: string, main: string, args: string[]): CompiledFile[] {
  const hook = join(dir, 'hook.cjs');
  writeFileSync(
    hook,
    `const seen = [];
    globalThis[Symbol.for('regfs.compileHook')] = (file, script, offered) => seen.push({ file, offered, script });
    process.on('exit', () => process.stderr.write('\\n' + JSON.stringify(seen.map(({ file, offered, script }) => ({ file, offered, rejected: script.cachedDataRejected === true }))) + '\\n'));`,
  );
  const r = spawnSync(process.execPath, ['--require', hook, main, ...args], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `${r.error?.message ?? ''}${r.stderr}`);
  return JSON.parse(r.stderr.trim().split('\n').at(-1)!) as CompiledFile[];
}
