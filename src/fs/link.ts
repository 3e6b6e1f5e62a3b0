/**
 * Putting blob data into a tree: by reflink (a new inode sharing the data blocks, copy on
 * write), by hard link (the same inode: the data is shared, the work is metadata) or by
 * copy. Only blob `data` files are ever placed this way; link files are always written anew
 * (see registry/link-file.ts).
 *
 * `auto` first clones (FICLONE, by copyFileSync with COPYFILE_FICLONE_FORCE, to a temp name
 * that then lands like a copy), where the filesystem can (XFS with reflink, Btrfs): the
 * output's file is then its own inode, so writing into it in place cannot change the
 * source's blob, as it would through a hard link. The first time the clone fails with
 * ENOTSUP, EOPNOTSUPP, EINVAL, ENOTTY, ENOSYS (the filesystem cannot) or EXDEV (another
 * filesystem), `auto` switches for good to hard links, without a warning (a hard link is
 * what it did before reflinks). The first time link(2) then fails with EXDEV or EPERM
 * (fs.protected_hardlinks, a foreign owner, a filesystem without hard links), it switches
 * for good to copying and warns once, as pnpm's importer does. `hardlink` fails instead.
 * `copy` copies through a temp file with FICLONE, so filesystems that can reflink do. A
 * source at its hard-link limit (EMLINK) is copied in every mode, that file alone.
 *
 * Existing data at the destination is kept, never rewritten, as the registry itself does
 * (blobwriter moveBlob returns early when the data is there), unless its size shows it is
 * damaged. A copy lands without replacing (landWithoutReplacing), so it cannot clobber a
 * file that appeared meanwhile.
 *
 * The calls are synchronous: placing a blob is a few metadata syscalls, and a threadpool
 * round trip for each costs several times the syscall itself (docs/performance.md). The
 * writers that call this run it in chunks between which the event loop runs.
 */
import * as nodeFs from 'node:fs';
import { errnoCode, ioError, RegfsError } from '../errors.js';
import { tempPathFor } from './atomic.js';
import { LINK_MODES, type LinkMode } from '../defaults.js';

export { LINK_MODES, type LinkMode };

/** What placing one blob did. */
export type PlaceOutcome = 'cloned' | 'linked' | 'copied' | 'exists';

/** The file operations a linker needs; tests inject failures through it. */
export interface LinkFs {
  linkSync(existing: string, target: string): void;
  copyFileSync(src: string, dest: string, mode: number): void;
  unlinkSync(path: string): void;
  renameSync(from: string, to: string): void;
  lstatSync(path: string): { size: number; isFile(): boolean };
}

export interface LinkerOptions {
  fs?: LinkFs;
  /** Called once when `auto` gives up on hard links (not when it gives up on reflinks). */
  onFallback?: (reason: { code: string; src: string; dest: string }) => void;
}

/** Places one file; its destination directory must exist. */
export interface Linker {
  /**
   * Place `src` at `dest`. Existing data is kept ('exists'), unless `size` is given and the
   * existing file has another (a copy cut short by a crash): then it is replaced.
   */
  place(src: string, dest: string, size?: number): PlaceOutcome;
  /** What the linker does now: `auto` starts with `reflink`, then `hardlink`, then `copy`. */
  readonly current: 'reflink' | 'hardlink' | 'copy';
}

const FALLBACK_CODES = new Set(['EXDEV', 'EPERM']);
/** A clone fails like this where the filesystem (or the pair of them) cannot reflink. */
const NO_REFLINK_CODES = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EINVAL', 'ENOTTY', 'ENOSYS', 'EXDEV']);

