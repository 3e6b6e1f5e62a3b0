/**
 * Imports into registry storage on S3 (issue: registries on object storage): from-dir,
 * from-oci (a layout directory, a tar of one) and apply (a full bundle, a delta bundle) with
 * `s3://BUCKET/PREFIX` as DEST. Each output is judged by docker-registry 2.8.2 on its `s3`
 * driver: it serves every imported image by digest, skopeo copies each in full, and nothing
 * else. Nothing reaches S3 before the input checks out, and the local staging directory of a
 * tar's blobs is gone after every run.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { hostname } from 'node:os';
import { mkdir, readdir, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startRegistry } from '../scripts/lib/registry-server.js';
import { skopeoCopy, withRetry } from '../scripts/lib/skopeo.js';
import { blobsOf, makeImage, makeLayer, manifestsOf } from '../scripts/lib/images.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { deadPid, MY_TAG, ownerTag, PID_NAMESPACE } from './helpers/owner.js';
import { assertServed } from './helpers/judge.js';
import { ok, startS3World, type S3World } from './helpers/s3.js';

const LISTED = ['team/platform/base/alpine:3.20', 'team/app:v1', 'multiarch/tool:1.0', 'multiarch/tool:1.0-oci', 'library/busybox:1.36'];
const UNLISTED = ['team/app:v2', 'team/platform/base/alpine:3.19', 'tools/nomediatype:1.0'];
/**
 * Two releases: the second shares blobs with the first (team/app:v2 with v1; team/app:v1
 * itself, its manifest too), so its delta bundle leaves them out.
 */
const RELEASE1 = ['team/app:v1', 'team/platform/base/alpine:3.20'];
const RELEASE2 = ['team/app:v2', 'multiarch/tool:1.0', 'team/app:v1'];

interface Stats {
  blobsCopied: number;
  blobsWritten: number;
  blobsExisting: number;
  linksWritten: number;
  linksUnchanged: number;
}

let w: S3World;
let scratch: string;
/** The --staging directory every run below is given: empty after each. */
let staging: string;

const json = <T>(stdout: string): T => JSON.parse(stdout) as T;
const errorCode = (stdout: string): string => json<{ error: { code: string } }>(stdout).error.code;
const list = async (name: string, refs: string[]): Promise<string> => {
  const path = join(scratch, name);
  await writeFile(path, `${refs.join('\n')}\n`);
  return path;
};
const assertStagingGone = async (): Promise<void> => assert.deepEqual(await readdir(staging), [], 'the staging directory is removed');
/** A re-run wrote nothing: every blob and link was there. */
const assertNothingNew = (s: Stats, what: string): void => {
  assert.equal(s.blobsCopied + s.blobsWritten, 0, `${what}: no blob written again`);
  assert.equal(s.linksWritten, 0, `${what}: no link written again`);
  assert.ok(s.blobsExisting > 0 && s.linksUnchanged > 0, `${what}: everything found there`);
};

