/**
 * Validated content digests. `parseDigest` is the only way to obtain a `Digest`, so a string
 * that is not `<algorithm>:<lower-case hex of the exact length>` can never reach a path join.
 * The algorithms are those go-digest registers and the registry's storage accepts.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, createReadStream, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { quote, RegfsError } from './errors.js';

/** A digest such as `sha256:<64 hex>`, validated. */
export type Digest = string & { readonly __brand: 'Digest' };

/** Digest algorithms and their hex lengths. */
export const DIGEST_ALGORITHMS = { sha256: 64, sha384: 96, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof DIGEST_ALGORITHMS;

const DIGEST_RE = /^(sha256|sha384|sha512):([0-9a-f]+)$/;

/** Parse a digest string exactly as go-digest's Validate does: no trimming, lower-case hex only. */
export function parseDigest(s: string): Digest {
  const m = DIGEST_RE.exec(s);
  if (m === null) {
    throw new RegfsError('DIGEST_INVALID', `invalid digest ${quote(s)}: want sha256:<64 lower-case hex>`);
  }
  const alg = m[1] as DigestAlgorithm;
  if (m[2]!.length !== DIGEST_ALGORITHMS[alg]) {
    throw new RegfsError(
      'DIGEST_INVALID',
      `invalid digest ${quote(s)}: ${alg} needs ${DIGEST_ALGORITHMS[alg]} hex digits, got ${m[2]!.length}`,
    );
  }
  return s as Digest;
}

/** True if `s` is a valid digest. */
export function isDigest(s: string): s is Digest {
  const m = DIGEST_RE.exec(s);
  return m !== null && m[2]!.length === DIGEST_ALGORITHMS[m[1] as DigestAlgorithm];
}

/** The algorithm part of a digest. */
export function digestAlgorithm(d: Digest): DigestAlgorithm {
  return d.slice(0, d.indexOf(':')) as DigestAlgorithm;
}

/** The hex part of a digest. */
export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

/** The digest of bytes under the given algorithm. */
export function digestOf(data: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}

/** Files up to this size are hashed from one read; larger ones are streamed. */
export const SMALL_FILE_BYTES = 4 << 20;

/** The digest of a small file, read whole, synchronously (a stream per small file costs more than the hash). */
export function digestSmallFileSync(path: string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return digestOf(readFileSync(path), algorithm);
}

/** Stream a file through the hash of the given algorithm. */
export async function digestFile(path: string, algorithm: DigestAlgorithm = 'sha256'): Promise<Digest> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
  }
  return `${algorithm}:${hash.digest('hex')}` as Digest;
}

/** The one buffer regular files are read into for hashing: each read is hashed before the next read, so it is never shared. */
let readBuffer: Buffer | undefined;
const READ_BUFFER_BYTES = 1 << 20;
/** digestRegularFile lets the event loop run after this many bytes (progress, signals). */
const YIELD_BYTES = 64 << 20;

/**
 * The digest of a regular file, read synchronously in 1 MiB reads into one reused buffer: no
 * buffer allocated per read or per file (the page faults and garbage of fresh buffers cost
 * more than the reads), no threadpool round trip per read. The open does not block (a FIFO
 * put in the file's place meanwhile is not waited on): the type is checked on the open
 * descriptor, and anything but a regular file is BLOB_INVALID. The event loop runs every
 * 64 MiB. Errors of the system calls are thrown as they come (the caller names the file).
 */
export async function digestRegularFile(path: string, algorithm: DigestAlgorithm = 'sha256'): Promise<Digest> {
  const fd = openRegular(path);
  try {
    const hash = createHash(algorithm);
    while (hashSome(fd, hash, YIELD_BYTES) === YIELD_BYTES) await new Promise((resolve) => setImmediate(resolve));
    return `${algorithm}:${hash.digest('hex')}` as Digest;
  } finally {
    closeSync(fd);
  }
}

/** digestRegularFile without yielding: for files small enough to hash in one go. */
export function digestRegularFileSync(path: string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  const fd = openRegular(path);
  try {
    const hash = createHash(algorithm);
    hashSome(fd, hash, Infinity);
    return `${algorithm}:${hash.digest('hex')}` as Digest;
  } finally {
    closeSync(fd);
  }
}

function openRegular(path: string): number {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw new RegfsError('BLOB_INVALID', `blob "${path}" is not a regular file`, { path });
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/** Read and hash up to `max` bytes of `fd` from where it is; the bytes read (fewer at the end of the file). */
function hashSome(fd: number, hash: Hash, max: number): number {
  readBuffer ??= Buffer.allocUnsafe(READ_BUFFER_BYTES);
  let done = 0;
  while (done < max) {
    const n = readSync(fd, readBuffer, 0, Math.min(readBuffer.length, max - done), null);
    if (n === 0) break;
    hash.update(readBuffer.subarray(0, n));
    done += n;
  }
  return done;
}
