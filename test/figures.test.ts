/** Figures agree: between commands (ls, inspect, extract, to-dir) and between a dry run and the real run. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { tempDir, writeListFile } from './helpers/tree.js';

interface Listed {
  ref: string;
  platforms: string[];
  artifactType?: string;
  size: number;
}

/** Every readable tag of the fixture, as ls --json gives it. */
async function lsTags(): Promise<Listed[]> {
  const r = await runCli(['ls', FIXTURE_ROOT, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { repositories: Array<{ name: string; tags: Array<{ tag: string; platforms: string[]; artifactType?: string; size: number; error?: unknown }> }> };
  return j.repositories.flatMap((repo) =>
    repo.tags.filter((t) => t.error === undefined).map((t) => ({ ref: `${repo.name}:${t.tag}`, platforms: t.platforms, artifactType: t.artifactType, size: t.size })),
  );
}

async function json<T>(args: string[]): Promise<T> {
  const r = await runCli([...args, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

interface Summary {
  ref: string;
  platforms: string[];
  artifactType?: string;
  bytes: number;
}

test('figures: extract and to-dir give every image the platforms, artifact type and size ls gives it', async () => {
  const t = await tempDir();
  try {
    const listed = await lsTags();
    assert.ok(listed.length > 10);
    const list = await writeListFile(t.dir, listed.map((l) => l.ref));
    assert.ok(listed.some((l) => l.artifactType !== undefined), 'an artifact among them');
    const want = listed.map((l) => ({ ref: l.ref, platforms: l.platforms, artifactType: l.artifactType, bytes: l.size }));
    const pick = (images: Summary[]): Summary[] => images.map((i) => ({ ref: i.ref, platforms: i.platforms, artifactType: i.artifactType, bytes: i.bytes }));
    const dry = await json<{ images: Summary[] }>(['extract', list, FIXTURE_ROOT, join(t.dir, 'out'), '--dry-run']);
    assert.deepEqual(pick(dry.images), want);
    const real = await json<{ images: Summary[] }>(['extract', list, FIXTURE_ROOT, join(t.dir, 'out')]);
    assert.deepEqual(pick(real.images), want);
    const exported = await json<{ images: Summary[] }>(['to-dir', list, FIXTURE_ROOT, join(t.dir, 'export'), '--dry-run']);
    assert.deepEqual(pick(exported.images), want);
    // And inspect's total size of one image.
    for (const l of listed.filter((x) => x.ref === 'multiarch/tool:nested' || x.ref === 'team/app:v1')) {
      const i = await json<{ totalSize: number; platforms: string[] }>(['inspect', FIXTURE_ROOT, l.ref]);
      assert.equal(i.totalSize, l.size, l.ref);
      assert.deepEqual(i.platforms, l.platforms, l.ref);
    }
  } finally {
    await t.cleanup();
  }
});

test('figures: to-dir --platform gives the platform of the image it exports', async () => {
  const t = await tempDir();
  try {
    const r = await json<{ images: Summary[] }>(['to-dir', '--image', 'multiarch/tool:1.0', FIXTURE_ROOT, join(t.dir, 'one'), '--platform', 'linux/arm64', '--dry-run']);
    assert.deepEqual(r.images[0]!.platforms, ['linux/arm64']);
  } finally {
    await t.cleanup();
  }
});

interface ToDirJson {
  images: Array<Summary & { dir: string }>;
  stats?: { bytes: number };
}

test('figures: to-dir reports the same bytes in a dry run, the real run and a re-run', async () => {
  const t = await tempDir();
  try {
    const list = await writeListFile(t.dir, ['team/app:v1', 'team/app:v2', 'multiarch/tool:1.0', 'library/busybox:1.36']);
    const out = join(t.dir, 'export');
    const dry = await json<ToDirJson>(['to-dir', list, FIXTURE_ROOT, out, '--dry-run']);
    const planned = dry.images.reduce((a, i) => a + i.bytes, 0);
    const real = await json<ToDirJson>(['to-dir', list, FIXTURE_ROOT, out]);
    assert.deepEqual(real.images, dry.images);
    assert.equal(real.stats!.bytes, planned, 'the real run writes what the dry run planned');
    // What the export holds: the files of every image directory.
    let held = 0;
    for (const i of real.images) for (const f of readdirSync(join(out, i.dir))) if (f !== 'version') held += statSync(join(out, i.dir, f)).size;
    assert.equal(held, planned);
    const again = await json<ToDirJson>(['to-dir', list, FIXTURE_ROOT, out]);
    assert.equal(again.stats!.bytes, planned, 'a re-run counts what is already there');
    const dryText = await runCli(['to-dir', list, FIXTURE_ROOT, out, '--dry-run']);
    const realText = await runCli(['to-dir', list, FIXTURE_ROOT, out]);
    const kib = (s: string, re: RegExp): string => re.exec(s)?.[1] ?? `no match in ${s}`;
    assert.equal(kib(realText.stdout, /; ([\d.]+ KiB) \(/), kib(dryText.stdout, /image directories, ([\d.]+ KiB),/));
  } finally {
    await t.cleanup();
  }
});

interface WriteJson {
  images: Summary[];
  plan: { blobs: number; links: number; bytes: number; blobsAlreadyThere: number };
  stats?: { blobsLinked: number; blobsCloned: number; blobsCopied: number; blobsWritten: number; blobsExisting: number; bytes: number; bytesCopied: number };
}

test('figures: from-dir counts manifests as written, not as copied blobs, and its counts are the files it wrote', async () => {
  const t = await tempDir();
  try {
    const list = await writeListFile(t.dir, ['team/app:v1', 'multiarch/tool:1.0']);
    const exp = join(t.dir, 'export');
    await json<ToDirJson>(['to-dir', list, FIXTURE_ROOT, exp, '--link', 'hardlink']);
    const dest = join(t.dir, 'dest');
    const r = await json<WriteJson>(['from-dir', exp, dest, '--link', 'hardlink']);
    const s = r.stats!;
    // Blob data in the output: hard links share the export's inode; written files have their own.
    const v2 = join(dest, 'docker/registry/v2/blobs/sha256');
    let linked = 0;
    let own = 0;
    for (const fan of readdirSync(v2)) for (const d of readdirSync(join(v2, fan))) (statSync(join(v2, fan, d, 'data')).nlink > 1 ? linked++ : own++);
    assert.equal(s.blobsLinked, linked);
    assert.equal(s.blobsCopied, 0, 'nothing copied with --link hardlink');
    const manifests = r.images.reduce((a, i) => a + (i as Summary & { manifests: number }).manifests, 0);
    assert.equal(s.blobsWritten, own);
    assert.equal(s.blobsWritten, manifests, 'every manifest written from its bytes');
    const text = await runCli(['from-dir', exp, join(t.dir, 'dest2'), '--link', 'hardlink']);
    assert.match(text.stdout, new RegExp(`blobs ${linked} linked, 0 copied, 0 already there, ${manifests} manifests written;`));
    assert.doesNotMatch(text.stdout, /^verified .*; imported/, 'the summary is a line of its own');
  } finally {
    await t.cleanup();
  }
});

test('figures: extract and from-dir dry runs count what the real run finds already there', async () => {
  const t = await tempDir();
  try {
    const list = await writeListFile(t.dir, ['team/app:v1', 'multiarch/tool:1.0']);
    const out = join(t.dir, 'out');
    const exp = join(t.dir, 'export');
    await json<ToDirJson>(['to-dir', list, FIXTURE_ROOT, exp]);
    // Half there: one image first.
    const half = await writeListFile(join(t.dir), ['team/app:v1']);
    await json<WriteJson>(['extract', half, FIXTURE_ROOT, out]);
    const dry = await json<WriteJson>(['extract', list, FIXTURE_ROOT, out, '--dry-run']);
    const real = await json<WriteJson>(['extract', list, FIXTURE_ROOT, out]);
    assert.ok(dry.plan.blobsAlreadyThere > 0);
    assert.deepEqual(real.plan, dry.plan);
    assert.deepEqual(real.images, dry.images);

    const dest = join(t.dir, 'dest');
    await json<WriteJson>(['from-dir', join(exp, 'team/app:v1'), dest, '--name', 'team/app:v1']);
    const fdry = await json<WriteJson>(['from-dir', exp, dest, '--dry-run']);
    const freal = await json<WriteJson>(['from-dir', exp, dest]);
    assert.ok(fdry.plan.blobsAlreadyThere > 0);
    assert.deepEqual(freal.plan, fdry.plan);
    assert.equal(freal.stats!.blobsExisting, fdry.plan.blobsAlreadyThere);
    assert.deepEqual(freal.images, fdry.images);
  } finally {
    await t.cleanup();
  }
});