describe('imports into registry storage on S3', { timeout: 900_000 }, () => {
  before(async () => {
    w = await startS3World(['src', 'dst']);
    scratch = w.scratch;
    staging = join(scratch, 'staging');
    await mkdir(staging);
  });

  after(async () => {
    await w?.stop();
  });

  test('from-dir: dir: images of skopeo and of to-dir into S3, served as the source serves them; a re-run writes nothing', async () => {
    // One image by skopeo itself (an index and its children), a tree by to-dir.
    const one = join(scratch, 'skopeo-dir');
    const reg = await startRegistry({ root: FIXTURE_ROOT, readOnly: true });
    try {
      await withRetry(() => skopeoCopy(`docker://${reg.host}/multiarch/tool:1.0`, `dir:${one}`, { all: true }));
    } finally {
      await reg.stop();
    }
    ok(await w.regfs(['from-dir', one, 's3://dst/from-dir', '--name', 'multiarch/tool:1.0']));
    const tree = join(scratch, 'dirs');
    ok(await w.regfs(['to-dir', await list('listed.list', LISTED), FIXTURE_ROOT, tree]));
    const first = json<{ stats: Stats }>(ok(await w.regfs(['from-dir', tree, 's3://dst/from-dir', '--json'])).stdout).stats;
    assert.ok(first.blobsCopied > 0, 'blob files streamed up');
    await w.assertServedOnS3('dst', 'from-dir', w.served(LISTED), UNLISTED);
    const keys = await w.keysOf('dst', 'from-dir');
    assertNothingNew(json<{ stats: Stats }>(ok(await w.regfs(['from-dir', tree, 's3://dst/from-dir', '--json'])).stdout).stats, 'from-dir again');
    assert.deepEqual(await w.keysOf('dst', 'from-dir'), keys);
    // A dry run counts what S3 holds.
    const dry = json<{ plan: { blobs: number; blobsAlreadyThere: number } }>(ok(await w.regfs(['from-dir', tree, 's3://dst/from-dir', '--dry-run', '--json'])).stdout).plan;
    assert.equal(dry.blobsAlreadyThere, dry.blobs);
  });

  test('from-oci: a layout directory and a tar of one into S3; a re-run of the tar stages and writes nothing new', async () => {
    const layout = join(scratch, 'layout');
    ok(await w.regfs(['to-oci', await list('listed.list', LISTED), FIXTURE_ROOT, layout]));
    ok(await w.regfs(['from-oci', layout, 's3://dst/from-layout']));
    await w.assertServedOnS3('dst', 'from-layout', w.served(LISTED), UNLISTED);

    const tar = join(scratch, 'layout.tar');
    execFileSync('tar', ['-C', layout, '-cf', tar, '.']);
    const first = json<{ stats: Stats }>(ok(await w.regfs(['from-oci', tar, 's3://dst/from-tar', '--staging', staging, '--json'])).stdout).stats;
    assert.ok(first.blobsCopied > 0, 'staged blobs streamed up');
    await assertStagingGone();
    await w.assertServedOnS3('dst', 'from-tar', w.served(LISTED), UNLISTED);
    const keys = await w.keysOf('dst', 'from-tar');
    const again = json<{ stats: Stats }>(ok(await w.regfs(['from-oci', tar, 's3://dst/from-tar', '--staging', staging, '--json'])).stdout).stats;
    assertNothingNew(again, 'from-oci of the tar again');
    await assertStagingGone();
    assert.deepEqual(await w.keysOf('dst', 'from-tar'), keys);
    // Without --staging, in the system's temp directory (TMPDIR).
    ok(await w.regfs(['from-oci', tar, 's3://dst/from-tmpdir'], { env: { TMPDIR: staging } }));
    await assertStagingGone();

    // A relative --staging is taken from the working directory.
    ok(await w.regfs(['from-oci', tar, 's3://dst/from-relative', '--staging', relative(process.cwd(), staging)]));
    await assertStagingGone();

    // The staging directories killed runs of this host and PID namespace left are removed
    // (they may hold a whole tar's blobs); a live run's, another host's or PID namespace's
    // (containers sharing a temp directory), and anything else stay.
    const dead = deadPid();
    const killed = [`regfs-from-oci-${dead}-${MY_TAG}-AbC123`, `regfs-apply-${dead}-${MY_TAG}-xyz789`];
    const kept = [
      `regfs-apply-${process.pid}-${MY_TAG}-live01`,
      `regfs-apply-${dead}-${ownerTag('other.host', PID_NAMESPACE)}-ab12cd`,
      `regfs-apply-${dead}-${ownerTag(hostname(), `1${PID_NAMESPACE}`)}-ab12cd`,
      `regfs-apply-${dead}-u0a1b2c3-ab12cd`,
      `regfs-from-oci-${dead}-${MY_TAG}-toolong1`,
      `regfs-from-oci-AbC123`,
    ];
    for (const n of [...killed, ...kept]) {
      await mkdir(join(staging, n, 'sub'), { recursive: true });
      await writeFile(join(staging, n, 'sub', 'blob'), 'staged');
    }
    await writeFile(join(staging, 'target'), 'not ours');
    const asFile = `regfs-apply-${dead}-${MY_TAG}-file00`;
    const asLink = `regfs-apply-${dead}-${MY_TAG}-link00`;
    await writeFile(join(staging, asFile), 'not ours');
    await symlink(join(staging, 'target'), join(staging, asLink));
    ok(await w.regfs(['from-oci', tar, 's3://dst/from-tar', '--staging', staging]));
    assert.deepEqual((await readdir(staging)).sort(), [...kept, 'target', asFile, asLink].sort(), 'only the killed runs\' staging directories are gone');
    assert.equal(await readFile(join(staging, 'target'), 'utf8'), 'not ours');
    for (const n of await readdir(staging)) await rm(join(staging, n), { recursive: true });
    await w.assertServedOnS3('dst', 'from-tmpdir', w.served(LISTED), UNLISTED);
  });

  test('from-oci and apply of a layer larger than the upload part size (16 MiB): a multipart upload, served whole', async () => {
    const image = makeImage({ format: 'oci', layers: [makeLayer('s3-import-big', 17 << 20), makeLayer('s3-import-small')] });
    const layout = join(scratch, 'big-layout');
    await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
    for (const b of [...manifestsOf(image), ...blobsOf(image)]) await writeFile(join(layout, 'blobs', 'sha256', b.digest.slice('sha256:'.length)), b.bytes);
    await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: image.mediaType, digest: image.digest, size: image.size, annotations: { 'io.containerd.image.name': 'big/app:1' } }] }));
    const tar = join(scratch, 'big.tar');
    execFileSync('tar', ['-C', layout, '-cf', tar, '.']);
    const served = [{ name: 'big/app:1', digest: image.digest }];
    const big = image.layers[0]!;
    for (const [args, prefix] of [
      [['from-oci', layout, 's3://dst/big-dir'], 'big-dir'],
      [['apply', tar, 's3://dst/big-tar', '--staging', staging], 'big-tar'],
    ] as const) {
      ok(await w.regfs([...args]));
      await assertStagingGone();
      const keys = await w.keysOf('dst', prefix);
      const key = `${prefix}/docker/registry/v2/blobs/sha256/${big.digest.slice(7, 9)}/${big.digest.slice(7)}/data`;
      assert.equal(keys.get(key), `${big.size} ${big.digest.slice(7)}`, 'the large blob whole');
      await w.assertServedOnS3('dst', prefix, served, ['team/app:v1']);
    }
  });

  test('from-oci: a corrupted tar leaves nothing on S3, in a new prefix or an existing one, and no staging directory', async () => {
    const tar = join(scratch, 'layout.tar');
    const cut = join(scratch, 'cut.tar');
    execFileSync('cp', [tar, cut]);
    await truncate(cut, Math.floor((await stat(tar)).size * 0.6));
    const before = await w.keysOf('dst', 'from-tar');
    for (const dest of ['s3://dst/corrupt', 's3://dst/from-tar']) {
      const r = await w.regfs(['from-oci', cut, dest, '--staging', staging, '--json']);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(errorCode(r.stdout), 'ARCHIVE_INVALID', r.stdout);
      await assertStagingGone();
    }
    assert.equal((await w.keysOf('dst', 'corrupt')).size, 0, 'nothing written to a new prefix');
    assert.deepEqual(await w.keysOf('dst', 'from-tar'), before, 'nothing written to an existing one');
    // --staging is for S3; a missing one is refused before anything is read.
    const usage = await w.regfs(['from-oci', tar, join(scratch, 'disk-out'), '--staging', staging, '--json']);
    assert.equal(errorCode(usage.stdout), 'USAGE', usage.stdout);
    const missing = await w.regfs(['from-oci', tar, 's3://dst/corrupt', '--staging', join(scratch, 'no-such-dir'), '--json']);
    assert.equal(errorCode(missing.stdout), 'USAGE', missing.stdout);
    assert.equal((await w.keysOf('dst', 'corrupt')).size, 0);
  });

  test('apply: a full bundle, then a delta bundle against an inventory, into S3; a re-run converges; a missing base is BUNDLE_BASE_MISSING with nothing written', async () => {
    const full = join(scratch, 'r1.tar');
    ok(await w.regfs(['bundle', await list('r1.list', RELEASE1), FIXTURE_ROOT, full]));
    ok(await w.regfs(['apply', full, 's3://dst/far', '--staging', staging]));
    await assertStagingGone();
    await w.assertServedOnS3('dst', 'far', w.served(RELEASE1), ['team/app:v2', 'multiarch/tool:1.0']);
    // The far side's inventory, taken of the same bundle applied on disk.
    const farDisk = join(scratch, 'far-disk');
    ok(await w.regfs(['apply', full, farDisk]));
    await assertServed(farDisk, w.served(RELEASE1), ['team/app:v2'], join(scratch, 'judge-far-disk'));
    const inv = join(scratch, 'far.inv');
    ok(await w.regfs(['inventory', farDisk, '-o', inv]));
    const delta = join(scratch, 'r2.tar');
    const made = json<{ plan: { blobsAssumed: number } }>(ok(await w.regfs(['bundle', await list('r2.list', RELEASE2), FIXTURE_ROOT, delta, '--have', inv, '--json'])).stdout);
    assert.ok(made.plan.blobsAssumed > 0, 'the delta leaves blobs out');
    const meta = JSON.parse(execFileSync('tar', ['-xOf', delta, 'regfs-bundle.json'], { encoding: 'utf8' })) as { assumed: Array<{ digest: string }> };
    assert.ok(meta.assumed.some((a) => a.digest === w.digests.get('team/app:v1')), 'a manifest is among the blobs left out: it is read from S3');

    // The base missing: a new prefix, and one holding other images; nothing written to either.
    ok(await w.regfs(['from-dir', join(scratch, 'skopeo-dir'), 's3://dst/other', '--name', 'multiarch/tool:1.0']));
    const other = await w.keysOf('dst', 'other');
    for (const [dest, bucketPrefix] of [['s3://dst/no-base', 'no-base'], ['s3://dst/other', 'other']] as const) {
      const r = await w.regfs(['apply', delta, dest, '--staging', staging, '--json']);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(errorCode(r.stdout), 'BUNDLE_BASE_MISSING', r.stdout);
      await assertStagingGone();
      if (bucketPrefix === 'no-base') assert.equal((await w.keysOf('dst', 'no-base')).size, 0, 'nothing written');
      else assert.deepEqual(await w.keysOf('dst', 'other'), other, 'nothing written');
    }

    const applied = json<{ bundle: { assumed: number }; stats: Stats }>(ok(await w.regfs(['apply', delta, 's3://dst/far', '--staging', staging, '--json'])).stdout);
    assert.equal(applied.bundle.assumed, made.plan.blobsAssumed);
    await assertStagingGone();
    await w.assertServedOnS3('dst', 'far', w.served([...new Set([...RELEASE1, ...RELEASE2])]), UNLISTED.filter((n) => !RELEASE2.includes(n)));
    const keys = await w.keysOf('dst', 'far');
    for (const bundle of [full, delta]) {
      assertNothingNew(json<{ stats: Stats }>(ok(await w.regfs(['apply', bundle, 's3://dst/far', '--staging', staging, '--json'])).stdout).stats, `apply ${bundle} again`);
      await assertStagingGone();
    }
    assert.deepEqual(await w.keysOf('dst', 'far'), keys, 'a re-run converges');
    // A dry run stages and writes nothing, and counts what the prefix holds.
    const dry = json<{ plan: { blobs: number; blobsAlreadyThere: number } }>(ok(await w.regfs(['apply', delta, 's3://dst/far', '--staging', staging, '--dry-run', '--json'])).stdout).plan;
    assert.equal(dry.blobsAlreadyThere, dry.blobs);
    ok(await w.regfs(['apply', full, 's3://dst/dry', '--staging', staging, '--dry-run']));
    await assertStagingGone();
    assert.equal((await w.keysOf('dst', 'dry')).size, 0, 'a dry run writes nothing');
  });
});
