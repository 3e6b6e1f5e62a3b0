/**
 * Reading storage as the registry's filesystem driver does: it never calls lstat, so a
 * symbolic link to blob data, or to a fan-out, repository or revision directory (storage
 * spread over several disks), is followed and its target served. regfs follows them the
 * same way when it reads, and refuses what is not a regular file where data should be
 * without opening it (a FIFO would block, a device must not be read). Writes never follow a
 * symbolic link (docs/guarantees.md).
 */
import { lstatSync, readdirSync, readlinkSync, realpathSync, statSync, type Dirent } from 'node:fs';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import type { Digest } from '../digest.js';
import { errnoCode, ioError, RegfsError } from '../errors.js';
import { fileKind } from './link-file.js';

/** A directory entry; `dir` is true for a directory and for a symbolic link to one. */
export interface Entry {
  name: string;
  dir: boolean;
}

/**
 * The entries of a directory, symbolic links to directories counted as directories; [] if
 * the directory does not exist. Any other error is IO_ERROR naming it.
 */
export function listEntries(dir: string): Entry[] {
  let list: Dirent[];
  try {
    list = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw ioError('reading', dir, err);
  }
  return list.map((e) => ({ name: e.name, dir: e.isDirectory() || (e.isSymbolicLink() && entryIsDirectory(join(dir, e.name))) }));
}

/**
 * True if `path` is a directory once symbolic links are followed; false if nothing is there.
 * A symbolic link that loops is IO_ERROR (ELOOP) naming it.
 */
export function isDirectoryFollowing(path: string): boolean {
  try {
    // No exception for a missing path: a list of a million missing repositories asks a million times.
    return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw ioError('reading', path, err);
  }
}

/** isDirectoryFollowing for an entry found in a listing: one that loops or dangles leads nowhere, so it is no directory. */
function entryIsDirectory(path: string): boolean {
  try {
    return isDirectoryFollowing(path);
  } catch (err) {
    if (err instanceof RegfsError && errnoCode(err.cause) === 'ELOOP') return false;
    throw err;
  }
}

/**
 * Whether `path` (below `root`) goes through a symbolic link that leads to another name inside
 * `root`: an alias, a second name in the tree for a directory. A link that leads out of the
 * tree (storage spread over disks) is the directory's own name, not an alias. Each link's
 * target is resolved as the kernel resolves it, component by component from where the link
 * really is, links on the way expanded, `..` taken from the real directory: the link is an
 * alias as soon as that resolution looks up a name inside the tree (even one that is itself a
 * link to another disk).
 */
export function linksIntoTree(path: string, root: string): boolean {
  let realRoot: string;
  try {
    realRoot = realpathSync.native(root);
  } catch {
    return false;
  }
  const inside = (p: string): boolean => p === realRoot || p.startsWith(`${realRoot}${sep}`);
  let at = root;
  for (const part of relative(root, path).split(sep)) {
    if (part === '' || part === '.') continue;
    at = join(at, part);
    try {
      if (lstatSync(at).isSymbolicLink() && resolvesThrough(readlinkSync(at), realpathSync.native(dirname(at)), inside)) return true;
    } catch {
      // gone, or a link to nothing: no second name
    }
  }
  return false;
}

/**
 * How likely `path` (below `root`) is the second name of a directory that another path also
 * reaches, for naming the alias: 1,000 if it goes through a link that resolves through
 * another name in the tree (linksIntoTree), plus one for each symbolic link among its
 * components (a repository's own link to another disk is one; a link to that link, two).
 */
export function aliasScore(path: string, root: string): number {
  let links = 0;
  let at = root;
  for (const part of relative(root, path).split(sep)) {
    if (part === '' || part === '.') continue;
    at = join(at, part);
    try {
      if (lstatSync(at).isSymbolicLink()) links++;
    } catch {
      // gone
    }
  }
  return (linksIntoTree(path, root) ? 1000 : 0) + links;
}

/** The kernel's limit on symbolic links followed in one resolution (ELOOP past it). */
const MAX_LINKS = 40;

/**
 * Resolve the link text `target` from the real directory `from` as the kernel does, and say
 * whether a name it looks up on the way satisfies `hit`. False if the resolution fails (a
 * missing component, a loop): a link to nothing names nothing.
 */
