/**
 * Rendering for the CLI: data to stdout, messages and progress to stderr. The only place
 * (with the command modules) that prints; the library never does.
 */
import { formatRequestCounts, s3RequestCounts } from '../storage/config.js';
import { Chalk, type ChalkInstance } from 'chalk';
import { errnoCode, escapeControl, RegfsError } from '../errors.js';
import type { ExtractResult, ReferrersResult } from '../ops/extract.js';
import type { ReferrerInfo } from '../ops/referrers.js';
import type { RepairedLink } from '../ops/resolve.js';
import type { Finding } from '../ops/verify.js';
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
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; getColorDepth?: (env?: NodeJS.ProcessEnv) => number };
  /**
   * The colours of messages on stderr (chalk at the level colorLevel decides for stderr);
   * when unset, decided from the environment alone on first use.
   */
  color?: ChalkInstance;
  /** The error a write to stdout failed with, once one has (not EPIPE: the reader has gone); undefined where not watched. */
  stdoutError?: () => unknown;
}

/**
 * The process's standard streams. Node makes `process.stdout` and `process.stderr` the first
 * time they are read, loading what their kind of file needs (net for a pipe, tty for a
 * terminal); they are read here only when a run writes to them (--version never writes to
 * stderr), so a run pays for no stream it does not use.
 */
export const processIo: Io = {
  get stdout() {
    return process.stdout;
  },
  get stderr() {
    return process.stderr;
  },
};

/**
 * `io` with its stderr colours decided: by `--color` / `--no-color` (`flag()`), the
 * environment and stderr's terminal, when the first message is coloured (so that a run that
 * prints none never reads its command line for them, nor looks at stderr).
 */
export function withColor(io: Io, flag: () => boolean | undefined, env: NodeJS.ProcessEnv = process.env): Io {
  let color: ChalkInstance | undefined;
  return {
    get stdout() {
      return io.stdout;
    },
    get stderr() {
      return io.stderr;
    },
    get color() {
      return (color ??= new Chalk({ level: colorLevel(io.stderr, env, flag()) }));
    },
    stdoutError: io.stdoutError,
  };
}

/** The colours for stderr: every message printer takes them from here. */
function paint(io: Io): ChalkInstance {
  return (io.color ??= new Chalk({ level: colorLevel(io.stderr, process.env, undefined) }));
}

/**
 * processIo, each stream guarded the first time it is used (a stream is made, and guarded,
 * only by a run that writes to it). A failed write to stdout or stderr does not end the run
 * with a stack trace. EPIPE (the reader has gone, as `head` goes once it has its lines) is no
 * failure of regfs: the rest of that stream's output is dropped, quietly, and the run goes on
 * to its end (a writing command finishes its write) and exits with the status it would have
 * had. Any other error (ENOSPC on a file, EIO) is reported on stderr as IO_ERROR, and
 * `onFailure` is called; that message is coloured as `colorFlag()` (--color, --no-color) and
 * the environment say, like every other.
 */
