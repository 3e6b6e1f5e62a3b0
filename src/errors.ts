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
  | 'CHILD_MISSING'
  | 'INDEX_TOO_DEEP'
  | 'LAYER_UNLINKED'
  | 'EMPTY_FILE'
  | 'TEMP_FILE'
  | 'STALE_UPLOAD'
  | 'STALE_LOCK'
  | 'SYMLINK_LOOP'
  | 'UNSAFE'
  | 'LOCKED'
  | 'NOT_DIR_TRANSPORT'
  | 'PLATFORM_UNKNOWN'
  | 'IO_ERROR'
  | 'INCOMPLETE';

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
  problems?: RegfsError[] | undefined;
}

/** The error every regfs function throws for bad input, missing content or a failed write. */
export class RegfsError extends Error {
  override readonly name = 'RegfsError';
  readonly code: RegfsErrorCode;
  readonly path: string | undefined;
  readonly digest: string | undefined;
  readonly at: ListPosition | undefined;
  readonly problems: RegfsError[];

  constructor(code: RegfsErrorCode, message: string, details: RegfsErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.path = details.path;
    this.digest = details.digest;
    this.at = details.at;
    this.problems = details.problems ?? [];
  }

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
  return new RegfsError('IO_ERROR', `${doing} "${path}": ${code ?? String(cause)}`, { path, cause });
}
