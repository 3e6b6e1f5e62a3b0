/**
 * The owner tag regfs puts in the names of what a run leaves behind (temp files, staging
 * directories): 8 hex of sha256 of the host name and the PID namespace, computed here apart
 * from the implementation, and a pid that was surely alive once and is dead now.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/** This process's PID namespace (the inode of /proc/self/ns/pid). */
export const PID_NAMESPACE = /\[([0-9]+)\]/.exec(readlinkSync('/proc/self/ns/pid'))![1]!;

/** The tag of a process on `host` in PID namespace `ns`. */
export function ownerTag(host: string, ns: string): string {
  return createHash('sha256').update(`${host}\n${ns}`).digest('hex').slice(0, 8);
}

/** The tag of this host and namespace: a regfs run the tests start has it. */
export const MY_TAG = ownerTag(hostname(), PID_NAMESPACE);

/** The pid of a process that has ended. */
export function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}
