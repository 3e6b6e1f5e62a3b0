/**
 * The benchmark's store generator writes what the real registry serves: a small store of the
 * same shape (nested names, shared base layers, indexes, two tags on one manifest) is served
 * by docker-registry with every digest, copied in full by skopeo, verifies clean, and the
 * registry's own gc finds nothing to delete. And `npm run bench -- --smoke` runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { pythonInterpreter } from '../scripts/bench/python.js';
import { writeStore, type StoreShape } from '../scripts/bench/store.js';
import { verify } from '../src/ops/verify.js';
import { RegistryReader } from '../src/registry/read.js';
import { parseImageRef } from '../src/reference.js';
import { assertServed, type Served } from './helpers/judge.js';
import { REGFS_BIN } from './helpers/cli.js';
import { tempDir } from './helpers/tree.js';

test('bench store: served exactly by docker-registry, clean to verify', async () => {
  const t = await tempDir('regfs-bench-');
  try {
    const root = join(t.dir, 'store');
    const shape: StoreShape = { repositories: 41, tagsPerRepo: 5, baseLayers: 5, indexEvery: 20 };
    const refs = await writeStore(root, shape);
    assert.equal(refs.length, 41 * 5 + 3, 'five tags a repository, and three indexes');
    assert.deepEqual((await verify({ root })).findings, []);
    const reader = await RegistryReader.open(root);
    // Every index, and a spread of the rest.
    const sample = refs.filter((r, i) => r.endsWith(':multi') || i % 17 === 0);
    const served: Served[] = await Promise.all(
      sample.map(async (name) => {
        const ref = parseImageRef(name);
        return { name, digest: (await reader.tagDigest(ref.repo, ref.tag!))! };
      }),
    );
    assert.ok(served.length >= 15);
    await assertServed(root, served, ['team0/svc0/app0:nosuch'], join(t.dir, 'copies'));
  } finally {
    await t.cleanup();
  }
});

test('npm run bench -- --smoke runs end to end and writes its result', async () => {
  const t = await tempDir('regfs-bench-');
  try {
    const { spawnSync } = await import('node:child_process');
    const out = join(t.dir, 'result.json');
    // The bench runs the CLI as built; it must not build it again under other test files' runs.
    const built = statSync(REGFS_BIN);
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/bench/run.ts', '--smoke', '--dir', join(t.dir, 'b'), '--out', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const after = statSync(REGFS_BIN);
    assert.deepEqual([after.ino, after.mtimeMs], [built.ino, built.mtimeMs], 'dist/cli/main.js is left as the build made it');
    assert.match(r.stdout, /\| extract 200 tags +\|/);
    const result = JSON.parse(readFileSync(out, 'utf8')) as { results: Array<{ name: string; seconds: number }> };
    assert.ok(result.results.length >= 10);
    for (const m of result.results) assert.ok(m.seconds > 0, m.name);
    const names = result.results.map((m) => m.name);
    // The search for referrers beside the same output listed; the small extract beside a plain script in Python and in Node (each output checked equal to regfs's).
    assert.ok(names.some((n) => /signed images and their signatures, listed$/.test(n)), names.join(', '));
    assert.ok(names.some((n) => /on tmpfs against a plain script/.test(n)), names.join(', '));
    assert.ok(names.some((n) => /on tmpfs against a plain Node script/.test(n)), names.join(', '));
  } finally {
    await t.cleanup();
  }
});

test('npm run bench -- --only-s3 --smoke runs end to end: the S3 rows, with their request counts', async () => {
  const t = await tempDir('regfs-bench-');
  try {
    const { spawnSync } = await import('node:child_process');
    const out = join(t.dir, 'result.json');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/bench/run.ts', '--only-s3', '--smoke', '--dir', join(t.dir, 'b'), '--out', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const result = JSON.parse(readFileSync(out, 'utf8')) as { results: Array<{ name: string; seconds: number; floor?: number; note?: string }> };
    const names = result.results.map((m) => m.name);
    for (const row of ['disk to S3', 'S3 to S3', 'ls (whole store', 'verify (whole store) on S3']) assert.ok(names.some((n) => n.includes(row)), `${row}: ${names.join(', ')}`);
    for (const m of result.results) {
      assert.ok(m.seconds > 0, m.name);
      assert.match(m.note ?? '', /\d+ requests, [\d.]+ per (image|tag) \(/, m.name);
    }
    const copy = result.results.find((m) => m.name.includes('S3 to S3'))!;
    assert.ok(copy.floor !== undefined && copy.floor > 0, 'skopeo sync measured beside it');
  } finally {
    await t.cleanup();
  }
});

test('the plain script runs on the Python interpreter itself, not on a shim first on PATH', async () => {
  const t = await tempDir('regfs-bench-');
  try {
    const real = pythonInterpreter();
    assert.ok(real !== undefined, 'python3 is on the machine (the bench compares regfs with a Python script)');
    // A version manager's shim: a shell script named python3, first on PATH, that starts the
    // interpreter after work of its own (pyenv's takes hundreds of milliseconds).
    const shim = join(t.dir, 'python3');
    writeFileSync(shim, `#!/bin/sh\nsleep 0.2\nexec ${real} "$@"\n`);
    chmodSync(shim, 0o755);
    const found = pythonInterpreter({ ...process.env, PATH: `${t.dir}${delimiter}${process.env.PATH ?? ''}` });
    assert.equal(found, real);
    assert.notEqual(readFileSync(found!).subarray(0, 2).toString('latin1'), '#!', `${found} is a program, not a script`);
  } finally {
    await t.cleanup();
  }
});
