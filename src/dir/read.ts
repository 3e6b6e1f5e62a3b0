/**
 * Reading `dir:` image directories as containers/image does (directory_src.go): the
 * `version` file is not required; blobs are `<hex>` (version 1.1) or `<hex>.tar` (1.0);
 * an index's instances are `<hex>.manifest.json`. Manifests are returned as the registry
 * would store them: a signed schema1 manifest becomes its canonical payload. Symbolic links
 * are followed, as containers/image follows them; a FIFO, socket, device or directory where
 * a file should be is refused without being opened.
 */
import { readFile } from 'node:fs/promises';
import { ioError, RegfsError } from '../errors.js';
import { assertInsideInput, statData } from '../registry/follow.js';
import { digestOf, type Digest } from '../digest.js';
import { parseManifestContent, type Manifest } from '../manifest.js';
import { MANIFEST_MAX_BYTES } from '../registry/read.js';
import { schema1Payload } from '../schema1.js';
import { blobPath, legacyBlobPath, manifestPath } from './layout.js';

/** A blob file found in an image directory. */
export interface DirBlob {
  path: string;
  size: number;
}

/**
 * The top manifest (`instance` undefined) or an instance manifest of an image directory, as
 * stored bytes: its digest is computed from them. An instance must hash to its name.
 * Undefined if the file does not exist.
 */
export async function readDirManifest(dir: string, instance?: Digest): Promise<Manifest | undefined> {
  const path = manifestPath(dir, instance);
  // Type first, without opening: a FIFO would block, a device must not be read.
  const st = statData(path);
  if (st === undefined) return undefined;
  if (st.notRegular !== undefined) throw new RegfsError('MANIFEST_INVALID', `"${path}" is ${st.notRegular}, not a regular file`, { path });
  // Checked before the read: a manifest file the registry would refuse is never read whole.
  if (st.size > MANIFEST_MAX_BYTES) {
    throw new RegfsError('MANIFEST_INVALID', `manifest "${path}" is ${st.size} bytes, larger than the registry's ${MANIFEST_MAX_BYTES}-byte limit for a manifest`, { path });
  }
  let raw: Buffer;
  try {
    raw = await readFile(st.path);
  } catch (err) {
    throw ioError('reading manifest', path, err);
  }
  const stored = storedBytes(raw, path);
  const digest = digestOf(stored);
  if (instance !== undefined && digest !== instance) {
    throw new RegfsError('DIGEST_MISMATCH', `manifest "${path}" does not match its name: its bytes hash to ${digest}`, { path, digest: instance });
  }
  return parseManifestContent(stored, digest, path);
}

/**
 * A blob of an image directory (`<hex>`, else `<hex>.tar`); undefined if neither exists. With
 * `inside` (the input's real path; given when blobs are not hashed), a blob leading outside it is refused.
 */
export async function findDirBlob(dir: string, d: Digest, inside?: string): Promise<DirBlob | undefined> {
  for (const path of [blobPath(dir, d), legacyBlobPath(dir, d)]) {
    const st = statData(path);
    if (st === undefined) continue;
    if (st.notRegular !== undefined) {
      throw new RegfsError('BLOB_INVALID', `blob "${path}" is ${st.notRegular}; a blob must be a regular file (or a symbolic link to one)`, { path, digest: d });
    }
    if (inside !== undefined) assertInsideInput(path, inside, d);
    // The real file: it is what gets hard-linked into the destination.
    return { path: st.path, size: st.size };
  }
  return undefined;
}

/** The bytes the registry stores for a manifest file: a signed schema1 manifest's payload, else the file. */
function storedBytes(raw: Buffer, path: string): Buffer {
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new RegfsError('MANIFEST_INVALID', `manifest "${path}" is not JSON: ${(err as Error).message}`, { path });
  }
  const signed = typeof doc === 'object' && doc !== null && (doc as Record<string, unknown>)['schemaVersion'] === 1 && 'signatures' in doc;
  return signed ? schema1Payload(raw, path) : raw;
}