export function guardedProcessIo(onFailure: () => void, colorFlag: () => boolean | undefined): Io {
  const guarded = new Set<NodeJS.WritableStream>();
  let stdoutError: unknown;
  const io: Io = withColor(
    {
      get stdout() {
        return use(process.stdout, 'standard output');
      },
      get stderr() {
        return use(process.stderr, 'standard error');
      },
      stdoutError: () => stdoutError,
    },
    colorFlag,
  );
  const use = <S extends NodeJS.WritableStream>(stream: S, name: 'standard output' | 'standard error'): S => {
    if (!guarded.has(stream)) {
      guarded.add(stream);
      stream.on('error', (err: unknown) => {
        if (errnoCode(err) === 'EPIPE') return;
        onFailure();
        // Reported once: every later write fails the same way.
        if (name !== 'standard output' || stdoutError !== undefined) return;
        stdoutError = err;
        printError(io, new RegfsError('IO_ERROR', `cannot write to ${name}: ${errnoCode(err) ?? String(err)}`, { cause: err }));
      });
    }
    return stream;
  };
  return io;
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

/**
 * The most problems printed to the terminal; the rest are counted by code in one line.
 * `--json` lists every one.
 */
export const PROBLEMS_SHOWN = 100;

/**
 * Problems to stderr as they are found, one line each: the first PROBLEMS_SHOWN of them, then
 * (at `end`) how many more there were of each code. A list of a million missing images gives
 * a screenful, not a million lines, and holds none of them; `--json` has them all.
 */
export class ProblemPrinter {
  private shown = 0;
  private readonly more = new Map<string, number>();

  constructor(private readonly io: Io) {}

  print(p: RegfsError | Finding): void {
    if (this.shown < PROBLEMS_SHOWN) {
      this.shown++;
      this.io.stderr.write(errorLine(paint(this.io), p));
    } else this.more.set(p.code, (this.more.get(p.code) ?? 0) + 1);
  }

  /** The line that counts the problems not shown, if any; once. */
  end(): void {
    if (this.more.size === 0) return;
    let n = 0;
    for (const k of this.more.values()) n += k;
    const codes = [...this.more].map(([code, k]) => `${k.toLocaleString('en-US')} ${code}`).join(', ');
    this.more.clear();
    this.io.stderr.write(`${paint(this.io).red('error:')} and ${n.toLocaleString('en-US')} more problem${n === 1 ? '' : 's'} (${codes}); --json lists every one\n`);
  }
}

/** Print a RegfsError to stderr: the problems it carries (as ProblemPrinter does), then its own line. */
export function printError(io: Io, err: RegfsError, printer = new ProblemPrinter(io)): void {
  for (const p of err.problems) printer.print(p);
  printer.end();
  io.stderr.write(errorLine(paint(io), err));
}

/** One problem as a line; a newline or escape sequence in its message cannot make it two. */
function errorLine(chalk: ChalkInstance, p: RegfsError | Finding): string {
  return `${chalk.red('error:')} ${escapeControl(p.message)} ${chalk.dim(`[${p.code}]`)}\n`;
}

/**
 * JSON text in writes of about 64 KiB, value by value: a result with a million problems is
 * larger than the longest string V8 can make. `value` writes what `JSON.stringify(v, null, 2)`
 * would, indented as if it began at `indent`.
 */
class JsonWriter {
  private buf = '';

  constructor(private readonly out: NodeJS.WritableStream) {}

  put(s: string): void {
    this.buf += s;
    if (this.buf.length >= 1 << 16) this.flush();
  }

  flush(): void {
    if (this.buf === '') return;
    this.out.write(this.buf);
    this.buf = '';
  }

  value(v: unknown, indent: string): void {
    const x = isObjectLike(v) && typeof (v as { toJSON?: unknown }).toJSON === 'function' ? (v as { toJSON: () => unknown }).toJSON() : v;
    if (Array.isArray(x)) {
      this.array(x.length, (i) => x[i] as unknown, indent);
    } else if (isObjectLike(x)) {
      const entries = Object.entries(x).filter(([, e]) => isJsonValue(e));
      if (entries.length === 0) {
        this.put('{}');
        return;
      }
      this.put('{');
      entries.forEach(([k, e], i) => this.member(k, e, i === 0, indent));
      this.put(`\n${indent}}`);
    } else {
      this.put(JSON.stringify(x) ?? 'null');
    }
  }

  /** `"key": value` inside an object indented at `indent`, after a comma unless it is the first. */
  member(key: string, v: unknown, first: boolean, indent: string): void {
    this.put(`${first ? '' : ','}\n${indent}  ${JSON.stringify(key)}: `);
    this.value(v, `${indent}  `);
  }

  private array(n: number, at: (i: number) => unknown, indent: string): void {
    if (n === 0) {
      this.put('[]');
      return;
    }
    this.put('[');
    for (let i = 0; i < n; i++) {
      this.put(`${i === 0 ? '' : ','}\n${indent}  `);
      const el = at(i);
      if (isJsonValue(el)) this.value(el, `${indent}  `);
      else this.put('null');
    }
    this.put(`\n${indent}]`);
  }
}

function isObjectLike(v: unknown): v is object {
  return typeof v === 'object' && v !== null;
}

/** What JSON.stringify keeps as an object member (undefined, functions and symbols are left out). */
function isJsonValue(v: unknown): boolean {
  return v !== undefined && typeof v !== 'function' && typeof v !== 'symbol';
}

/** The version of the shape of every `--json` document: docs/json.md, schemas/. */
export const JSON_SCHEMA_VERSION = 1;

/** A problem as `--json` lists it. */
export interface ProblemJson {
  code: string;
  message: string;
  /** The list file and line it was found on, if it came from an image list. */
  file?: string | undefined;
  line?: number | undefined;
  path?: string | undefined;
  digest?: string | undefined;
}

function problemJson(p: RegfsError | Finding): ProblemJson {
  const at = 'at' in p ? p.at : undefined;
  return { code: p.code, message: p.message, file: at?.file, line: at?.line, path: p.path, digest: p.digest };
}

/**
 * The one JSON document a `--json` run prints on stdout, on success and on failure alike:
 *
 *   { "schemaVersion": 1, "command": "extract", "problems": [...], "ok": true, "exitCode": 0, ...the result }
 *   { "schemaVersion": 1, "command": "extract", "problems": [...], "ok": false, "exitCode": 1, "error": {...} }
 *
 * `problems` comes first because it is written as problems are found: a run with a million
 * of them holds none. Shapes: docs/json.md and the JSON Schema files in schemas/.
 */
export class JsonReport {
  private readonly w: JsonWriter;
  private problems = 0;
  private state: 'new' | 'problems' | 'done' = 'new';

  constructor(
    out: NodeJS.WritableStream,
    readonly command: string,
  ) {
    this.w = new JsonWriter(out);
  }

  /** Whether the document is complete. */
  get done(): boolean {
    return this.state === 'done';
  }

  /** A problem, written into the document at once. */
  problem(p: RegfsError | Finding): void {
    this.open();
    this.w.put(`${this.problems === 0 ? '' : ','}\n    `);
    this.w.value(problemJson(p), '    ');
    this.problems++;
  }

  /** The end of a run that did its job (perhaps with problems: exit 3, 4): its result's fields. */
  finish(exitCode: number, fields: object): void {
    if (this.state === 'done') return;
    this.open();
    const w = this.w;
    w.put(this.problems === 0 ? ']' : '\n  ]');
    w.member('ok', exitCode === 0, false, '');
    w.member('exitCode', exitCode, false, '');
    for (const [k, v] of Object.entries(fields)) if (isJsonValue(v)) w.member(k, v, false, '');
    w.put('\n}\n');
    w.flush();
    this.state = 'done';
  }

  /** The end of a run that failed: the problems the error carries, then the error. */
  fail(exitCode: number, err: { code: string; message: string; path?: string | undefined; digest?: string | undefined; problems?: readonly RegfsError[] }): void {
    if (this.state === 'done') return;
    for (const p of err.problems ?? []) this.problem(p);
    this.finish(exitCode, { error: { code: err.code, message: err.message, path: err.path, digest: err.digest } });
  }

  private open(): void {
    if (this.state !== 'new') return;
    this.w.put(`{\n  "schemaVersion": ${JSON_SCHEMA_VERSION},\n  "command": ${JSON.stringify(this.command)},\n  "problems": [`);
    this.state = 'problems';
  }
}

/**
 * What one command run prints besides its result: problems to stderr as they are found
 * (ProblemPrinter) and, with `--json`, into the run's one JSON document.
 */
export class RunOutput {
  readonly json: JsonReport | undefined;
  private readonly printer: ProblemPrinter;

  constructor(
    readonly io: Io,
    command: string,
    json: boolean,
  ) {
    this.json = json ? new JsonReport(io.stdout, command) : undefined;
    this.printer = new ProblemPrinter(io);
  }

  /** A problem found: a line on stderr (the first PROBLEMS_SHOWN) and an entry in the JSON document. */
  readonly problem = (p: RegfsError | Finding): void => {
    this.printer.print(p);
    this.json?.problem(p);
  };

  /**
   * A command's result with `--json`: the problems it kept (those not streamed) into the
   * document, then every other field. `seconds` is rounded to milliseconds.
   */
  finishJson(exitCode: number, result: object): void {
    const { problems, seconds, ...rest } = result as { problems?: ReadonlyArray<RegfsError | Finding>; seconds?: number };
    for (const p of problems ?? []) this.json?.problem(p);
    // A run on S3 says what it cost: its requests by operation.
    const requests = s3RequestCounts();
    const fields = requests === undefined ? rest : { ...rest, s3Requests: requests };
    this.json?.finish(exitCode, seconds === undefined ? fields : { ...fields, seconds: Number(seconds.toFixed(3)) });
  }

  /** The line counting the problems not shown; after the last problem. Then, for a run on S3 without --json, its requests. */
  endProblems(): void {
    this.printer.end();
    const requests = s3RequestCounts();
    if (requests !== undefined && this.json === undefined) this.io.stderr.write(`s3: ${formatRequestCounts(requests)}\n`);
  }

  /** A run that failed: its problems and message on stderr, and the JSON document's end. */
  fail(exitCode: number, err: RegfsError): void {
    // A command that failed because standard output did (bundle -): reported once, when it did.
    const stdoutError = this.io.stdoutError?.();
    if (stdoutError === undefined || err.cause !== stdoutError) printError(this.io, err, this.printer);
    this.json?.fail(exitCode, err);
  }
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
          `${formatBytes(r.plan.bytes)}, ${r.plan.blobs + r.plan.links} files (${r.plan.blobs} blob data, ${r.plan.links} links) into ${r.output}; nothing written (dry run)` + leftOutPart(r),
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
          `links ${s.linksWritten} written, ${s.linksUnchanged} unchanged; ${r.seconds.toFixed(2)} s` +
          leftOutPart(r),
      ),
    );
  }
  const repaired = renderRepaired(r.repaired, r.dryRun);
  if (repaired !== undefined) lines.push(escapeControl(repaired));
  if (r.referrers !== undefined) lines.push(...renderReferrers(r.images, r.referrers, r.dryRun).map(escapeControl));
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

