/**
 * Rendering for the CLI: data to stdout, messages and progress to stderr. The only place
 * (with the command modules) that prints; the library never does.
 */
// Messages go to stderr, so their colours follow stderr's terminal, not stdout's.
import { chalkStderr as chalk } from 'chalk';
import { RegfsError } from '../errors.js';
import type { WriteProgress } from '../registry/write.js';
import type { ExtractResult } from '../ops/extract.js';
import type { RepairedLink } from '../ops/resolve.js';

/** Exit codes; documented in README.md and docs/errors.md. */
export const ExitCode = {
  ok: 0,
  /** Bad input, missing content, refused output: nothing was written. */
  error: 1,
  /** Wrong command-line usage. */
  usage: 2,
  /** --keep-going: what could be done was done, some images were left out. */
  partial: 3,
  /** verify found damage. */
  damage: 4,
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

/** Problems as --json output lists them. */
export function problemsJson(problems: RegfsError[]): object[] {
  return problems.map((p) => ({ code: p.code, message: p.message, file: p.at?.file, line: p.at?.line, path: p.path }));
}

/** The result of a command that writes registry storage (extract, from-dir), as JSON text. */
export function writeResultJson(r: ExtractResult & { bytesVerified?: number }): string {
  const { problems, seconds, ...rest } = r;
  return `${JSON.stringify({ ...rest, problems: problemsJson(problems), seconds: Number(seconds.toFixed(3)) }, null, 2)}\n`;
}

/** The result of a command that writes registry storage, as lines: the plan (dry run) or a summary. */
export function renderWriteResult(r: ExtractResult, verb: string): string {
  const lines: string[] = [];
  const n = r.images.length;
  if (r.dryRun) {
    for (const img of r.images) {
      const platforms = img.platforms.length > 0 ? ` [${img.platforms.join(', ')}]` : '';
      lines.push(`${img.ref}  ${img.digest}  ${img.kind}${platforms}  ${img.blobs} blobs  ${formatBytes(img.bytes)}`);
    }
    lines.push(
      `plan: ${n} image${n === 1 ? '' : 's'}, ${r.plan.blobs} blobs (${r.plan.blobsAlreadyThere} already in the output), ` +
        `${formatBytes(r.plan.bytes)}, ${r.plan.blobs + r.plan.links} files (${r.plan.blobs} blob data, ${r.plan.links} links) into ${r.output}; nothing written (dry run)`,
    );
  } else if (r.stats !== undefined) {
    const s = r.stats;
    lines.push(
      `${verb} ${n} image${n === 1 ? '' : 's'} into ${r.output}: blobs ${s.blobsLinked} linked, ${clonedPart(s.blobsCloned)}${s.blobsCopied + s.blobsWritten} copied, ` +
        `${s.blobsExisting} already there; ${formatBytes(s.bytes)} (${formatBytes(s.bytesCopied)} copied); ` +
        `links ${s.linksWritten} written, ${s.linksUnchanged} unchanged; ${r.seconds.toFixed(2)} s`,
    );
  }
  const repaired = renderRepaired(r.repaired, r.dryRun);
  if (repaired !== undefined) lines.push(repaired);
  return `${lines.join('\n')}\n`;
}

/** One line on links written that the source lacks (the list is in --json), or undefined if none. */
export function renderRepaired(repaired: RepairedLink[], dryRun: boolean): string | undefined {
  if (repaired.length === 0) return undefined;
  const layers = repaired.filter((x) => x.link === 'layers').length;
  const revisions = repaired.length - layers;
  const what = [
    layers > 0 ? `${layers} _layers link${layers === 1 ? '' : 's'} of configs or layers the source holds unlinked (--repair)` : '',
    revisions > 0 ? `${revisions} revision link${revisions === 1 ? '' : 's'} of manifests the source serves through _layers links` : '',
  ].filter((x) => x !== '');
  return `${dryRun ? 'would write' : 'wrote'} links the source lacks: ${what.join('; ')}`;
}

/** `N cloned, ` when reflinks were made (a filesystem that can), else nothing. */
export function clonedPart(n: number): string {
  return n > 0 ? `${n} cloned, ` : '';
}
