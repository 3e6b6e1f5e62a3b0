/**
 * A lock on a tree regfs writes, so that two regfs runs never change the same storage (or
 * export) at once. The lock is a file that appears whole (link(2) from a temp file), which
 * fails if the lock exists, holding the owner's pid, host, command, start time and a random
 * token, so no two holders ever write the same content.
 *
 * A run killed with SIGKILL cannot remove its lock, and a re-run must be able to complete its
 * work, so a lock whose owner is on this host and no longer alive is stale and is taken over.
 * A lock from another host is never taken over (its pid means nothing here): the message
 * says how to remove it by hand.
 *
 * The take-over is itself exclusive. To replace a stale lock holding S, a run first takes
 * the take-over lock `<lock>.takeover-<hash of S>` (by this same procedure, one level down),
 * then reads the lock again and, only if it still holds S, renames its own content over it;
 * then it releases the take-over lock. Why two runs never both hold the lock:
 *
 *   - The lock file changes in three ways only: it is created where there is none (link(2),
 *     which fails if one exists); it is removed by its owner (release, which removes only
 *     its own content); it is replaced, by rename(2), by a run that holds the take-over lock
 *     of the content it replaces and has read that content there while holding it.
 *   - While run X holds the take-over lock of S and has read S in the lock, nothing else can
 *     change the lock before X's rename: it is not absent, so nobody creates it; S's owner is
 *     dead, so it does not release it; and any other replacement of S needs the take-over
 *     lock of S, which X holds (exclusive by the same argument one level down; at the
 *     deepest level nothing is taken over, so there it is plain link(2) exclusion).
 *   - So every change of the lock is made against the content it replaces, and a holder
 *     loses the lock only when it releases it or when it is dead.
 *
 * The old design renamed the stale lock aside and then checked what it had moved: a run that
 * read S just before another run took S over moved that run's fresh lock aside, and while it
 * put it back a third run could create its own, so two held the lock at once.
 *
 * A take-over lock left by a run killed during a take-over is stale in turn and taken over
 * the same way, one level down. Take-over locks of content that is no longer the lock can do
 * nothing (the lock never holds that content again) and are removed by the next holder.
 */
import { createHash, randomBytes } from 'node:crypto';
import { link, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { hostname } from 'node:os';
import { errnoCode, ioError, RegfsError } from '../errors.js';
import { readRegularFile } from '../registry/link-file.js';
import { isAlive, leftByDeadProcess, MARK, pidNamespace, processMark } from './owner.js';

/** The lock file's name, in the root of a storage tree or an export. */
export const LOCK_FILE = '.regfs.lock';

/** What a lock file holds. */
export interface LockOwner {
  pid: number;
  host: string;
  /** The owner's PID namespace (absent in locks of older regfs, and where /proc cannot tell). */
  pidns?: string;
  command: string;
  started: string;
}

/** A held lock. */
export interface Lock {
  path: string;
  release(): Promise<void>;
}

/** How many times a run looks again at a lock that is changing hands before it gives up. */
const ATTEMPTS = 50;
/** Take-over locks of take-over locks nest at most this deep; deeper, a stale one is left alone. */
const MAX_TAKEOVER_DEPTH = 3;

/** Take the lock at `path` (its directory must exist); LOCKED if another live run holds it. */
export async function acquireLock(path: string, command: string): Promise<Lock> {
  // A namespace that cannot be read is written as "?": no other run can then tell whether this one lives.
  const me = { pid: process.pid, host: hostname(), pidns: pidNamespace() ?? '?', command, started: new Date().toISOString(), token: randomBytes(8).toString('hex') };
  const content = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const got = await take(path, content, 0);
    if (got === 'held') {
      await removeLeftovers(path);
      return { path, release: () => releaseLock(path, content) };
    }
    if (got !== 'retry') throw locked(path, got.owner);
    // A take-over by a live run is under way, or the lock changed hands meanwhile: look again soon.
    await new Promise((r) => setTimeout(r, 2 + Math.random() * 10));
  }
  throw new RegfsError('LOCKED', `cannot take the lock "${path}": it keeps changing hands`, { path });
}

