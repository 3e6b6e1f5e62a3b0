/** The shared writer: repairs, and what happens when a write fails. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, stat, truncate, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writePlan, emptyPlan, repoWrites } from '../src/registry/write.js';
import { extract } from '../src/ops/extract.js';
import { digestOf, type Digest } from '../src/digest.js';
import { parseRepoName } from '../src/reference.js';
import * as layout from '../src/registry/layout.js';
import type { Linker } from '../src/fs/link.js';
import { currentPush, FIXTURE_ROOT } from './helpers/fixture.js';
import { tempDir } from './helpers/tree.js';
import { manifestsOf, type Image } from '../scripts/lib/images.js';
import { isRegfsError } from '../src/errors.js';
import { TRASH_PREFIX } from '../src/registry/layout.js';

test('write: existing blob data of the wrong size (a crash or power loss mid-copy) is replaced on a re-run', async () => {
  const t = await tempDir();
  try {
    const list = join(t.dir, 'l.list');
    await writeFile(list, 'team/app:v1\n');
    const out = join(t.dir, 'out');
    await extract({ list, source: FIXTURE_ROOT, output: out, link: 'copy' });
    const layer = (currentPush('team/app', 'v1').image as Image).layers[1]!;
    const data = layout.blobDataPath(join(out, 'docker/registry/v2'), layer.digest);
    await truncate(data, 0);
    const r = await extract({ list, source: FIXTURE_ROOT, output: out });
    assert.equal(r.stats?.blobsLinked, 1, 'the damaged one is placed again');
    assert.deepEqual(await readFile(data), layer.bytes);
    assert.equal((await stat(data)).ino, (await stat(layout.blobDataPath(join(FIXTURE_ROOT, 'docker/registry/v2'), layer.digest))).ino);
  } finally {
    await t.cleanup();
  }
});

test('write: after the first failure no further work starts, and the error is the first one', async () => {
  const t = await tempDir();
  try {
    const v2 = join(t.dir, 'docker/registry/v2');
    const plan = emptyPlan();
    const src = join(t.dir, 'src');
    await mkdir(src);
    for (let i = 0; i < 200; i++) {
      const data = Buffer.from(`blob ${i}`);
      const d: Digest = digestOf(data);
      await writeFile(join(src, String(i)), data);
      plan.blobs.set(d, { path: join(src, String(i)), size: data.length });
      repoWrites(plan, parseRepoName('a')).layers.add(d);
    }
    let calls = 0;
    let afterFailure = 0;
    let failed = false;
    const linker: Linker = {
      current: 'hardlink',
      place: () => {
        const n = ++calls;
        if (failed) afterFailure++;
        if (n === 3) {
          failed = true;
          throw Object.assign(new Error('ENOSPC: injected'), { code: 'ENOSPC' });
        }
        return 'linked';
      },
    };
    await assert.rejects(writePlan(v2, plan, { linker }), /ENOSPC/);
    assert.equal(afterFailure, 0, `work started after the failure: ${afterFailure}`);
    await assert.rejects(stat(layout.layersDir(v2, parseRepoName('a'))), 'no link was written');
  } finally {
    await t.cleanup();
  }
});

test("write: an index's revision link lands only after every child's, deepest first", async () => {
  const t = await tempDir();
  try {
    const list = join(t.dir, 'l.list');
    await writeFile(list, 'multiarch/tool:nested\n');
    const v2 = join(t.dir, 'out', 'docker/registry/v2');
    const repo = parseRepoName('multiarch/tool');
    const [nested, inner, ...leaves] = manifestsOf(currentPush('multiarch/tool', 'nested').image);
    // A leaf's revision link cannot be written: its directory is a file.
    const blocked = layout.revisionLinkPath(v2, repo, leaves.at(-1)!.digest);
    await mkdir(join(blocked, '..', '..'), { recursive: true });
    await writeFile(join(blocked, '..'), 'in the way');
    await assert.rejects(extract({ list, source: FIXTURE_ROOT, output: join(t.dir, 'out') }), (e) => isRegfsError(e, 'IO_ERROR'));
    for (const m of [nested!, inner!]) await assert.rejects(stat(layout.revisionLinkPath(v2, repo, m.digest)), `${m.digest} must not be visible before its children`);
  } finally {
    await t.cleanup();
  }
});

test('write: a new tag appears whole, by one rename; a staging directory left by a kill is not a tag', async () => {
  const t = await tempDir();
  try {
    const list = join(t.dir, 'l.list');
    await writeFile(list, 'team/app:v1\n');
    const out = join(t.dir, 'out');
    const v2 = join(out, 'docker/registry/v2');
    const repo = parseRepoName('team/app');
    // What a run killed while staging leaves behind.
    const stale = join(layout.repoDir(v2, repo), `${TRASH_PREFIX}stage-1-dead`, 'v1', 'current');
    await mkdir(stale, { recursive: true });
    await extract({ list, source: FIXTURE_ROOT, output: out });
    assert.deepEqual(await readdir(layout.tagsDir(v2, repo)), ['v1']);
    assert.deepEqual((await readdir(layout.tagDir(v2, repo, 'v1' as never))).sort(), ['current', 'index']);
    assert.ok(!(await readdir(layout.repoDir(v2, repo))).some((n) => n.includes('stage') && !n.includes('dead')), 'this run left no staging directory');
  } finally {
    await t.cleanup();
  }
});
