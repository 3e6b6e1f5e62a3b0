import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { acquireLock, LOCK_FILE } from '../src/fs/lock.js';
import { isRegfsError } from '../src/errors.js';
import { runCli } from './helpers/cli.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { tempDir } from './helpers/tree.js';

const deadPid = (): number => spawnSync(process.execPath, ['-e', '0']).pid!;

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