/**
 * One try at the lock (or, at depth > 0, a take-over lock) at `path`: 'held' if it is now
 * ours, the owner if a live run holds it, 'retry' if it changed hands or is being taken over.
 */
async function take(path: string, content: string, depth: number): Promise<'held' | 'retry' | { owner: LockOwner | undefined }> {
  // Look first: a run that is refused writes nothing, not even a temp file beside the lock.
  let held = readHeld(path);
  if (held === undefined) {
    if (await createWhole(path, content)) return 'held';
    held = readHeld(path);
    if (held === undefined) return 'retry'; // released meanwhile
  }
  if (!(await isStale(path, held))) return { owner: parseOwner(held) };
  if (depth >= MAX_TAKEOVER_DEPTH) return 'retry';
  const takeover = takeoverPath(path, held);
  if ((await take(takeover, content, depth + 1)) !== 'held') return 'retry';
  try {
    // Holding the take-over lock of `held`: if the lock still holds it, nobody else can change it.
    const now = readHeld(path);
    if (now !== held || !(await isStale(path, now))) return 'retry';
    await replaceWhole(path, content);
    return 'held';
  } finally {
    await releaseLock(takeover, content);
  }
}

/** `<lock>.takeover-<16 hex of sha256(content)>`: the take-over lock for one stale content. */
function takeoverPath(path: string, held: string): string {
  return `${path}${TAKEOVER_INFIX}${createHash('sha256').update(held).digest('hex').slice(0, 16)}`;
}

const TAKEOVER_INFIX = '.takeover-';

/** A lock whose owner is a dead process on this host, or an unreadable one old enough. */
async function isStale(path: string, held: string): Promise<boolean> {
  const owner = parseOwner(held);
  return owner === undefined ? olderThan(path, UNREADABLE_STALE_MS) : canJudge(owner) && !isAlive(owner.pid);
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
  const tmp = lockTempPath(path);
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

/**
 * A temp file beside a lock: `<lock>.<mark>.<hex>.regfs-tmp`, where `<mark>` is the run's
 * `<pid>-<tag>` (owner.ts), so that a run removes only the temp files of dead processes it can
 * see.
 */
function lockTempPath(path: string): string {
  return `${path}.${processMark()}.${randomBytes(6).toString('hex')}.regfs-tmp`;
}

/** Put `content` in place of the lock file at `path` by temp file and rename(2). */
async function replaceWhole(path: string, content: string): Promise<void> {
  const tmp = lockTempPath(path);
  try {
    await writeFile(tmp, content, { flag: 'wx' });
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw ioError('taking over the stale lock', path, err);
  }
}

/**
 * What runs that died left beside the lock: temp files of a create or a take-over (named
 * for their dead pid), and take-over locks whose owner is dead (or unreadable ones older
 * than a minute). The holder removes them (when the lock holds its own content, no
 * take-over lock found can concern the lock any more); verify reports them. A take-over lock
 * that is not a regular file is returned with what it is: regfs did not write it, so it is
 * reported, never removed.
 */
export async function lockLeftovers(path: string): Promise<Array<{ path: string; notRegular?: string }>> {
  const dir = dirname(path);
  const base = basename(path);
  // `.<pid>-<tag>.` (`.<pid>.` from an older regfs, judged by the pid alone).
  const temp = new RegExp(`^((?:\\.takeover-[0-9a-f]{16})*)\\.(?:${MARK}|([0-9]+))\\.[0-9a-f]+\\.regfs-tmp$`);
  const takeover = /^(?:\.takeover-[0-9a-f]{16})+$/;
  const found: Array<{ path: string; notRegular?: string }> = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(base) || name === base) continue;
    const rest = name.slice(base.length);
    const full = join(dir, name);
    const m = temp.exec(rest);
    if (m !== null) {
      const dead = m[4] === undefined ? leftByDeadProcess(m[2]!, m[3]!) : Number(m[4]) !== process.pid && !isAlive(Number(m[4]));
      if (dead) found.push({ path: full });
    } else if (takeover.test(rest)) {
      const held = readLockFile(full);
      if (held !== undefined && typeof held !== 'string') found.push({ path: full, notRegular: held.notRegular });
      else if (held !== undefined && (await isStale(full, held))) found.push({ path: full });
    }
  }
  return found;
}

