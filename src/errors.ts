/**
 * One error class for everything regfs reports to a user. Callers and tests branch on
 * `code`, never on the message. The message says what failed and quotes the path; the
 * Node error that caused it, if any, is kept as `cause`.
 */

/** Stable error codes. They are part of the public interface: see docs/errors.md. */
export type RegfsErrorCode =
  | 'USAGE'
  | 'LIST_SYNTAX'
  | 'LIST_UNREADABLE'
  | 'NAME_INVALID'
  | 'TAG_INVALID'
  | 'DIGEST_INVALID'
  | 'NOT_REGISTRY'
  | 'OUTPUT_IN_SOURCE'
  | 'NAME_UNKNOWN'
  | 'TAG_UNKNOWN'
  | 'TAG_DIGEST_MISMATCH'
  | 'TAG_CONFLICT'
  | 'OUTPUT_SYMLINK'
  | 'OUTPUT_UNWRITABLE'
  | 'MANIFEST_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'DIGEST_MISMATCH'
  | 'BLOB_UNKNOWN'
  | 'BLOB_INVALID'
  | 'SIZE_INVALID'
  | 'LINK_INVALID'
  | 'LINK_FAILED'
  | 'LINK_DANGLING'
  | 'TAG_DANGLING'
  | 'REFERRER_MISSING'
  | 'CHILD_MISSING'
  | 'INDEX_TOO_DEEP'
  | 'LAYER_UNLINKED'
  | 'EMPTY_FILE'
  | 'TEMP_FILE'
  | 'STALE_UPLOAD'
  | 'STALE_LOCK'
  | 'SYMLINK_LOOP'
  | 'SYMLINK_ALIAS'
  | 'UNSAFE'
  | 'LOCKED'
  | 'NOT_DIR_TRANSPORT'
  | 'NOT_OCI_LAYOUT'
  | 'ARCHIVE_INVALID'
  | 'BUNDLE_BASE_MISSING'
  | 'PLATFORM_UNKNOWN'
  | 'IO_ERROR'
  | 'S3_URL_INVALID'
  | 'S3_BUCKET_UNKNOWN'
  | 'S3_CREDENTIALS'
  | 'S3_UNREACHABLE'
  | 'INCOMPLETE'
  | 'INVENTORY_INVALID'
  | 'OUTPUT_NOT_FILE'
  | 'V3_SCHEMA1'
  | 'V3_LAYERS_FALLBACK'
  | 'V3_SPARSE_INDEX';

/** Where in an image list a problem was found. */
export interface ListPosition {
  file: string;
  line: number;
}

export interface RegfsErrorDetails {
  path?: string | undefined;
  digest?: string | undefined;
  at?: ListPosition | undefined;
  cause?: unknown;
  /** For INCOMPLETE: every problem found, each a RegfsError of its own. */
  problems?: readonly RegfsError[] | undefined;
}

/** The error every regfs function throws for bad input, missing content or a failed write. */
export class RegfsError extends Error {
  readonly code: RegfsErrorCode;
  readonly path: string | undefined;
  readonly digest: string | undefined;
  readonly at: ListPosition | undefined;
  readonly problems: readonly RegfsError[];

  constructor(code: RegfsErrorCode, message: string, details: RegfsErrorDetails = {}) {
    // No stack trace: a RegfsError is a report for a user, never printed with one, and a run
    // may make a million of them (a list of missing images). Capturing the stack was most of
    // their cost (docs/performance.md).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    Error.stackTraceLimit = limit;
    // A message built by concatenation is held by V8 as a tree of its parts until it is first
    // indexed; indexing it once makes it one flat string, which halves what a kept problem
    // costs (389 to 229 bytes measured for a missing-repository message).
    message.charCodeAt(0);
    this.code = code;
    this.path = details.path;
    this.digest = details.digest;
    this.at = details.at;
    this.problems = details.problems ?? NO_PROBLEMS;
  }

  // On the prototype, not on each of a million instances.
  override get name(): string {
    return 'RegfsError';
  }
}

const NO_PROBLEMS: readonly RegfsError[] = Object.freeze([]);

/** Where a command sends each problem as it finds it (the CLI streams them to its output). */
export type ProblemSink = (problem: RegfsError) => void;

