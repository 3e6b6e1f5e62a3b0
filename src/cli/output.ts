/**
 * Rendering for the CLI: data to stdout, messages and progress to stderr. The only place
 * (with the command modules) that prints; the library never does.
 */
import { Chalk, type ChalkInstance } from 'chalk';
import { escapeControl, type RegfsError } from '../errors.js';
import type { ExtractResult } from '../ops/extract.js';
import type { RepairedLink } from '../ops/resolve.js';
import { colorLevel } from './color.js';

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
  stderr: NodeJS.WritableStream & { isTTY?: boolean; getColorDepth?: (env?: NodeJS.ProcessEnv) => number };
  /**
   * The colours of messages on stderr (chalk at the level colorLevel decides for stderr);
   * when unset, decided from the environment alone on first use.
   */
  color?: ChalkInstance;
}

export const processIo: Io = { stdout: process.stdout, stderr: process.stderr };

/** `io` with its stderr colours decided: by `--color` / `--no-color` (`flag`), the environment and stderr's terminal. */
export function withColor(io: Io, flag: boolean | undefined, env: NodeJS.ProcessEnv = process.env): Io {
  return { ...io, color: new Chalk({ level: colorLevel(io.stderr, env, flag) }) };
}

/** The colours for stderr: every message printer takes them from here. */
function paint(io: Io): ChalkInstance {
  return (io.color ??= new Chalk({ level: colorLevel(io.stderr, process.env, undefined) }));
}

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
  io.stderr.write(`${paint(io).yellow('warning:')} ${escapeControl(message)}\n`);
}

/** Print a RegfsError (and the problems it carries, as printProblems does) to stderr. */
export function printError(io: Io, err: RegfsError): void {
  printProblems(io, err.problems);
  io.stderr.write(errorLine(paint(io), err));
}

/**
 * The most problems printed to the terminal; the rest are counted by code in one line.
 * `--json` lists every one.
 */
export const PROBLEMS_SHOWN = 100;

/**
 * Problems to stderr, one line each: the first PROBLEMS_SHOWN of them, then how many more
 * there are of each code. A list of a million missing images gives a screenful, not a
 * million lines; `--json` has them all.
 */
export function printProblems(io: Io, problems: readonly RegfsError[]): void {
  const chalk = paint(io);
  const shown = Math.min(problems.length, PROBLEMS_SHOWN);
  let text = '';
  for (let i = 0; i < shown; i++) text += errorLine(chalk, problems[i]!);
  if (problems.length > shown) {
    const byCode = new Map<string, number>();
    for (let i = shown; i < problems.length; i++) byCode.set(problems[i]!.code, (byCode.get(problems[i]!.code) ?? 0) + 1);
    const codes = [...byCode].map(([code, n]) => `${n.toLocaleString('en-US')} ${code}`).join(', ');
    const more = problems.length - shown;
    text += `${chalk.red('error:')} and ${more.toLocaleString('en-US')} more problem${more === 1 ? '' : 's'} (${codes}); --json lists every one\n`;
  }
  if (text !== '') io.stderr.write(text);
}

/** One problem as a line; a newline or escape sequence in its message cannot make it two. */
function errorLine(chalk: ChalkInstance, p: RegfsError): string {
  return `${chalk.red('error:')} ${escapeControl(p.message)} ${chalk.dim(`[${p.code}]`)}\n`;
}

/**
 * Write `value` as `JSON.stringify(value, null, 2)` would, followed by a newline, but arrays
 * element by element in writes of about 64 KiB: a result with a million problems is larger
 * than the longest string V8 can make.
 */
export function writeJson(out: NodeJS.WritableStream, value: unknown): void {
  let buf = '';
  const put = (s: string): void => {
    buf += s;
    if (buf.length >= 1 << 16) {
      out.write(buf);
      buf = '';
    }
  };
  const emitArray = (n: number, at: (i: number) => unknown, indent: string): void => {
    if (n === 0) {
      put('[]');
      return;
    }
    put('[');
    for (let i = 0; i < n; i++) {
      put(`${i === 0 ? '' : ','}\n${indent}  `);
      const el = at(i);
      if (isJsonValue(el)) emit(el, `${indent}  `);
      else put('null');
    }
    put(`\n${indent}]`);
  };
  const emit = (v: unknown, indent: string): void => {
    if (v instanceof LazyArray) {
      const lazy = v as LazyArray<unknown>;
      emitArray(lazy.items.length, (i) => lazy.map(lazy.items[i]), indent);
      return;
    }
    const x = isObjectLike(v) && typeof (v as { toJSON?: unknown }).toJSON === 'function' ? (v as { toJSON: () => unknown }).toJSON() : v;
    if (Array.isArray(x)) {
      emitArray(x.length, (i) => x[i] as unknown, indent);
    } else if (isObjectLike(x)) {
      const entries = Object.entries(x).filter(([, e]) => isJsonValue(e));
      if (entries.length === 0) {
        put('{}');
        return;
      }
      put('{');
      entries.forEach(([k, e], i) => {
        put(`${i === 0 ? '' : ','}\n${indent}  ${JSON.stringify(k)}: `);
        emit(e, `${indent}  `);
      });
      put(`\n${indent}}`);
    } else {
      put(JSON.stringify(x) ?? 'null');
    }
  };
  emit(value, '');
  out.write(`${buf}\n`);
}

