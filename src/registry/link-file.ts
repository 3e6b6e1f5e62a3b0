/**
 * Link files: the registry's pointers, each holding exactly `<alg>:<hex>` with no newline
 * (distribution's blobStore.link writes `[]byte(dgst)`; readlink parses without trimming).
 * A link with a trailing newline makes the registry answer 500, so reading is strict: any
 * other content is LINK_INVALID naming the file. Writing is always a new file by temp and
 * rename, never a hard link, so two trees never share a link inode.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type Stats } from 'node:fs';
import { errnoCode, ioError, RegfsError } from '../errors.js';
import { isDigest, type Digest } from '../digest.js';
import { writeFileAtomicSync } from '../fs/atomic.js';
import type { StorageDriver } from '../storage/driver.js';

/** The longest link content read: `sha512:` + 128 hex. Anything larger is garbage. */
const LINK_MAX_BYTES = 200;

/** How to read a link: `follow` a symbolic link in its place (as the registry reads storage), or refuse it. */
export interface ReadLinkOptions {
  follow?: boolean;
}

/**
 * Read a link file; undefined if it does not exist, LINK_INVALID if it is malformed or a
 * component of its path is not a directory. At most LINK_MAX_BYTES + 1 bytes are read, so a
 * link file cannot make the read large. A symbolic link in its place is followed with
 * `follow` (the registry reads storage with os.Open, which follows it), else refused: a
 * writer reads links of its output this way, and replaces what it refuses.
 */
export function readLink(path: string, opts: ReadLinkOptions = {}): Digest | undefined {
  return parseLinkContent(readLinkBytes(path, opts), path);
}

/**
 * The first bytes of a link file (enough to tell it is too long); a FIFO, socket, device or
 * directory in a link's place is refused at once (see readLink for symbolic links).
 */
export function readLinkBytes(path: string, opts: ReadLinkOptions = {}): Buffer | undefined {
  const r = readRegularFile(path, LINK_MAX_BYTES + 1, 'reading link', opts);
  if (r === undefined || Buffer.isBuffer(r)) return r;
  return notALink(path, r);
}

/**
 * readLinkBytes through a storage driver (a file on disk, an object on S3): undefined if the
 * link does not exist, LINK_INVALID for what cannot be a link.
 */
export async function linkContent(driver: StorageDriver, path: string): Promise<Buffer | undefined> {
  const r = await driver.getContent(path, LINK_MAX_BYTES + 1);
  if (r === undefined || Buffer.isBuffer(r)) return r;
  return notALink(path, r);
}

function notALink(path: string, r: NotRegular): never {
  // A file where a directory of the path should be: the registry answers 500, not "unknown".
  if (r.notRegular === NOT_UNDER_DIRECTORY) throw new RegfsError('LINK_INVALID', `link "${path}" cannot exist: a component of its path is not a directory`, { path });
  throw new RegfsError('LINK_INVALID', `link "${path}" is ${r.notRegular}, not a regular file`, { path });
}

/** What readRegularFile found in place of a regular file, for messages ("a FIFO" …). */
export interface NotRegular {
  notRegular: string;
}

/** readRegularFile's notRegular when a component of the path is a file, not a directory. */
export const NOT_UNDER_DIRECTORY = 'under a file where a directory should be';

/**
 * The first `maxBytes` bytes of a small file regfs reads but does not own (a link, a lock,
 * an export's version or record file); undefined if there is none. The file must be a
 * regular file: the open does not block nor (unless `follow`) follow a symbolic link, and the type
 * is checked on the open descriptor before any read, so a FIFO, socket, device, directory
 * or symbolic link in its place is returned as NotRegular at once, never waited on. Any
 * other error is IO_ERROR naming the path.
 */
export function readRegularFile(path: string, maxBytes: number, action: string, opts: ReadLinkOptions = {}): Buffer | NotRegular | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (opts.follow === true ? 0 : constants.O_NOFOLLOW));
  } catch (err) {
    const code = errnoCode(err);
    // A dangling symbolic link (followed) is no file, as for the registry.
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') return { notRegular: NOT_UNDER_DIRECTORY };
    if (code === 'ELOOP') return { notRegular: opts.follow === true ? 'a symbolic link that loops' : 'a symbolic link' };
    // open(2) of a socket, or of a device with nothing behind it.
    if (code === 'ENXIO' || code === 'ENODEV') return { notRegular: 'a socket or device' };
    throw ioError(action, path, err);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { notRegular: fileKind(st) };
    // One byte more than the file holds, up to maxBytes: a file larger than the limit shows
    // it. The read stops at the size fstat gave (a second read would only find its end). Not
    // from Node's shared pool: a cached manifest would keep a whole pool slab alive.
    const buf = Buffer.allocUnsafeSlow(Math.min(maxBytes, st.size + 1));
    const want = Math.min(buf.length, st.size);
    let n = 0;
    while (n < want) {
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    return buf.subarray(0, n);
  } catch (err) {
    throw ioError(action, path, err);
  } finally {
    closeSync(fd);
  }
}

/** What a file that is not regular is, for messages. */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return st.isFile() ? 'a regular file' : 'not a regular file';
}

/** Check link file content strictly: exactly a digest, nothing more. Undefined content is a missing link. */
export function parseLinkContent(buf: Uint8Array, path: string): Digest;
export function parseLinkContent(buf: Uint8Array | undefined, path: string): Digest | undefined;
export function parseLinkContent(buf: Uint8Array | undefined, path: string): Digest | undefined {
  if (buf === undefined) return undefined;
  const text = buf.length > LINK_MAX_BYTES ? '' : Buffer.from(buf).toString('latin1');
  if (isDigest(text)) return text;
  let why: string;
  if (buf.length === 0) why = 'it is empty';
  else if (buf.length > LINK_MAX_BYTES) why = `it holds more than ${LINK_MAX_BYTES} bytes`;
  else if (isDigest(text.trim())) why = 'it has white space around the digest (the registry answers 500 for it)';
  // A link read through a symbolic link may be any file, whose content is nobody's business
  // in a message: it is not quoted (checked on this error path only).
  else if (isSymbolicLink(path)) why = `want "sha256:<64 hex>" with no newline, found ${buf.length} bytes that are not one (through a symbolic link; not shown)`;
  else why = `want "sha256:<64 hex>" with no newline, found ${asBytes(JSON.stringify(text.slice(0, 80)))}`;
  throw new RegfsError('LINK_INVALID', `malformed link "${path}": ${why}`, { path });
}

/** Latin-1 text of raw bytes with each byte past ASCII as `\xNN`: a byte order mark reads `\xef\xbb\xbf`, not `ï»¿`. */
function asBytes(latin1: string): string {
  return latin1.replace(/[\x7f-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function isSymbolicLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Write a link file anew, atomically; the parent directory is created unless `parentExists`. */
export function writeLink(path: string, d: Digest, opts: { parentExists?: boolean } = {}): void {
  writeFileAtomicSync(path, d, opts);
}