/** What --with-referrers took: one line, and one per rewritten fallback index. */
export function renderReferrers(images: Array<{ referrers?: ReferrerInfo[] | undefined }>, r: ReferrersResult, dryRun: boolean): string[] {
  let n = 0;
  let withAny = 0;
  for (const img of images) {
    n += img.referrers?.length ?? 0;
    if ((img.referrers?.length ?? 0) > 0) withAny++;
  }
  const lines = [`referrers: ${n} came along with ${withAny} of ${images.length} image${images.length === 1 ? '' : 's'}; ${r.images} ${dryRun ? 'would be written' : 'written'}`];
  for (const x of r.rewritten) {
    lines.push(`${dryRun ? 'would rewrite' : 'rewrote'} referrers index ${x.repo}:${x.tag}: ${x.sourceDigest} -> ${x.digest}, without ${x.dropped.length} missing from the source`);
  }
  return lines;
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

/**
 * `; left out 3 images (5 problems)` at the end of a --keep-going summary (`would leave out`
 * in a dry run), or nothing when no image was left out.
 */
export function leftOutPart(r: { leftOut: number; problemCount: number; dryRun: boolean }): string {
  if (r.problemCount === 0) return '';
  const n = r.leftOut;
  const p = r.problemCount;
  return `; ${r.dryRun ? 'would leave' : 'left'} out ${n} image${n === 1 ? '' : 's'} (${p} problem${p === 1 ? '' : 's'})`;
}

/** `N cloned, ` when reflinks were made (a filesystem that can), else nothing. */
export function clonedPart(n: number): string {
  return n > 0 ? `${n} cloned, ` : '';
}
