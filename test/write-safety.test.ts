/**
 * Writes stay inside the output and never touch what regfs did not write: no symbolic link
 * in the output is followed for writing, an output that cannot be made fails at once, to-dir
 * removes only image directories its own record names, from-dir refuses ambiguous input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromDir } from '../src/ops/from-dir.js';
import { toDir } from '../src/ops/to-dir.js';
import { isRegfsError } from '../src/errors.js';
import { MANIFEST_MAX_BYTES } from '../src/registry/read.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { tempDir } from './helpers/tree.js';

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const t = await tempDir('regfs-safety-');
  try {
    await fn(t.dir);
  } finally {
    await t.cleanup();
  }
}

async function listFile(dir: string, lines: string[]): Promise<string> {
  const p = join(dir, `l${Math.random().toString(36).slice(2)}.list`);
  await writeFile(p, `${lines.join('\n')}\n`);
  return p;
}

test('from-dir: two directories naming one repo:tag with different manifests are an error naming both; nothing is written', async () => {
  await withTemp(async (dir) => {
    const exp = join(dir, 'exp');
    await toDir({ list: await listFile(dir, ['team/app:v1', 'library/busybox:1.36']), source: FIXTURE_ROOT, output: exp });
    // The portable spelling of library/busybox:1.36, holding another image.
    await cp(join(exp, 'team/app:v1'), join(exp, 'library/busybox%3A1.36'), { recursive: true });
    const dest = join(dir, 'dest');
    await assert.rejects(fromDir({ input: exp, output: dest }), (e) => {
      assert.ok(isRegfsError(e, 'INCOMPLETE'));
      assert.equal(e.problems.length, 1);
      assert.equal(e.problems[0]!.code, 'TAG_CONFLICT');
      assert.match(e.problems[0]!.message, /library\/busybox:1\.36 and library\/busybox%3A1\.36|library\/busybox%3A1\.36 and library\/busybox:1\.36/);
      return true;
    });
    await assert.rejects(stat(dest), 'nothing written');
    // --keep-going writes neither of the two, and the rest.
    const kept = await fromDir({ input: exp, output: dest, keepGoing: true });
    assert.deepEqual(kept.images.map((i) => i.ref), ['team/app:v1']);
    assert.deepEqual(kept.problems.map((p) => p.code), ['TAG_CONFLICT']);
    // The same manifest under both spellings is no conflict.
    await rm(join(exp, 'library/busybox%3A1.36'), { recursive: true });
    await cp(join(exp, 'library/busybox:1.36'), join(exp, 'library/busybox%3A1.36'), { recursive: true });
    const same = await fromDir({ input: exp, output: join(dir, 'dest2') });
    assert.equal(same.images.length, 3);
  });
});

test('from-dir: a manifest.json larger than the registry accepts is refused before it is read', async () => {
  await withTemp(async (dir) => {
    const exp = join(dir, 'exp');
    await toDir({ list: await listFile(dir, ['team/app:v1']), source: FIXTURE_ROOT, output: exp });
    // Sparse, and far larger than this process could read into memory.
    const manifest = join(exp, 'team/app:v1', 'manifest.json');
    const f = await open(manifest, 'r+');
    await f.truncate(64 * 2 ** 30);
    await f.close();
    await assert.rejects(fromDir({ input: exp, output: join(dir, 'dest') }), (e) => {
      assert.ok(isRegfsError(e, 'INCOMPLETE'));
      assert.equal(e.problems[0]!.code, 'MANIFEST_INVALID');
      assert.match(e.problems[0]!.message, new RegExp(`larger than the registry's ${MANIFEST_MAX_BYTES}-byte limit`));
      return true;
    });
    assert.ok((await readFile(join(exp, 'team/app:v1', 'version'), 'utf8')).length > 0);
  });
});