/** Create a linker for a mode. */
export function createLinker(mode: LinkMode, opts: LinkerOptions = {}): Linker {
  const fs: LinkFs = opts.fs ?? nodeFs;
  let current: 'reflink' | 'hardlink' | 'copy' = mode === 'copy' ? 'copy' : mode === 'auto' ? 'reflink' : 'hardlink';

  /** Copy (cloned where the filesystem can) to a temp name, then land it without replacing. */
  function copy(src: string, dest: string): PlaceOutcome {
    return viaTemp(src, dest, nodeFs.constants.COPYFILE_FICLONE, 'copied')!;
  }

  /**
   * `src` copied by `cloneMode` to a temp name beside `dest`, landed without replacing.
   * Undefined if `cloneMode` demands a clone and the filesystem cannot make one.
   */
  function viaTemp(src: string, dest: string, cloneMode: number, outcome: 'cloned' | 'copied'): PlaceOutcome | undefined {
    const tmp = tempPathFor(dest);
    try {
      try {
        fs.copyFileSync(src, tmp, cloneMode);
      } catch (err) {
        const code = errnoCode(err);
        if (cloneMode === nodeFs.constants.COPYFILE_FICLONE_FORCE && code !== undefined && NO_REFLINK_CODES.has(code)) return undefined;
        throw err;
      }
      return landWithoutReplacing(fs, tmp, dest) ? outcome : 'exists';
    } catch (err) {
      throw placeError(err, src, dest);
    } finally {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // landed, or never written
      }
    }
  }

  function place(src: string, dest: string, size?: number): PlaceOutcome {
    const outcome = placeNew(src, dest);
    if (outcome !== 'exists' || size === undefined) return outcome;
    let st;
    try {
      st = fs.lstatSync(dest);
    } catch (err) {
      throw placeError(err, src, dest);
    }
    if (st.isFile() && st.size === size) return 'exists';
    // Damaged data: place a good copy beside it, then rename it over.
    const tmp = tempPathFor(dest);
    try {
      const replaced = placeNew(src, tmp);
      fs.renameSync(tmp, dest);
      return replaced;
    } catch (err) {
      try {
        fs.unlinkSync(tmp);
      } catch {
        // never placed
      }
      throw placeError(err, src, dest);
    }
  }

  function placeNew(src: string, dest: string): PlaceOutcome {
    if (current === 'reflink') {
      const cloned = viaTemp(src, dest, nodeFs.constants.COPYFILE_FICLONE_FORCE, 'cloned');
      if (cloned !== undefined) return cloned;
      current = 'hardlink';
    }
    if (current === 'copy') return copy(src, dest);
    try {
      fs.linkSync(src, dest);
      return 'linked';
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EEXIST') return 'exists';
      // This source file has as many names as the filesystem allows (65,000 on ext4): copy
      // it, alone; the filesystem still takes hard links.
      if (code === 'EMLINK') return copy(src, dest);
      if (code !== undefined && FALLBACK_CODES.has(code)) {
        if (mode === 'hardlink') {
          throw new RegfsError(
            'LINK_FAILED',
            `cannot hard-link "${src}" to "${dest}": ${code}${code === 'EXDEV' ? ' (source and output are on different filesystems)' : ' (not permitted)'}; use --link copy or --link auto`,
            { path: dest, cause: err },
          );
        }
        if (current === 'hardlink') {
          current = 'copy';
          opts.onFallback?.({ code, src, dest });
        }
        return copy(src, dest);
      }
      throw placeError(err, src, dest);
    }
  }

  return {
    place,
    get current() {
      return current;
    },
  };
}

/** link(2) fails like this where a filesystem has no hard links at all (FAT, exFAT). */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Put a finished temp file at `dest` unless a file is already there (false then). link(2)
 * refuses to replace; where the filesystem has no hard links, rename(2) after a check that
 * nothing is there does it (regfs holds the tree's lock, so no other regfs writes meanwhile).
 */
export function landWithoutReplacing(fs: Pick<LinkFs, 'linkSync' | 'renameSync' | 'lstatSync'>, tmp: string, dest: string): boolean {
  try {
    fs.linkSync(tmp, dest);
    return true;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EEXIST') return false;
    if (code === undefined || !NO_LINKS.has(code)) throw err;
  }
  try {
    fs.lstatSync(dest);
    return false;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  fs.renameSync(tmp, dest);
  return true;
}

function placeError(err: unknown, src: string, dest: string): RegfsError {
  if (err instanceof RegfsError) return err;
  if (errnoCode(err) === 'ENOENT') {
    return new RegfsError('BLOB_UNKNOWN', `blob data "${src}" vanished while it was being placed at "${dest}"`, { path: src, cause: err });
  }
  return ioError(`placing blob data at`, dest, err);
}
