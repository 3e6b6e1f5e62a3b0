/**
 * gc and rm, with the real registry as judge: after regfs deletes, docker-registry 2.8 serves
 * every remaining tag (index children included) and its own garbage collector finds nothing
 * more; on a store without indexes, regfs and the registry's gc mark the same blobs; and the
 * 2.8 index bug (garbage-collect -m deletes the layers of a tagged index's children) is
 * shown, and shown not to happen in regfs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm as rmrf, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gc } from '../src/ops/gc.js';
import { rm } from '../src/ops/rm.js';
import { verify } from '../src/ops/verify.js';
import { isRegfsError } from '../src/errors.js';
import { digestOf } from '../src/digest.js';
import { parseRepoName } from '../src/reference.js';
import * as layout from '../src/registry/layout.js';
import { acquireLock, LOCK_FILE } from '../src/fs/lock.js';
import { registryGarbageCollectDryRun } from '../scripts/lib/registry-server.js';
import { writeStorage } from '../scripts/lib/write-storage.js';
import { FIXTURE_PUSHES } from '../scripts/lib/fixture-spec.js';
import { blobsOf, makeImage, makeLayer, manifestsOf, type Image } from '../scripts/lib/images.js';
import { FIXTURE_ROOT, currentPush, readFixtureManifest } from './helpers/fixture.js';
import { copyTree, snapshotTree, tempDir } from './helpers/tree.js';
import { assertServed, type Served } from './helpers/judge.js';

const V2 = 'docker/registry/v2';

async function withRoot(fn: (root: string, scratch: string) => Promise<void>): Promise<void> {
  const t = await tempDir('regfs-gc-');
  try {
    const root = join(t.dir, 'root');
    await copyTree(FIXTURE_ROOT, root);
    await fn(root, join(t.dir, 'scratch'));
  } finally {
    await t.cleanup();
  }
}

async function emptyDirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  if (entries.length === 0) return [dir];
  const out: string[] = [];
  for (const e of entries) if (e.isDirectory()) out.push(...(await emptyDirs(join(dir, e.name))));
  return out;
}

async function servedTags(): Promise<Served[]> {
  return (await readFixtureManifest()).refs.filter((r) => !r.overwritten).map((r) => ({ name: r.ref, digest: r.digest }));
}

test('gc: 2.8 garbage-collect -m deletes the layers of tagged indexes\' children; regfs gc --delete-untagged does not, and the registry serves everything after', async () => {
  await withRoot(async (root, scratch) => {
    const tool = currentPush('multiarch/tool', '1.0').image;
    const childBlobs = manifestsOf(tool).slice(1).flatMap((m) => [m.digest, ...(m.kind === 'image' ? [m.config.digest, ...m.layers.map((l) => l.digest)] : [])]);
    const theirs = await registryGarbageCollectDryRun(root, { deleteUntagged: true });
    assert.ok(childBlobs.some((d) => theirs.blobsEligible.includes(d)), 'docker-registry 2.8 -m marks children of a tagged index for deletion (distribution#3178)');

    const [oldEdge] = FIXTURE_PUSHES.filter((p) => p.repo === 'team/app' && p.tag === 'edge').map((p) => p.image as Image);
    const plan = await gc({ root, deleteUntagged: true });
    assert.equal(plan.applied, false);
    for (const d of childBlobs) assert.ok(!plan.blobs.some((b) => b.digest === d), `regfs keeps ${d}`);
    assert.deepEqual(plan.manifests.map((m) => `${m.repo}@${m.digest}`), [`team/app@${oldEdge!.digest}`]);
    const unique = [oldEdge!.digest, oldEdge!.config.digest, oldEdge!.layers[1]!.digest].sort();
    assert.deepEqual(plan.blobs.map((b) => b.digest).sort(), unique);

    // Leftovers of interrupted writes go too.
    const leftovers = [join(layout.blobDir(join(root, V2), oldEdge!.config.digest), '.data.1.x.regfs-tmp'), join(layout.repoDir(join(root, V2), parseRepoName('team/app')), `${layout.TRASH_PREFIX}1-x`)];
    await writeFile(leftovers[0]!, 'partial');
    await mkdir(leftovers[1]!);
    assert.deepEqual((await gc({ root, deleteUntagged: true })).temps.sort(), [...leftovers].sort());
    const done = await gc({ root, deleteUntagged: true, apply: true });
    assert.equal(done.applied, true);
    assert.deepEqual((await verify({ root })).findings, []);
    assert.deepEqual(await emptyDirs(join(root, V2)), [], 'no empty directories left');
    await assertServed(root, await servedTags(), [`team/app@${oldEdge!.digest}`], scratch);
    assert.deepEqual((await gc({ root, deleteUntagged: true })).blobs, [], 'a second run finds nothing');
  });
});

test('gc: on a store without indexes, regfs and docker-registry garbage-collect mark the same blobs, with and without -m', async () => {
  const t = await tempDir('regfs-gc-');
  try {
    const root = join(t.dir, 'root');
    const pushes = FIXTURE_PUSHES.filter((p) => p.schema1 !== true && p.image.kind === 'image');
    const orphan = makeImage({ format: 'docker', layers: [makeLayer('orphan-layer')] });
    const byDigestOnly = makeImage({ format: 'oci', layers: [makeLayer('pushed-by-digest')] });
    await writeStorage(root, [...pushes, { repo: 'team/app', image: byDigestOnly }, { repo: 'scratch/gone', tag: 'x', image: orphan }]);
    // An orphan blob with no link at all, and a repository whose tag and revision were deleted.
    const loose = Buffer.from('loose blob');
    await mkdir(layout.blobDir(join(root, V2), digestOf(loose)), { recursive: true });
    await writeFile(layout.blobDataPath(join(root, V2), digestOf(loose)), loose);
    await rmrf(layout.manifestsDir(join(root, V2), parseRepoName('scratch/gone')), { recursive: true });
    for (const deleteUntagged of [false, true]) {
      const theirs = await registryGarbageCollectDryRun(root, { deleteUntagged });
      const ours = await gc({ root, deleteUntagged });
      assert.deepEqual(ours.blobs.map((b) => b.digest).sort(), [...theirs.blobsEligible].sort(), `deleteUntagged=${deleteUntagged}\n${theirs.output}`);
      assert.ok(ours.blobs.length >= (deleteUntagged ? 6 : 4));
    }
  } finally {
    await t.cleanup();
  }
});

test('gc: a manifest that cannot be read makes --apply refuse, and nothing is deleted', async () => {
  await withRoot(async (root) => {
    const v1 = currentPush('team/app', 'v1').image as Image;
    const data = layout.blobDataPath(join(root, V2), v1.digest);
    const bytes = await readFile(data);
    await unlink(data);
    await writeFile(data, Buffer.concat([bytes, Buffer.from(' ')]));
    const before = await snapshotTree(root);
    const dry = await gc({ root });
    assert.equal(dry.problems[0]?.code, 'DIGEST_MISMATCH');
    await assert.rejects(gc({ root, apply: true }), (e) => isRegfsError(e, 'UNSAFE') && e.problems.length === 1);
    // Nothing deleted; only the storage root's mtime moved, as the lock came and went.
    const after = await snapshotTree(root);
    for (const snap of [before, after]) snap.delete(V2);
    assert.deepEqual(after, before);
  });
});

test('rm: a tag, a manifest with its tags, a whole repository (the nested one stays); then gc; the registry agrees', async () => {
  await withRoot(async (root, scratch) => {
    const v2 = join(root, V2);
    const app = parseRepoName('team/app');
    const tool = currentPush('multiarch/tool', '1.0').image;
    const child = manifestsOf(tool)[1]!;

    await assert.rejects(rm({ root, ref: 'team/app:nosuch' }), (e) => isRegfsError(e, 'TAG_UNKNOWN'));
    await assert.rejects(rm({ root, ref: 'no/such' }), (e) => isRegfsError(e, 'NAME_UNKNOWN'));
    await assert.rejects(rm({ root, ref: `team/app@sha256:${'0'.repeat(64)}` }), (e) => isRegfsError(e, 'MANIFEST_UNKNOWN'));
    await assert.rejects(rm({ root, ref: `multiarch/tool@${child.digest}` }), (e) => isRegfsError(e, 'UNSAFE') && e.message.includes(tool.digest));
    const before = await snapshotTree(root);
    assert.deepEqual((await rm({ root, ref: 'team/app', dryRun: true })).removed.length, 3);
    assert.deepEqual(await snapshotTree(root), before, 'a dry run removes nothing');

    const busybox = currentPush('library/busybox', '1.36').image;
    const r1 = await rm({ root, ref: `library/busybox@${busybox.digest}` });
    assert.deepEqual(r1.tags, ['library/busybox:1.36', 'library/busybox:latest']);
    await rm({ root, ref: 'multiarch/tool:1.0-oci' });
    await rm({ root, ref: 'team/app' });
    assert.deepEqual(await readdir(layout.repoDir(v2, app)), ['worker'], 'only the nested repository is left');
    const lock = await acquireLock(join(v2, LOCK_FILE), 'extract');
    await assert.rejects(rm({ root, ref: 'legacy/app:1.0' }), (e) => isRegfsError(e, 'LOCKED'));
    await lock.release();

    await gc({ root, apply: true });
    assert.deepEqual((await verify({ root })).findings, []);
    const gone = new Set(['library/busybox:1.36', 'library/busybox:latest', 'multiarch/tool:1.0-oci']);
    const left = (await servedTags()).filter((s) => !gone.has(s.name) && !s.name.startsWith('team/app:'));
    assert.ok(left.some((s) => s.name.startsWith('team/app/worker:')));
    await assertServed(root, left, [...gone, 'team/app:v1', `library/busybox@${busybox.digest}`], scratch);
    // The index's OCI sibling is gone, but its children stay: the nested index still names them.
    assert.ok(blobsOf(currentPush('multiarch/tool', '1.0-oci').image).length > 0);
  });
});
