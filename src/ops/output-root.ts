/**
 * Choosing and guarding an output storage root. The output may be a registry root (regfs
 * writes `docker/registry/v2` under it) or a `docker/registry/v2` directory itself; it must
 * not be the source or lie inside it, since regfs never changes its source.
 */
import { readdirSync, rmdirSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep, isAbsolute } from 'node:path';
import { RegfsError } from '../errors.js';
import { assertOutputDirectory, OutputDirs } from '../fs/atomic.js';
import { blobsDir, STORAGE_PREFIX, storageRoot } from '../registry/layout.js';
import { OCI_LAYOUT_FILE } from '../oci/layout.js';
import type { StorageDriver } from '../storage/driver.js';
import { isS3Root } from '../storage/open.js';
import type { S3Storage } from '../storage/s3.js';

/**
 * The storage root to write for an output directory, and whether it exists yet: the output
 * itself if its path ends in `docker/registry/v2`, else `<out>/docker/registry/v2`. Unlike a
 * source, an output is not taken for a v2 directory because it holds `blobs/` or
 * `repositories/`: an OCI layout holds `blobs/` too, and regfs would merge into it.
 * `dirs` checks every directory written below the output as named, the `docker/registry/v2`
 * chain included.
 */
export async function outputStorageRoot(out: string): Promise<{ v2: string; exists: boolean; dirs: OutputDirs }> {
  const abs = resolve(out);
  const v2 = abs.endsWith(sep + STORAGE_PREFIX) ? abs : storageRoot(abs);
  assertOutputDirectory(v2);
  const there = await exists(v2);
  if (!there && (await exists(join(abs, OCI_LAYOUT_FILE)))) {
    throw new RegfsError('NOT_REGISTRY', `output "${out}" is an OCI image layout, not registry storage; regfs writes registry storage, and writes a layout with "regfs to-oci"`, { path: out });
  }
  return { v2, exists: there, dirs: new OutputDirs(abs) };
}

/**
 * An output root on S3: whether it holds storage yet, and a refusal (OUTPUT_IN_SOURCE) if its
 * keys and the source's overlap (one storage root at or below the other, in one bucket) or it
 * lies below the source's rootdirectory.
 */
export async function s3OutputRoot(out: S3Storage, source: StorageDriver | undefined): Promise<{ v2: string; exists: boolean }> {
  if (source?.kind === 's3' && (source as S3Storage).bucket === out.bucket && (source as S3Storage).service === out.service) {
    const under = (a: string, b: string): boolean => a === b || b === '' || a.startsWith(`${b}/`);
    // The source's rootdirectory is its registry root: an output below it is inside the
    // source, as on disk an output inside the source's directory is.
    if (under(out.root.prefix, (source as S3Storage).root.prefix) || under(out.v2, source.v2) || under(source.v2, out.v2)) {
      throw new RegfsError('OUTPUT_IN_SOURCE', `output "${out.location}" is the source "${source.location}", inside it, or holds it; regfs never writes into its source`, { path: out.location });
    }
  }
  return { v2: out.v2, exists: (await out.stat(out.v2))?.kind === 'directory' };
}

/**
 * Refuse an output equal to the source or inside it (as given, or as its storage root), and
 * an output root that holds the source's storage. Symbolic links are resolved first. A source
 * on S3 holds no directory.
 */
export async function assertOutsideSource(source: string, sourceV2: string, out: string, outRoot: string): Promise<void> {
  if (isS3Root(source)) return;
  // When the source was given as its v2 directory, the registry root around it is the source too.
  const given = resolve(source);
  const sourceRoot = given.endsWith(sep + STORAGE_PREFIX) ? given.slice(0, -(STORAGE_PREFIX.length + 1)) : given;
  const [src, srcV2, dst, dstRoot] = await Promise.all([realpathLoose(sourceRoot), realpathLoose(sourceV2), realpathLoose(out), realpathLoose(outRoot)]);
  // Paths, and then identities: a bind mount reaches the same directory by another path.
  const sameDir = async (a: string, b: string): Promise<boolean> => {
    const [x, y] = await Promise.all([identity(a), identity(b)]);
    return x !== undefined && x === y;
  };
  const insideById = async (child: string, parent: string): Promise<boolean> => {
    for (const a of ancestors(child)) if (await sameDir(a, parent)) return true;
    return false;
  };
  if (
    within(dst, src) ||
    within(dstRoot, srcV2) ||
    within(srcV2, dstRoot) ||
    (await insideById(dst, src)) ||
    (await insideById(dstRoot, srcV2)) ||
    (await insideById(srcV2, dstRoot))
  ) {
    throw new RegfsError(
      'OUTPUT_IN_SOURCE',
      `output "${out}" is the source "${source}", inside it, or a directory that holds it (symbolic links and bind mounts followed); regfs never writes into its source`,
      { path: out },
    );
  }
}

/** `dev:ino` of a directory, or undefined if it does not exist. */
async function identity(path: string): Promise<string | undefined> {
  try {
    const st = await stat(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** A path and each of its ancestors, up to the root. */
function ancestors(path: string): string[] {
  const out = [path];
  for (let p = dirname(path); p !== out[out.length - 1]; p = dirname(p)) out.push(p);
  return out;
}

function within(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** realpath of the deepest existing ancestor, with the rest of the path appended. */
async function realpathLoose(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch {
    const parent = dirname(abs);
    if (parent === abs) return abs;
    return join(await realpathLoose(parent), basename(abs));
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * After a refused run into an output that held no storage: the directories the run made
 * (`docker/registry/v2/blobs` and up, below `existed`, the nearest that was there before),
 * each only if empty, so that nothing is left; not if `v2` holds anything but an empty
 * `blobs/` (another run's lock: it has taken over).
 */
export function removeEmptyChain(v2: string, existed: string): void {
  try {
    const names = readdirSync(v2);
    if (names.length !== 1 || names[0] !== 'blobs' || readdirSync(blobsDir(v2)).length > 0) return;
  } catch {
    return;
  }
  const dirs = [blobsDir(v2)];
  for (let d = v2; d !== existed && d.startsWith(existed === '/' ? '/' : `${existed}/`); d = dirname(d)) dirs.push(d);
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
  }
}

/** `path`, or the nearest of its parents, that exists. */
export async function existingAncestor(path: string): Promise<string> {
  for (let p = path; ; p = dirname(p)) {
    try {
      await stat(p);
      return p;
    } catch {
      if (dirname(p) === p) return p;
    }
  }
}