function isObjectLike(v: unknown): v is object {
  return typeof v === 'object' && v !== null;
}

/** What JSON.stringify keeps as an object member (undefined, functions and symbols are left out). */
function isJsonValue(v: unknown): boolean {
  return v !== undefined && typeof v !== 'function' && typeof v !== 'symbol';
}

/**
 * An array whose elements are made one at a time as writeJson writes them, not all at once
 * (a million problems); JSON.stringify sees the whole array.
 */
export class LazyArray<T> {
  constructor(
    readonly items: readonly T[],
    readonly map: (item: T) => unknown,
  ) {}

  toJSON(): unknown[] {
    return this.items.map(this.map);
  }
}

/** Problems as --json output lists them. */
export function problemsJson(problems: readonly RegfsError[]): LazyArray<RegfsError> {
  return new LazyArray(problems, (p) => ({ code: p.code, message: p.message, file: p.at?.file, line: p.at?.line, path: p.path }));
}

/** The result of a command that writes registry storage (extract, from-dir), as JSON on stdout. */
export function writeResultJson(io: Io, r: ExtractResult & { bytesVerified?: number }): void {
  const { problems, seconds, ...rest } = r;
  writeJson(io.stdout, { ...rest, problems: problemsJson(problems), seconds: Number(seconds.toFixed(3)) });
}

/** A RegfsError as `--json` gives it on stdout, every problem it carries included. */
export function writeErrorJson(io: Io, err: RegfsError): void {
  writeJson(io.stdout, { ok: false, error: { code: err.code, message: err.message, path: err.path }, problems: problemsJson(err.problems) });
}

/**
 * The result of a command that writes registry storage, as lines: the plan (dry run: one row
 * per image, `ref  digest  kind  platforms  blobs  size`, an artifact's type where an image
 * has platforms, in columns as `ls` prints them) or a summary.
 */
export function renderWriteResult(r: ExtractResult, verb: string): string {
  const lines: string[] = [];
  const n = r.images.length;
  if (r.dryRun) {
    lines.push(...alignColumns(r.images.map((img) => [img.ref, img.digest, img.kind, contentCell(img), `${img.blobs} blobs`, formatBytes(img.bytes)]), [4, 5]));
    lines.push(
      escapeControl(
        `plan: ${n} image${n === 1 ? '' : 's'}, ${r.plan.blobs} blobs (${r.plan.blobsAlreadyThere} already in the output), ` +
          `${formatBytes(r.plan.bytes)}, ${r.plan.blobs + r.plan.links} files (${r.plan.blobs} blob data, ${r.plan.links} links) into ${r.output}; nothing written (dry run)`,
      ),
    );
  } else if (r.stats !== undefined) {
    const s = r.stats;
    // Manifests written from their bytes (from-dir) are neither linked nor copied.
    const written = s.blobsWritten > 0 ? `, ${s.blobsWritten} manifest${s.blobsWritten === 1 ? '' : 's'} written` : '';
    lines.push(
      escapeControl(
        `${verb} ${n} image${n === 1 ? '' : 's'} into ${r.output}: blobs ${s.blobsLinked} linked, ${clonedPart(s.blobsCloned)}${s.blobsCopied} copied, ` +
          `${s.blobsExisting} already there${written}; ${formatBytes(s.bytes)} (${formatBytes(s.bytesCopied)} ${s.blobsWritten > 0 ? 'copied or written' : 'copied'}); ` +
          `links ${s.linksWritten} written, ${s.linksUnchanged} unchanged; ${r.seconds.toFixed(2)} s`,
      ),
    );
  }
  const repaired = renderRepaired(r.repaired, r.dryRun);
  if (repaired !== undefined) lines.push(escapeControl(repaired));
  return `${lines.join('\n')}\n`;
}

/** What an image holds as `ls` shows it: its platforms (`linux/amd64,linux/arm64`), else an artifact's type, else `-`. */
export function contentCell(img: { platforms: readonly string[]; artifactType?: string | undefined }): string {
  return img.platforms.length > 0 ? img.platforms.join(',') : (img.artifactType ?? '-');
}

/**
 * Rows of cells as lines in columns two spaces apart, as `ls` prints them: each cell
 * escaped (a name cannot break the table), padded to its column's width, the columns in
 * `right` aligned right; no trailing blanks.
 */
export function alignColumns(rows: readonly string[][], right: readonly number[] = []): string[] {
  const cells = rows.map((row) => row.map(escapeControl));
  const widths: number[] = [];
  for (const row of cells) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return cells.map((row) => row.map((c, i) => (right.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd());
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
