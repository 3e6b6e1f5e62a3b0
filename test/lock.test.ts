import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { acquireLock, LOCK_FILE } from '../src/fs/lock.js';
import { isRegfsError } from '../src/errors.js';
import { runCli } from './helpers/cli.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { tempDir } from './helpers/tree.js';
import { deadPid, MY_TAG, ownerTag, PID_NAMESPACE } from './helpers/owner.js';


test('lock: one holder at a time; released; a dead owner\'s lock is taken over', async () => {
  const t = await tempDir();
  try {
    const path = join(t.dir, LOCK_FILE);
    const lock = await acquireLock(path, 'extract');
    const owner = JSON.parse(await readFile(path, 'utf8')) as { pid: number; command: string };
    assert.equal(owner.pid, process.pid);
    await assert.rejects(acquireLock(path, 'gc'), (e) => isRegfsError(e, 'LOCKED') && e.message.includes(`regfs extract (pid ${process.pid}`));
    await lock.release();
    assert.deepEqual(await readdir(t.dir), []);

    await writeFile(path, JSON.stringify({ pid: deadPid(), host: hostname(), command: 'extract', started: '2026-01-01T00:00:00Z' }));
    const again = await acquireLock(path, 'gc');
    assert.equal((JSON.parse(await readFile(path, 'utf8')) as { command: string }).command, 'gc');
    await again.release();
    assert.deepEqual(await readdir(t.dir), [], 'no stale or temp files left');
  } finally {
    await t.cleanup();
  }
});

test('lock: a run killed during a take-over leaves a take-over lock that is taken over in turn', async () => {
  const t = await tempDir();
  try {
    const path = join(t.dir, LOCK_FILE);
    const stale = JSON.stringify({ pid: deadPid(), host: hostname(), command: 'extract', started: '2026-01-01T00:00:00Z' });
    await writeFile(path, stale);
    // What a taker killed while holding the take-over lock of `stale` leaves: that lock, and its temp file.
    const takeover = `${path}.takeover-${createHash('sha256').update(stale).digest('hex').slice(0, 16)}`;
    const killed = deadPid();
    await writeFile(takeover, JSON.stringify({ pid: killed, host: hostname(), command: 'gc', started: '2026-01-01T00:00:01Z' }));
    await writeFile(`${takeover}.${killed}.0a1b2c.regfs-tmp`, 'x');
    // And one of a stale content that is no longer the lock's.
    await writeFile(`${path}.takeover-${'0'.repeat(16)}`, JSON.stringify({ pid: killed, host: hostname(), command: 'rm', started: '2026-01-01T00:00:02Z' }));
    const lock = await acquireLock(path, 'extract');
    assert.deepEqual(await readdir(t.dir), [LOCK_FILE], 'the take-over locks and temp files of dead runs are gone');
    await lock.release();
    assert.deepEqual(await readdir(t.dir), []);
  } finally {
    await t.cleanup();
  }
});

test('lock: another host\'s lock, or an unreadable one, is never taken over', async () => {
  const t = await tempDir();
  try {
    const path = join(t.dir, LOCK_FILE);
    await writeFile(path, JSON.stringify({ pid: deadPid(), host: 'elsewhere.example.com', command: 'rm', started: '2026-01-01T00:00:00Z' }));
    await assert.rejects(acquireLock(path, 'gc'), (e) => isRegfsError(e, 'LOCKED') && /on elsewhere\.example\.com.*remove the lock file/.test(e.message));
    await writeFile(path, 'garbage');
    await assert.rejects(acquireLock(path, 'gc'), (e) => isRegfsError(e, 'LOCKED') && /unreadable lock file/.test(e.message));
  } finally {
    await t.cleanup();
  }
});

test("lock: a lock of this host's name but another PID namespace (a container sharing the tree) is never taken over; one of this namespace is", async () => {
  const t = await tempDir();
  try {
    const path = join(t.dir, LOCK_FILE);
    const ns = /\[([0-9]+)\]/.exec(readlinkSync('/proc/self/ns/pid'))![1]!;
    await writeFile(path, JSON.stringify({ pid: deadPid(), host: hostname(), pidns: `1${ns}`, command: 'rm', started: '2026-01-01T00:00:00Z' }));
    await assert.rejects(acquireLock(path, 'gc'), (e) => isRegfsError(e, 'LOCKED') && /remove the lock file/.test(e.message));
    await writeFile(path, JSON.stringify({ pid: deadPid(), host: hostname(), pidns: ns, command: 'rm', started: '2026-01-01T00:00:00Z' }));
    const lock = await acquireLock(path, 'gc');
    assert.equal((JSON.parse(await readFile(path, 'utf8')) as { pidns: string }).pidns, ns, 'the new owner names its PID namespace');
    await lock.release();
  } finally {
    await t.cleanup();
  }
});

