/**
 * Which process left something behind, and whether it is gone. What a run may leave if it is
 * killed (temp files, the staging directories of an import into S3, the temp files beside a
 * lock) carries the run's mark in its name, `<pid>-<tag>`: the tag is 8 hex of sha256 of the
 * host name and the PID namespace. A later run removes such a leftover only when the tag is its
 * own and the pid names no live process: a pid means something only on its own host and in
 * its own namespace (a container that shares the directory has pids of its own, and a live
 * run there would lose its files). Where the namespace cannot be read, the tag is `u` and 7
 * random hex: no other run ever judges that run's leftovers, and they stay.
 *
 * The lock's owner (lock.ts) names its host and namespace in full, and is judged by canJudge.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { errnoCode } from '../errors.js';

/** A mark in a name: the pid and the tag as its two groups. */
export const MARK = '([0-9]+)-([0-9a-fu][0-9a-f]{7})';

/** This process's PID namespace (Linux: the inode of /proc/self/ns/pid); undefined where it cannot be read. */
export function pidNamespace(): string | undefined {
  try {
    return /\[([0-9]+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
  } catch {
    return undefined;
  }
}

/** Whether a process of this pid lives on this host (one we may not signal does). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

let tag: string | undefined;
/** This process's tag of its host and PID namespace, made when first asked for. */
export function ownerTag(): string {
  if (tag === undefined) {
    const ns = pidNamespace();
    tag = ns === undefined ? `u${randomBytes(4).toString('hex').slice(1)}` : createHash('sha256').update(`${hostname()}\n${ns}`).digest('hex').slice(0, 8);
  }
  return tag;
}

/** This process's mark, `<pid>-<tag>`, for the names of what it may leave behind. */
export function processMark(): string {
  return `${process.pid}-${ownerTag()}`;
}

/**
 * Whether a leftover marked `<pid>-<tag>` (the two groups of MARK) was made by a process of
 * this host and namespace that is gone. Never this process's own: a library may run two
 * operations at once, and one's files are not the other's to remove.
 */
export function leftByDeadProcess(pid: string, tagOfIt: string): boolean {
  const n = Number(pid);
  return tagOfIt === ownerTag() && Number.isSafeInteger(n) && n > 0 && n <= 0x7fffffff && n !== process.pid && !isAlive(n);
}
