/**
 * Crash-safe file writes: content goes to a temp file in the target's own directory, then
 * rename(2) puts it in place, so a reader (or the registry) sees the old file or the new one,
 * never a half-written one. This is what distribution's filesystem driver does from v3.1 on;
 * 2.8 truncates in place, which is why a crash there can leave empty link files.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, lstatSync, mkdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { errnoCode } from '../errors.js';
import { landWithoutReplacing } from './link.js';
import { basename, dirname, join } from 'node:path';

/** The suffix every regfs temp file ends with; scanners ignore such files. */
export const TEMP_SUFFIX = '.regfs-tmp';

/** Random per process, so a name is not reused by a later process that gets the same pid. */
const PROCESS_TAG = `${process.pid}-${randomBytes(4).toString('hex')}`;
let counter = 0;

/** A fresh temp name beside `path`: `<dir>/.<base>.<pid>-<random>-<n>.regfs-tmp`. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${PROCESS_TAG}-${(counter++).toString(36)}${TEMP_SUFFIX}`);
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
 * mkdir -p that reports the real failure. Node's recursive mkdir reports ENOENT when a parent
 * cannot be made for another reason, EROFS or ENOSPC say (nodejs/node#47098, #42808): on
 * ENOENT, the first missing component is made alone, which fails with the real error.
 */
export function mkdirpSync(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    let missing = dir;
    while (!existsSync(dirname(missing)) && dirname(missing) !== missing) missing = dirname(missing);
    mkdirSync(missing);
    throw err;
  }
}