/**
 * The problems of one run: counted, and kept, or handed to a sink as they are found and not
 * kept, so that a run with a million problems holds none of them (the CLI streams them).
 */
export class Problems {
  /** How many were found, kept or not. */
  count = 0;
  private readonly kept: RegfsError[] = [];

  constructor(private readonly sink?: ProblemSink) {}

  /** While held (see inListOrder), problems wait here. */
  private held: RegfsError[] | undefined;

  add(problem: RegfsError): void {
    if (this.held !== undefined) {
      this.held.push(problem);
      return;
    }
    this.count++;
    if (this.sink === undefined) this.kept.push(problem);
    else this.sink(problem);
  }

  /**
   * Run `f` holding the problems added meanwhile, then add them in the order of the list
   * lines they name (a stable sort; one naming no line stays after the one before it): work
   * done for many lines at once reports as if it had been done line by line.
   */
  async inListOrder<T>(f: () => Promise<T>): Promise<T> {
    const outer = this.held;
    this.held = [];
    try {
      return await f();
    } finally {
      const held = this.held;
      this.held = outer;
      let last = 0;
      const keyed = held.map((p, i) => ({ p, i, line: (last = p.at?.line ?? last) }));
      keyed.sort((a, b) => a.line - b.line || a.i - b.i);
      for (const { p } of keyed) this.add(p);
    }
  }

  /** The problems kept: all of them without a sink, none with one. */
  get list(): RegfsError[] {
    return this.kept;
  }
}

/** The longest prefix of a user- or tree-supplied string that `quote` puts in a message. */
export const QUOTE_MAX = 200;

/** The same for a path built from names found in a tree (a name is at most 255 bytes). */
export const PATH_QUOTE_MAX = 1024;

// C0 and C1 controls, DEL, the line and paragraph separators, and the bidirectional
// overrides and isolates (which can make a line read as something it is not).
const UNSAFE_CLASS = '[\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]';
const HAS_UNSAFE = new RegExp(UNSAFE_CLASS);
const UNSAFE = new RegExp(UNSAFE_CLASS, 'g');

function escapeOne(c: string): string {
  if (c === '\n') return '\\n';
  if (c === '\t') return '\\t';
  if (c === '\r') return '\\r';
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * Escape the characters that could change how a line of output reads on a terminal or in a
 * log: a newline (which would forge a line), escape sequences, bidirectional overrides. Each
 * becomes `\n`, `\t`, `\r` or `\uXXXX`; everything else is kept, so text already escaped
 * stays as it is. The CLI passes every message and path it prints through this.
 */
export function escapeControl(s: string): string {
  return HAS_UNSAFE.test(s) ? s.replace(UNSAFE, escapeOne) : s;
}

/**
 * A user- or tree-supplied string (a name, a path component, a list line, a path) as a
 * message quotes it: in double quotes, `\` and `"` escaped, control characters escaped as
 * `escapeControl` does, and at most `max` characters of it, the length of the rest said:
 * `"aaa…" (1,000,000 characters)`. The one way such strings enter messages.
 */
export function quote(s: string, max = QUOTE_MAX): string {
  const cut = s.length > max;
  // Not between the two halves of a surrogate pair.
  const end = cut && /[\ud800-\udbff]/.test(s[max - 1]!) ? max - 1 : max;
  const shown = escapeControl((cut ? s.slice(0, end) : s).replace(/[\\"]/g, '\\$&'));
  return cut ? `"${shown}…" (${s.length.toLocaleString('en-US')} characters)` : `"${shown}"`;
}

/** True for a RegfsError, optionally of one code. */
export function isRegfsError(err: unknown, code?: RegfsErrorCode): err is RegfsError {
  return err instanceof RegfsError && (code === undefined || err.code === code);
}

/** The `code` of a Node system error (`ENOENT`, `EXDEV` …), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Wrap a Node I/O error as IO_ERROR, naming what was being done and where. */
export function ioError(doing: string, path: string, cause: unknown): RegfsError {
  const code = errnoCode(cause);
  return new RegfsError('IO_ERROR', `${doing} ${quote(path, PATH_QUOTE_MAX)}: ${code ?? String(cause)}`, { path, cause });
}
