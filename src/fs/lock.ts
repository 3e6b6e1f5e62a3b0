/**
 * A lock on a tree regfs writes, so that two regfs runs never change the same storage (or
 * export) at once. The lock is a file that appears whole (link(2) from a temp file), which
 * fails if the lock exists, holding the owner's pid, host, command and start time.
 *
 * A run killed with SIGKILL cannot remove its lock, and a re-run must be able to complete its
 * work, so a lock whose owner is on this host and no longer alive is stale and is taken over:
 * the stale file is renamed aside (one rename wins if two runs race for it), checked to be the
 * stale one that was read, and removed. A lock from another host is never taken over (its pid
 * means nothing here): the message says how to remove it by hand.
 */
import { randomBytes } from 'node:crypto';
import { link, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { hostname } from 'node:os';
import { errnoCode, ioError, RegfsError } from '../errors.js';

/** The lock file's name, in the root of a storage tree or an export. */
export const LOCK_FILE = '.regfs.lock';

/** What a lock file holds. */
export interface LockOwner {
  pid: number;
  host: string;
  command: string;
  started: string;
}

/** A held lock. */
export interface Lock {
  path: string;
  release(): Promise<void>;
}

/** Take the lock at `path` (its directory must exist); LOCKED if another live run holds it. */
export async function acquireLock(path: string, command: string): Promise<Lock> {
  const me: LockOwner = { pid: process.pid, host: hostname(), command, started: new Date().toISOString() };
  const content = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; attempt < 3; attempt++) {
    // Look first: a run that is refused writes nothing, not even a temp file beside the lock.
    let held = await readFile(path, 'utf8').catch(() => undefined);
    if (held === undefined) {
      if (await createWhole(path, content)) {
        await removeDeadTemps(path);
        return { path, release: () => releaseLock(path, content) };
      }
      held = await readFile(path, 'utf8').catch(() => undefined);
      if (held === undefined) continue; // released meanwhile
    }
    const owner = parseOwner(held);
    const stale = owner === undefined ? await olderThan(path, UNREADABLE_STALE_MS) : owner.host === me.host && !isAlive(owner.pid);
    if (!stale) throw locked(path, owner);
    await takeOverStale(path, held);
  }
  throw new RegfsError('LOCKED', `cannot take the lock "${path}": it keeps changing hands`, { path });
}

/** An unreadable lock file this old is stale: no run takes that long between creating and writing it. */
const UNREADABLE_STALE_MS = 60_000;

/**
 * Create the lock file with its content, or return false if it exists. The content goes to a
 * temp file first and the lock appears by link(2), so a run killed at any moment never
 * leaves an empty lock. Where there are no hard links (FAT), it is created with O_EXCL and
 * written: a kill in between leaves an unreadable lock, taken over after a minute.
 */
async function createWhole(path: string, content: string): Promise<boolean> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.regfs-tmp`;
  try {
    await writeFile(tmp, content, { flag: 'wx' });
    await link(tmp, path);
    return true;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw ioError('taking the lock', path, err);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  try {
    await writeFile(path, content, { flag: 'wx' });
    return true;
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false;
    throw ioError('taking the lock', path, err);
  }
}

/** The temp files `createWhole` of a run killed between its link and its unlink left beside the lock. */
async function removeDeadTemps(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = name.startsWith(prefix) ? /^(\d+)\.[0-9a-f]+\.regfs-tmp$/.exec(name.slice(prefix.length)) : null;
    if (m !== null && Number(m[1]) !== process.pid && !isAlive(Number(m[1]))) await unlink(join(dir, name)).catch(() => undefined);
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms;
  } catch {
    return false;
  }
}

/** Run `fn` holding the lock at `path`. */
export async function withLock<T>(path: string, command: string, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(path, command);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** Who holds the lock at `path`, if anyone (for verify). */
export async function readLockOwner(path: string): Promise<LockOwner | undefined> {
  const held = await readFile(path, 'utf8').catch(() => undefined);
  return held === undefined ? undefined : parseOwner(held);
}

/** True if the owner of a lock is a live process on this host. */
export function isLiveOwner(owner: LockOwner): boolean {
  return owner.host === hostname() && isAlive(owner.pid);
}

async function takeOverStale(path: string, held: string): Promise<void> {
  const aside = `${path}.stale.${process.pid}.${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return; // someone else moved it
    throw ioError('taking over the stale lock', path, err);
  }
  const moved = await readFile(aside, 'utf8').catch(() => undefined);
  if (moved !== held) {
    // A live run took the lock between our read and our rename: give it back.
    if (moved !== undefined) await writeFile(path, moved, { flag: 'wx' }).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
    throw locked(path, moved === undefined ? undefined : parseOwner(moved));
  }
  await unlink(aside).catch(() => undefined);
}

async function releaseLock(path: string, content: string): Promise<void> {
  const held = await readFile(path, 'utf8').catch(() => undefined);
  if (held === content) await unlink(path).catch(() => undefined);
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    if (typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.command === 'string' && typeof o.started === 'string') return o as LockOwner;
  } catch {
    // not ours, or damaged
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

function locked(path: string, owner: LockOwner | undefined): RegfsError {
  const who = owner === undefined ? 'an unreadable lock file' : `regfs ${owner.command} (pid ${owner.pid} on ${owner.host}, since ${owner.started})`;
  return new RegfsError(
    'LOCKED',
    `"${path}" is locked by ${who}; wait for it to finish${owner === undefined || owner.host !== hostname() ? ', or, if no regfs run is using it, remove the lock file' : ''}`,
    { path },
  );
}
