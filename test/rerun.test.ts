/**
 * What a run killed at the wrong moment leaves, planted by hand, and the next run mending
 * it (the states test/crash.test.ts reached with timed SIGKILLs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, rename, rm as rmrf, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock, LOCK_FILE } from '../src/fs/lock.js';
import { toDir } from '../src/ops/to-dir.js';
import { rm } from '../src/ops/rm.js';
import { gc } from '../src/ops/gc.js';
import { verify } from '../src/ops/verify.js';
import { isRegfsError } from '../src/errors.js';
import { parseRepoName } from '../src/reference.js';
import * as layout from '../src/registry/layout.js';
import { FIXTURE_ROOT, currentPush } from './helpers/fixture.js';
import { copyTree, tempDir } from './helpers/tree.js';
import type { Image } from '../scripts/lib/images.js';

const V2 = 'docker/registry/v2';

async function withRoot(fn: (root: string, dir: string) => Promise<void>): Promise<void> {
  const t = await tempDir('regfs-rerun-');
  try {
    const root = join(t.dir, 'root');
    await copyTree(FIXTURE_ROOT, root);
    await fn(root, t.dir);
  } finally {
    await t.cleanup();
  }
}

test('an empty lock file (killed between create and write) is taken over once stale', async () => {
  await withRoot(async (root) => {
    const lock = join(root, V2, LOCK_FILE);
    await writeFile(lock, '');
    await assert.rejects(acquireLock(lock, 'rm'), (e) => isRegfsError(e, 'LOCKED'));
    const old = new Date(Date.now() - 120_000);
    await utimes(lock, old, old);
    await (await acquireLock(lock, 'rm')).release();
  });
});

test('a lock temp file left by a killed run is removed by the next run that takes the lock', async () => {
  await withRoot(async (root) => {
    const v2 = join(root, V2);
    const { spawnSync } = await import('node:child_process');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    await writeFile(join(v2, `${LOCK_FILE}.${dead}.0a1b2c3d4e5f.regfs-tmp`), '{}');
    await writeFile(join(v2, `${LOCK_FILE}.${process.pid}.ffffffffffff.regfs-tmp`), '{}');
    await (await acquireLock(join(v2, LOCK_FILE), 'rm')).release();
    const left = (await readdir(v2)).filter((n) => n.startsWith(LOCK_FILE));
    assert.deepEqual(left, [`${LOCK_FILE}.${process.pid}.ffffffffffff.regfs-tmp`], 'only a live process\'s temp file stays');
  });
});

test('to-dir re-runs over an image directory holding only its temp file', async () => {
  await withRoot(async (_root, dir) => {
    const out = join(dir, 'out');
    await mkdir(join(out, 'team', 'app:v1'), { recursive: true });
    await writeFile(join(out, 'team', 'app:v1', '.version.1-dead-0.regfs-tmp'), 'Direc');
    await writeFile(join(dir, 'l.list'), 'team/app:v1\n');
    const r = await toDir({ list: join(dir, 'l.list'), source: FIXTURE_ROOT, output: out });
    assert.equal(r.images.length, 1);
    assert.ok(!(await readdir(join(out, 'team', 'app:v1'))).some((n) => n.endsWith('.regfs-tmp')));
  });
});

test('rm re-runs finish a repository or a manifest a killed rm had moved into the trash', async () => {
  await withRoot(async (root) => {
    const v2 = join(root, V2);
    const app = parseRepoName('team/app');
    const dir = layout.repoDir(v2, app);
    await mkdir(join(dir, `${layout.TRASH_PREFIX}1-dead`));
    await rename(layout.manifestsDir(v2, app), join(dir, `${layout.TRASH_PREFIX}1-dead`, '0'));
    const r = await rm({ root, ref: 'team/app' });
    assert.equal(r.what, 'repository');
    assert.deepEqual(await readdir(dir), ['worker']);

    const alpine = parseRepoName('team/platform/base/alpine');
    const old = currentPush('team/platform/base/alpine', '3.19').image as Image;
    const adir = layout.repoDir(v2, alpine);
    await rmrf(layout.tagDir(v2, alpine, '3.19' as never), { recursive: true });
    await mkdir(join(adir, `${layout.TRASH_PREFIX}2-dead`));
    await rename(join(layout.revisionLinkPath(v2, alpine, old.digest), '..'), join(adir, `${layout.TRASH_PREFIX}2-dead`, '0'));
    await rm({ root, ref: `team/platform/base/alpine@${old.digest}` });
    assert.ok(!(await readdir(adir)).some((n) => n.startsWith(layout.TRASH_PREFIX)));
    await assert.rejects(rm({ root, ref: `team/platform/base/alpine@${old.digest}` }), (e) => isRegfsError(e, 'MANIFEST_UNKNOWN'));
  });
});

test('a blob directory holding only a temp file, and an empty link directory: gc removes both in one pass', async () => {
  await withRoot(async (root) => {
    const v2 = join(root, V2);
    const loose = join(v2, 'blobs', 'sha256', 'ab', 'ab'.repeat(32));
    await mkdir(loose, { recursive: true });
    await writeFile(join(loose, '.data.1-dead-0.regfs-tmp'), 'partial');
    const emptyLink = join(layout.layersDir(v2, parseRepoName('team/app')), 'sha256', 'cd'.repeat(32));
    await mkdir(emptyLink, { recursive: true });
    const found = (await verify({ root })).findings;
    assert.deepEqual(found.map((f) => `${f.code} ${f.path}`), [`TEMP_FILE ${loose}`], 'the registry leaves empty link directories too: not a problem');
    const r = await gc({ root, apply: true });
    assert.deepEqual(r.temps.sort(), [emptyLink, loose].sort());
    assert.deepEqual((await verify({ root })).findings, []);
    assert.deepEqual((await gc({ root })).temps, []);
  });
});