async function removeLeftovers(path: string): Promise<void> {
  for (const left of await lockLeftovers(path)) if (left.notRegular === undefined) await unlink(left.path).catch(() => undefined);
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

/**
 * What the lock file at `path` holds (for verify): undefined if there is none, the owner
 * (undefined inside if unreadable), or what is there instead of a regular file ("a FIFO").
 */
export function readLockOwner(path: string): { owner: LockOwner | undefined } | { notRegular: string } | undefined {
  const held = readLockFile(path);
  if (held === undefined || typeof held !== 'string') return held;
  return { owner: parseOwner(held) };
}

/** Far more than any lock content regfs writes; a longer file is unreadable (so stale after a minute). */
const LOCK_MAX_BYTES = 4096;

/** A lock file's content, undefined if there is none (or it cannot be read), or what it is if not a regular file. */
function readLockFile(path: string): string | { notRegular: string } | undefined {
  let r;
  try {
    r = readRegularFile(path, LOCK_MAX_BYTES, 'reading the lock');
  } catch {
    return undefined;
  }
  return r === undefined || Buffer.isBuffer(r) ? r?.toString('utf8') : r;
}

/**
 * A lock file's content, undefined if there is none. Something other than a regular file in
 * its place (a FIFO would block a plain read forever) is LOCKED naming it, at once: regfs
 * never wrote it and cannot tell whether another tool relies on it.
 */
function readHeld(path: string): string | undefined {
  const held = readLockFile(path);
  if (held === undefined || typeof held === 'string') return held;
  throw new RegfsError('LOCKED', `cannot take the lock "${path}": it is ${held.notRegular}, not a lock file regfs wrote; remove it if no regfs run is using this tree`, { path });
}

/** True if the owner of a lock is a live process on this host. */
export function isLiveOwner(owner: LockOwner): boolean {
  return canJudge(owner) && isAlive(owner.pid);
}

/**
 * Whether this process can tell if the owner's process lives: the same host, and the same PID
 * namespace (a container sharing the tree and the host's name has pids of its own). An owner
 * that names no namespace (an older regfs) counts as of this one; one whose namespace is "?"
 * (it could not read its own), or any namespace where this process cannot read its own,
 * cannot be judged.
 */
export function canJudge(owner: LockOwner): boolean {
  if (owner.host !== hostname()) return false;
  if (owner.pidns === undefined) return true; // an older regfs's lock: judged as it judged it
  const mine = pidNamespace();
  return mine !== undefined && owner.pidns === mine;
}

async function releaseLock(path: string, content: string): Promise<void> {
  if (readLockFile(path) === content) await unlink(path).catch(() => undefined);
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text) as Partial<LockOwner>;
    // A pid that is no process id (0 and -1 signal groups: kill() on them always succeeds) is no owner.
    const pid = o.pid;
    if (typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0 && typeof o.host === 'string' && typeof o.command === 'string' && typeof o.started === 'string' && (o.pidns === undefined || typeof o.pidns === 'string')) {
      // The owner, not the rest of the file (its token tells holders apart; it is nobody's to print).
      return { pid, host: o.host, ...(o.pidns === undefined ? {} : { pidns: o.pidns }), command: o.command, started: o.started };
    }
  } catch {
    // not ours, or damaged
  }
  return undefined;
}

function locked(path: string, owner: LockOwner | undefined): RegfsError {
  const who = owner === undefined ? 'an unreadable lock file' : `regfs ${owner.command} (pid ${owner.pid} on ${owner.host}, since ${owner.started})`;
  return new RegfsError(
    'LOCKED',
    `"${path}" is locked by ${who}; wait for it to finish${owner === undefined || !canJudge(owner) ? ', or, if no regfs run is using it, remove the lock file' : ''}`,
    { path },
  );
}
