/**
 * Rendering for the CLI: data to stdout, messages and progress to stderr. The only place
 * (with the command modules) that prints; the library never does.
 */
import chalk from 'chalk';
import { RegfsError } from '../errors.js';
import type { WriteProgress } from '../registry/write.js';

/** Exit codes; documented in README.md and docs/errors.md. */
export const ExitCode = {
  ok: 0,
  /** Bad input, missing content, refused output: nothing was written. */
  error: 1,
  /** Wrong command-line usage. */
  usage: 2,
  /** --keep-going: what could be done was done, some images were left out. */
  partial: 3,
  /** A bug in regfs. */
  internal: 70,
} as const;

/** Where the CLI writes; injectable for tests. */
export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr };

/** `1.5 MiB` */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** Print a warning line to stderr. */
export function printWarning(io: Io, message: string): void {
  io.stderr.write(`${chalk.yellow('warning:')} ${message}\n`);
}

/** Print a RegfsError (and each problem it carries) to stderr. */
export function printError(io: Io, err: RegfsError): void {
  for (const p of err.problems) io.stderr.write(`${chalk.red('error:')} ${p.message} ${chalk.dim(`[${p.code}]`)}\n`);
  io.stderr.write(`${chalk.red('error:')} ${err.message} ${chalk.dim(`[${err.code}]`)}\n`);
}

/** Problems that did not stop a --keep-going run. */
export function printProblems(io: Io, problems: RegfsError[]): void {
  for (const p of problems) io.stderr.write(`${chalk.red('error:')} ${p.message} ${chalk.dim(`[${p.code}]`)}\n`);
}

/**
 * A progress bar on stderr, drawn only when stderr is a terminal, at most ten times a
 * second. `done()` clears it.
 */
export function createProgressBar(io: Io): { update: (p: WriteProgress) => void; done: () => void } {
  if (io.stderr.isTTY !== true) return { update: () => undefined, done: () => undefined };
  let last = 0;
  let drawn = false;
  const width = 30;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < 100 && p.done !== p.total) return;
      last = now;
      const frac = p.total === 0 ? 1 : p.done / p.total;
      const fill = Math.round(frac * width);
      io.stderr.write(`\r${p.phase.padEnd(6)} [${'#'.repeat(fill)}${'-'.repeat(width - fill)}] ${p.done}/${p.total}\x1b[K`);
      drawn = true;
    },
    done() {
      if (drawn) io.stderr.write('\r\x1b[K');
    },
  };
}