test('lock: one whose namespace could not be read, or whose pid is no pid, is never judged by pid; temp files beside it of another host or namespace stay', async () => {
  const t = await tempDir();
  try {
    const path = join(t.dir, LOCK_FILE);
    // A run that could not read /proc writes "?" for its namespace: nobody can tell whether it lives.
    await writeFile(path, JSON.stringify({ pid: deadPid(), host: hostname(), pidns: '?', command: 'rm', started: '2026-01-01T00:00:00Z' }));
    await assert.rejects(acquireLock(path, 'gc'), (e) => isRegfsError(e, 'LOCKED') && /remove the lock file/.test(e.message));
    // A pid that is no process id (kill(0) and kill(-1) always succeed): an unreadable lock, never a live one.
    for (const pid of [0, -1, 1.5]) {
      await writeFile(path, JSON.stringify({ pid, host: hostname(), command: 'rm', started: '2026-01-01T00:00:00Z' }));
      await assert.rejects(acquireLock(path, 'gc'), (e) => isRegfsError(e, 'LOCKED') && /unreadable lock file/.test(e.message), `pid ${pid}`);
    }
    await rm(path);
    // Temp files beside the lock: a dead pid of this host and namespace goes; one tagged for another owner, or for none, stays.
    const dead = deadPid();
    const mine = `${LOCK_FILE}.${dead}-${MY_TAG}.0a1b2c3d4e5f.regfs-tmp`;
    const others = [`${LOCK_FILE}.${dead}-${ownerTag(hostname(), `1${PID_NAMESPACE}`)}.0a1b2c3d4e5f.regfs-tmp`, `${LOCK_FILE}.${dead}-${ownerTag('elsewhere', PID_NAMESPACE)}.0a1b2c3d4e5f.regfs-tmp`, `${LOCK_FILE}.${dead}-u0a1b2c3.0a1b2c3d4e5f.regfs-tmp`];
    for (const n of [mine, ...others]) await writeFile(join(t.dir, n), '{}');
    const lock = await acquireLock(path, 'gc');
    await lock.release();
    assert.deepEqual((await readdir(t.dir)).sort(), others.sort());
  } finally {
    await t.cleanup();
  }
});

test('lock: a run on a locked output stops with LOCKED and writes nothing', async () => {
  const t = await tempDir();
  try {
    const v2 = join(t.dir, 'out', 'docker', 'registry', 'v2');
    await mkdir(v2, { recursive: true });
    const lock = await acquireLock(join(v2, LOCK_FILE), 'extract');
    try {
      const list = join(t.dir, 'images.list');
      await writeFile(list, 'team/app:v1\n');
      const r = await runCli(['extract', list, FIXTURE_ROOT, join(t.dir, 'out')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /is locked by regfs extract .*\[LOCKED\]/);
      assert.deepEqual(await readdir(v2), [LOCK_FILE]);
    } finally {
      await lock.release();
    }
  } finally {
    await t.cleanup();
  }
});

/**
 * A worker that, from the start time on, tries to take the lock until it gets it (a live
 * holder refuses it: LOCKED), records `enter`/`leave` in an append-only log around a short
 * critical section, and exits without releasing, as a killed run would: every lock a worker
 * takes is a stale one that all the others are racing to take over. Every file operation of
 * the lock is delayed by a random few milliseconds, as a loaded machine may delay it: a
 * correct lock holds under any interleaving, and the delays make the unlikely ones common.
 */
const WORKER = `
import { appendFileSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
const fsp = createRequire(import.meta.url)('node:fs/promises');
for (const name of ['readFile', 'writeFile', 'rename', 'link', 'unlink', 'readdir', 'stat', 'open']) {
  const real = fsp[name];
  fsp[name] = async (...args) => {
    await new Promise((r) => setTimeout(r, Math.random() < 0.2 ? Math.random() * 20 : Math.random() * 2));
    return real(...args);
  };
}
syncBuiltinESMExports();
const [lockModule, path, log, startAt] = process.argv.slice(2);
const { acquireLock } = await import(lockModule);
await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
for (;;) {
  try {
    await acquireLock(path, 'race');
    break;
  } catch (err) {
    if (err.code !== 'LOCKED') throw err;
    await new Promise((r) => setTimeout(r, Math.random() * 5));
  }
}
appendFileSync(log, 'enter ' + process.pid + '\\n');
await new Promise((r) => setTimeout(r, 10));
appendFileSync(log, 'leave ' + process.pid + '\\n');
process.exit(0);
`;

test('lock: many runs racing to take over stale locks never both hold it', async () => {
  const t = await tempDir();
  try {
    const worker = join(t.dir, 'worker.mjs');
    await writeFile(worker, WORKER);
    const lockModule = new URL('../dist/fs/lock.js', import.meta.url).href;
    const path = join(t.dir, LOCK_FILE);
    const log = join(t.dir, 'log');
    const runs = 30;
    for (let round = 0; round < 3; round++) {
      await writeFile(path, JSON.stringify({ pid: deadPid(), host: hostname(), command: 'extract', started: '2026-01-01T00:00:00Z' }));
      await writeFile(log, '');
      const startAt = Date.now() + 1500;
      const codes = await Promise.all(
        Array.from(
          { length: runs },
          () =>
            new Promise<number | null>((resolve, reject) => {
              const child = spawn(process.execPath, [worker, lockModule, path, log, String(startAt)], { stdio: ['ignore', 'ignore', 'inherit'] });
              child.on('error', reject);
              child.on('close', resolve);
            }),
        ),
      );
      assert.deepEqual(codes.filter((c) => c !== 0), [], `round ${round}: every worker ended cleanly`);
      const lines = (await readFile(log, 'utf8')).trimEnd().split('\n');
      assert.equal(lines.length, 2 * runs, `round ${round}: every worker got the lock once`);
      let inside: string | undefined;
      for (const line of lines) {
        const [what, pid] = line.split(' ');
        if (what === 'enter') {
          assert.equal(inside, undefined, `round ${round}: ${pid} entered while ${inside} was inside`);
          inside = pid;
        } else {
          assert.equal(pid, inside, `round ${round}: ${pid} left without being inside`);
          inside = undefined;
        }
      }
      // The last worker's lock is left, as a killed run leaves it; nothing else is.
      assert.deepEqual((await readdir(t.dir)).sort(), [LOCK_FILE, 'log', 'worker.mjs'].sort(), `round ${round}: no temp or take-over file left`);
    }
  } finally {
    await t.cleanup();
  }
});
