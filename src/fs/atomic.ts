/**
 * Crash-safe file writes: content goes to a temp file in the target's own directory, then
 * rename(2) puts it in place, so a reader (or the registry) sees the old file or the new one,
 * never a half-written one. This is what distribution's filesystem driver does from v3.1 on;
 * 2.8 truncates in place, which is why a crash there can leave empty link files.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, type Dirent, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, type Stats } from 'node:fs';
import { errnoCode, ioError, RegfsError } from '../errors.js';
import { landWithoutReplacing } from './link.js';
import { processMark } from './owner.js';
import { dirname, join, resolve } from 'node:path';

/** The suffix every regfs temp file ends with; scanners ignore such files. */
export const TEMP_SUFFIX = '.regfs-tmp';

/**
 * The process's mark (`<pid>-<tag>`, owner.ts: a later run can tell whether the writer is
 * gone), and 8 random hex, so that a name is not reused by a later process that gets the same
 * pid. Made when first needed.
 */
let processTag: string | undefined;
let counter = 0;

/**
 * A fresh temp name beside `path`: `<dir>/.<base>.<pid>-<tag>-<random>-<n>.regfs-tmp`. `path`
 * names a file (made by regfs from a normalized root), so its directory is what precedes its
 * last `/`: cut there, not normalized again (once per file written, on the hot path).
 */
export function tempPathFor(path: string): string {
  processTag ??= `${processMark()}-${randomBytes(4).toString('hex')}`;
  const slash = path.lastIndexOf('/');
  return `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.${processTag}-${(counter++).toString(36)}${TEMP_SUFFIX}`;
}

/** True for a name regfs (or distribution v3.1, `<name>.<uuid>.tmp`) uses for temp files. */
export function isTempName(name: string): boolean {
  return name.endsWith(TEMP_SUFFIX) || name.endsWith('.tmp');
}

/**
 * Write `data` to `path` unless a file is already there (then return false and leave it):
 * the content goes to a temp file and lands without replacing (see landWithoutReplacing).
 * The parent directory must exist.
 */
export function writeFileExclusiveSync(path: string, data: Uint8Array): boolean {
  const tmp = tempPathFor(path);
  try {
    writeFileSync(tmp, data, { flag: 'wx', mode: 0o644 });
    return landWithoutReplacing({ linkSync, renameSync, lstatSync }, tmp, path);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // landed by rename, or never written
    }
  }
}