function resolvesThrough(target: string, from: string, hit: (p: string) => boolean): boolean {
  let links = 0;
  // The real path `text` leads to from `dir`; true once a name looked up is a hit; undefined if it fails.
  const walk = (text: string, dir: string): string | true | undefined => {
    let cur = isAbsolute(text) ? sep : dir;
    for (const part of text.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') {
        cur = dirname(cur);
        continue;
      }
      const next = join(cur, part);
      if (hit(next)) return true;
      let st;
      try {
        st = lstatSync(next);
      } catch {
        return undefined;
      }
      if (!st.isSymbolicLink()) {
        cur = next;
        continue;
      }
      if (++links > MAX_LINKS) return undefined;
      let inner: string;
      try {
        inner = readlinkSync(next);
      } catch {
        return undefined;
      }
      const r = walk(inner, cur);
      if (r === true || r === undefined) return r;
      cur = r;
    }
    return cur;
  };
  return walk(target, from) === true;
}

/** The identity of a directory (device and inode, symbolic links followed), to cut loops in a walk. */
export function directoryId(path: string): string {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch (err) {
    throw ioError('reading', path, err);
  }
}

/** statData's notRegular for a symbolic link that loops (ELOOP). */
export const LOOPS = 'a symbolic link that loops';

/** What a blob's `data` path holds, symbolic links followed. */
export interface DataStat {
  /** The file to read or link: the `data` path, or the real path a symbolic link leads to. */
  path: string;
  size: number;
  /** Undefined for a regular file; otherwise what it is ("a FIFO", "a directory" …), for messages. */
  notRegular: string | undefined;
  /** For a directory (reached through symbolic links or not), its modification time. */
  dirMtime?: Date;
}

/**
 * Stat blob data as the registry does (following symbolic links); undefined if there is none
 * (a dangling symbolic link is none, as for the registry). Where `data` itself is a symbolic
 * link the returned path is the real file, so that a hard link made from it links the data,
 * never the symbolic link (link(2) follows every component but the last).
 */
export function statData(path: string): DataStat | undefined {
  let st;
  try {
    st = lstatSync(path);
    if (st.isSymbolicLink()) st = statSync(path);
    else if (st.isDirectory()) return { path, size: st.size, notRegular: 'a directory', dirMtime: st.mtime };
    else return { path, size: st.size, notRegular: st.isFile() ? undefined : fileKind(st) };
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'ELOOP') return { path, size: 0, notRegular: LOOPS };
    throw ioError('reading blob', path, err);
  }
  if (st.isDirectory()) return { path, size: st.size, notRegular: 'a symbolic link to a directory', dirMtime: st.mtime };
  if (!st.isFile()) return { path, size: st.size, notRegular: `a symbolic link to ${fileKind(st)}` };
  try {
    return { path: realpathSync.native(path), size: st.size, notRegular: undefined };
  } catch (err) {
    throw ioError('reading blob', path, err);
  }
}

/**
 * Refuse (BLOB_INVALID) a blob of an input (a dir: image, an OCI layout) that leads outside the
 * input's directory, whose real path is `root`, once every symbolic link on its way is
 * followed. Without verification nothing says what such a file holds: a link to a file of the
 * host (a key, a password file) of the blob's size would be stored as the blob and served.
 */
export function assertInsideInput(path: string, root: string, d: Digest): void {
  let real: string;
  try {
    real = realpathSync.native(path);
  } catch (err) {
    throw ioError('reading blob', path, err);
  }
  if (real === root || real.startsWith(root.endsWith(sep) ? root : `${root}${sep}`)) return;
  throw new RegfsError(
    'BLOB_INVALID',
    `blob "${path}" leads outside the input, to "${real}", through a symbolic link; without verification (--no-verify) regfs takes no blob from outside the input, as nothing says what it holds`,
    { path, digest: d },
  );
}

/** The real path of an input's directory (every symbolic link followed), for assertInsideInput. */
export function inputRoot(dir: string): string {
  try {
    return realpathSync.native(dir);
  } catch (err) {
    throw ioError('reading', dir, err);
  }
}
