/**
 * Link files: the registry's pointers, each holding exactly `<alg>:<hex>` with no newline
 * (distribution's blobStore.link writes `[]byte(dgst)`; readlink parses without trimming).
 * A link with a trailing newline makes the registry answer 500, so reading is strict: any
 * other content is LINK_INVALID naming the file. Writing is always a new file by temp and
 * rename, never a hard link, so two trees never share a link inode.
 */
import { readFile } from 'node:fs/promises';
import { errnoCode, ioError, RegfsError } from '../errors.js';
import { isDigest, type Digest } from '../digest.js';
import { writeFileAtomic } from '../fs/atomic.js';

/** The longest link content read: `sha512:` + 128 hex. Anything larger is garbage. */
const LINK_MAX_BYTES = 200;

/** Read a link file; undefined if it does not exist, LINK_INVALID if it is malformed. */
export async function readLink(path: string): Promise<Digest | undefined> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'EISDIR') throw new RegfsError('LINK_INVALID', `link "${path}" is a directory`, { path });
    throw ioError('reading link', path, err);
  }
  return parseLinkContent(buf, path);
}

/** Check link file content strictly: exactly a digest, nothing more. */
export function parseLinkContent(buf: Uint8Array, path: string): Digest {
  const text = buf.length > LINK_MAX_BYTES ? '' : Buffer.from(buf).toString('latin1');
  if (isDigest(text)) return text;
  let why: string;
  if (buf.length === 0) why = 'it is empty';
  else if (isDigest(text.trim())) why = 'it has white space around the digest (the registry answers 500 for it)';
  else why = `want "sha256:<64 hex>" with no newline, found ${JSON.stringify(text.slice(0, 80) || `${buf.length} bytes`)}`;
  throw new RegfsError('LINK_INVALID', `malformed link "${path}": ${why}`, { path });
}

/** Write a link file anew, atomically; the parent directory is created unless `parentExists`. */
export async function writeLink(path: string, d: Digest, opts: { parentExists?: boolean } = {}): Promise<void> {
  await writeFileAtomic(path, d, opts);
}