/**
 * Write `data` to `path` atomically: to a temp file beside it, then rename(2). The parent
 * directory is created first unless `parentExists` says it is already there.
 */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, opts: { parentExists?: boolean } = {}): void {
  if (opts.parentExists !== true) mkdirpSync(dirname(path));
  const tmp = tempPathFor(path);
  try {
    writeFileSync(tmp, data, { flag: 'wx', mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * mkdir -p of a directory the user named, one component at a time from the deepest one that
 * exists: Node's recursive mkdir spins for ever where mkdir(2) says ENOENT under a parent that
 * exists (under /proc, nodejs/node#47098), and reports ENOENT for EROFS or ENOSPC. Here each
 * missing component is made alone, so the first failure is the real one, reported at once.
 * Symbolic links the user's path goes through are followed: the path is the user's choice.
 */
export function mkdirpSync(dir: string): void {
  const missing = missingDirs(dir);
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EEXIST' && isSymlink(d)) {
        throw new RegfsError('OUTPUT_UNWRITABLE', `cannot create "${dir}": "${d}" is a symbolic link to nothing`, { path: d, cause: err });
      }
      if (code === 'EEXIST') continue; // made meanwhile
      if (code === 'ENOENT') {
        throw new RegfsError('OUTPUT_UNWRITABLE', `cannot create "${dir}": the filesystem of "${dirname(d)}" does not take new directories (ENOENT)`, { path: d, cause: err });
      }
      throw ioError('creating', d, err);
    }
  }
}

/**
 * The components of `dir` that do not exist yet, outermost first. OUTPUT_UNWRITABLE if the
 * deepest one that exists (symbolic links followed) is not a directory: `dir` (or one of its
 * parents) is a file, so nothing can be written there.
 */
function missingDirs(dir: string): string[] {
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    let st: Stats | undefined;
    try {
      st = statSync(d, { throwIfNoEntry: false });
    } catch (err) {
      // ENOTDIR: a parent is a file, which the walk up reaches next.
      if (errnoCode(err) === 'ELOOP') throw new RegfsError('OUTPUT_UNWRITABLE', `cannot write into "${dir}": "${d}" is reached through a symbolic link that loops`, { path: d, cause: err });
      if (errnoCode(err) !== 'ENOTDIR') throw ioError('reading', d, err);
    }
    if (st !== undefined) {
      if (!st.isDirectory()) throw new RegfsError('OUTPUT_UNWRITABLE', `cannot write into "${dir}": "${d}" is not a directory`, { path: d });
      break;
    }
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  return missing;
}

/** Refuse (OUTPUT_UNWRITABLE) an output that is, or lies below, something other than a directory. */
export function assertOutputDirectory(dir: string): void {
  missingDirs(dir);
}

/**
 * Refuse (OUTPUT_UNWRITABLE) an output file whose directory is not there to write into: it
 * lies below a file, a symbolic link to nothing or a loop, or does not exist (regfs makes no
 * directory for a file output, as `tar -f` makes none).
 */
export function assertOutputFileDirectory(file: string): void {
  const dir = dirname(resolve(file));
  const missing = missingDirs(dir)[0];
  if (missing === undefined) return;
  const why = isSymlink(missing) ? `"${missing}" is a symbolic link to nothing` : `its directory "${dirname(file)}" does not exist`;
  throw new RegfsError('OUTPUT_UNWRITABLE', `cannot write "${file}": ${why}`, { path: file });
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * The directories a writer creates or writes into below an output root: each must be a real
 * directory, never a symbolic link (a link in the output, followed, would put regfs's writes
 * in another tree, such as the source) and never another kind of file. The root itself is
 * the user's choice and may be reached through links; everything below it is checked. A
 * directory is checked once, by the mkdir that makes it or, when it exists, by one lstat,
 * and remembered, so the cost is one check per directory, not per file. Files are then
 * written inside verified directories by temp file and rename, which replaces a symbolic
 * link at the file's own name rather than following it.
 */
export class OutputDirs {
  private readonly verified = new Set<string>();
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /**
   * Make `dir` (the root or a path below it) and every directory between, each checked.
   * `remember: false` for a leaf that receives one file (a blob's or a link's own
   * directory): it is checked all the same, but not kept, so the memory held is the
   * directories shared by many files, not one entry per file.
   */
  ensure(dir: string, remember = true): void {
    if (this.verified.has(dir)) return;
    if (dir === this.root) {
      mkdirpSync(dir);
    } else {
      const parent = dirname(dir);
      if (parent === dir || !dir.startsWith(`${this.root}/`)) throw new Error(`"${dir}" is not below the output root "${this.root}"`);
      this.ensure(parent);
      try {
        mkdirSync(dir);
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw ioError('creating', dir, err);
        checkRealDir(dir, this.root);
      }
    }
    if (remember) this.verified.add(dir);
  }

  /**
   * Before reading a file regfs may rewrite: its directory `dir`, if it exists, must be a
   * real directory too (one lstat; its parents are made and checked as by `ensure`), so
   * that content found through a link never counts as the output's own.
   */
  checkExisting(dir: string): void {
    if (this.verified.has(dir)) return;
    this.ensure(dirname(dir));
    let st;
    try {
      st = lstatSync(dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw ioError('reading', dir, err);
    }
    assertRealDir(st, dir, this.root);
  }
}

function checkRealDir(dir: string, root: string): void {
  let st;
  try {
    st = lstatSync(dir);
  } catch (err) {
    throw ioError('reading', dir, err);
  }
  assertRealDir(st, dir, root);
}

function assertRealDir(st: Stats, dir: string, root: string): void {
  if (st.isSymbolicLink()) {
    throw new RegfsError(
      'OUTPUT_SYMLINK',
      `"${dir}" in the output "${root}" is a symbolic link; regfs writes only into real directories of its output, never through a link into another tree`,
      { path: dir },
    );
  }
  if (!st.isDirectory()) throw new RegfsError('IO_ERROR', `creating "${dir}": ENOTDIR (a file is in the way)`, { path: dir });
}

/** A directory's entry names; IO_ERROR naming it if it cannot be read. */
export function readNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    throw ioError('reading', dir, err);
  }
}

/**
 * Remove the regular files of `dir` whose names `match` (one gone meanwhile counts as removed by
 * another); how many this call removed. Only a regular file can be a temp file regfs wrote: a
 * directory, FIFO or symbolic link of such a name is somebody else's and stays.
 */
export function removeMatching(dir: string, match: (name: string) => boolean): number {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    throw ioError('reading', dir, err);
  }
  let n = 0;
  for (const e of entries) {
    if (!e.isFile() || !match(e.name)) continue;
    try {
      unlinkSync(join(dir, e.name));
      n++;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw ioError('removing', join(dir, e.name), err);
    }
  }
  return n;
}
