/**
 * Reading registries on S3 out of S3, and deleting in them (issue: registries on object
 * storage): to-dir, to-oci and bundle with an `s3://` SRC, inventory and rm of an `s3://`
 * ROOT. Judged by the real programs: skopeo reads every export and copies each listed image
 * into docker-registry 2.8.2 with its digest; the same tree on disk gives the same bytes; a
 * registry on the S3 prefix serves what rm left and not what it removed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startRegistry } from '../scripts/lib/registry-server.js';
import { skopeoCopy, skopeoManifestDigestOf } from '../scripts/lib/skopeo.js';
import { inventory } from '../src/ops/inventory.js';
import { rm } from '../src/ops/rm.js';
import { S3Storage } from '../src/storage/s3.js';
import { closeStorage, configureStorage, s3Service } from '../src/storage/config.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { ok, startS3World, type S3World } from './helpers/s3.js';

/** The images exported (the fixture's): an index, an OCI index, single images. */
const LISTED = ['team/platform/base/alpine:3.20', 'team/app:v1', 'multiarch/tool:1.0', 'multiarch/tool:1.0-oci', 'library/busybox:1.36'];
/**
 * The OCI-typed images among the exports to-oci and bundle write: skopeo 1.9.3 finds no
 * Docker-typed manifest in an OCI layout (those are judged by parity with the tree on disk).
 */
const OCI_TYPED = ['library/busybox:1.36', 'team/app/worker:1.1', 'multiarch/tool:1.0-oci'];
/** What only the verbatim upload holds (skopeo cannot push them): an index of indexes, a schema1 image. */
const ODD = ['multiarch/tool:nested', 'legacy/app:1.0'];

let w: S3World;
let scratch: string;
let list: string;
let oddList: string;
let ociList: string;

/** Every file below `root`: its path relative to it, and its size and sha256. */
async function contentsOf(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else {
        const b = await readFile(p);
        out.set(relative(root, p), `${b.length} ${createHash('sha256').update(b).digest('hex')}`);
      }
    }
  };
  await walk(root);
  return out;
}

/** skopeo copies `src(name)` of every name into a fresh registry, which serves it with the fixture's digest. */
async function assertCopiedBySkopeo(names: string[], src: (name: string) => string, label: string): Promise<void> {
  const root = join(scratch, `judge-${label}`);
  await mkdir(root);
  const reg = await startRegistry({ root });
  try {
    for (const name of names) {
      await skopeoCopy(src(name), `docker://${reg.host}/${name}`, { all: true });
      assert.equal(await skopeoManifestDigestOf(`docker://${reg.host}/${name}`), w.digests.get(name), `${label}: ${name}`);
    }
  } finally {
    await reg.stop();
  }
}

/** Run `fn` in this process with the world's credentials and endpoint (to count requests, to watch deletes). */
async function inProcess<T>(fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(w.env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, w.env);
  try {
    configureStorage({ s3Endpoint: w.s3.endpoint });
    return await fn();
  } finally {
    closeStorage();
    configureStorage({});
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('exports from S3, inventory and rm on S3', { timeout: 900_000 }, () => {
  before(async () => {
    w = await startS3World(['src', 'dst']);
    scratch = w.scratch;
    list = join(scratch, 'images.list');
    oddList = join(scratch, 'all.list');
    await writeFile(list, `${LISTED.join('\n')}\n`);
    ociList = join(scratch, 'oci.list');
    await writeFile(ociList, `${[...LISTED, 'team/app/worker:1.1'].join('\n')}\n`);
    await writeFile(oddList, `${[...LISTED, ...ODD].join('\n')}\n`);
  });

  after(async () => {
    await w?.stop();
  });

  test('to-dir from S3: skopeo copies every image directory into a registry with its digest; the same files as to-dir of the tree on disk; the source unchanged', async () => {
    const before = await w.keysOf('src', 'reg');
    const out = join(scratch, 'dir-reg');
    const r = JSON.parse(ok(await w.regfs(['to-dir', list, 's3://src/reg', out, '--json'])).stdout) as { images: Array<{ ref: string; dir: string }>; stats: { blobsCopied: number } };
    assert.deepEqual(r.images.map((i) => i.ref), LISTED);
    assert.ok(r.stats.blobsCopied > 0);
    await assertCopiedBySkopeo(LISTED, (name) => `dir:${join(out, r.images.find((i) => i.ref === name)!.dir)}`, 'dir');
    assert.deepEqual(await w.keysOf('src', 'reg'), before, 'the source is unchanged');
    // The fixture uploaded verbatim and the fixture on disk: the same export, file for file.
    const fromS3 = join(scratch, 'dir-s3');
    const fromDisk = join(scratch, 'dir-disk');
    ok(await w.regfs(['to-dir', oddList, 's3://src/verbatim', fromS3]));
    ok(await w.regfs(['to-dir', oddList, FIXTURE_ROOT, fromDisk]));
    assert.deepEqual(await contentsOf(fromS3), await contentsOf(fromDisk));
    // A re-run finds every blob there.
    const again = JSON.parse(ok(await w.regfs(['to-dir', oddList, 's3://src/verbatim', fromS3, '--json'])).stdout) as { stats: { blobsCopied: number; blobsExisting: number } };
    assert.equal(again.stats.blobsCopied, 0);
    assert.ok(again.stats.blobsExisting > 0);
    // One image into a directory of its own.
    const one = join(scratch, 'dir-one');
    ok(await w.regfs(['to-dir', '--image', 'team/app:v1', 's3://src/reg', one]));
    await assertCopiedBySkopeo(['team/app:v1'], () => `dir:${one}`, 'dir-one');
  });

  test('to-oci from S3: skopeo copies every OCI-typed image out of the oci: layout with its digest; the same layout as to-oci of the tree on disk', async () => {
    const out = join(scratch, 'oci-reg');
    ok(await w.regfs(['to-oci', ociList, 's3://src/reg', out]));
    await assertCopiedBySkopeo(OCI_TYPED, (name) => `oci:${out}:${name}`, 'oci');
    const fromS3 = join(scratch, 'oci-s3');
    const fromDisk = join(scratch, 'oci-disk');
    ok(await w.regfs(['to-oci', oddList, 's3://src/verbatim', fromS3]));
    ok(await w.regfs(['to-oci', oddList, FIXTURE_ROOT, fromDisk]));
    assert.deepEqual(await contentsOf(fromS3), await contentsOf(fromDisk));
  });

  test('bundle from S3: skopeo copies every OCI-typed image out of the oci-archive: with its digest; byte-identical to the bundle of the tree on disk', async () => {
    const out = join(scratch, 'reg.tar');
    ok(await w.regfs(['bundle', ociList, 's3://src/reg', out]));
    await assertCopiedBySkopeo(OCI_TYPED, (name) => `oci-archive:${out}:${name}`, 'bundle');
    const fromS3 = join(scratch, 'verbatim.tar');
    const fromDisk = join(scratch, 'disk.tar');
    ok(await w.regfs(['bundle', oddList, 's3://src/verbatim', fromS3, '--with-referrers']));
    ok(await w.regfs(['bundle', oddList, FIXTURE_ROOT, fromDisk, '--with-referrers']));
    assert.ok((await readFile(fromS3)).equals(await readFile(fromDisk)), 'the same bytes');
    // As volumes (the fixture's bundle fits in one of the smallest size): the same bytes.
    const split = join(scratch, 'split.tar');
    ok(await w.regfs(['bundle', oddList, 's3://src/verbatim', split, '--with-referrers', '--split', '1M']));
    const names = (await readdir(scratch)).filter((n) => n.startsWith('split.tar.')).sort();
    assert.ok(Buffer.concat(await Promise.all(names.map((n) => readFile(join(scratch, n))))).equals(await readFile(fromDisk)), 'the volumes, joined');
  });

  test('inventory of S3: the same bytes as of the same tree on disk, from listings (requests counted); -o is a local file', async () => {
    const onS3 = join(scratch, 's3.inv');
    const onDisk = join(scratch, 'disk.inv');
    const a = ok(await w.regfs(['inventory', 's3://src/verbatim', '-o', onS3]));
    const b = ok(await w.regfs(['inventory', FIXTURE_ROOT, '-o', onDisk]));
    const bytes = await readFile(onS3);
    assert.ok(bytes.equals(await readFile(onDisk)), 'the same inventory');
    assert.equal(a.stderr.split(':')[0], b.stderr.split(':')[0], 'the same identity');
    const toStdout = ok(await w.regfs(['inventory', 's3://src/verbatim']));
    assert.equal(toStdout.stdout, bytes.toString('utf8'));

    // In process, to count the requests: a listing of the blobs and one of the repositories,
    // a GET per tag link and a HEAD per manifest, nothing per blob (measured on the fixture:
    // 4 listings, 17 GETs for 17 tags, 23 HEADs for 22 manifests).
    await inProcess(async () => {
      const r = await inventory({ root: 's3://src/verbatim' });
      const counts = (await s3Service()).requestCounts();
      assert.equal(r.id, a.stderr.split(' ')[1]!.replace(/:$/, ''));
      assert.ok(r.blobs > 20, `${r.blobs} blobs`);
      // Listings: the root's check, blobs/, blobs/sha256/ (one page), repositories/.
      assert.ok((counts['ListObjectsV2'] ?? 0) <= 4, JSON.stringify(counts));
      assert.equal(counts['GetObject'] ?? 0, r.tags, JSON.stringify(counts));
      // A HEAD per manifest, and the root's check.
      assert.ok((counts['HeadObject'] ?? 0) <= r.manifests + 1, JSON.stringify(counts));
      assert.equal(counts['PutObject'] ?? 0, 0);
      assert.equal(counts['DeleteObjects'] ?? 0, 0);
    });
  });

  test('an output on S3 where a command writes a local file or directory is USAGE, not a directory named "s3:"; --link hardlink from S3 is USAGE', async () => {
    for (const args of [
      ['to-dir', list, 's3://src/reg', 's3://dst/dir'],
      ['to-dir', '--image', 'team/app:v1', 's3://src/reg', 's3://dst/dir'],
      ['to-oci', list, 's3://src/reg', 's3://dst/oci'],
      ['bundle', list, 's3://src/reg', 's3://dst/b.tar'],
      ['inventory', 's3://src/reg', '-o', 's3://dst/x.inv'],
      ['to-dir', list, 's3://src/reg', join(scratch, 'never-dir'), '--link', 'hardlink'],
      ['to-oci', list, 's3://src/reg', join(scratch, 'never-oci'), '--link', 'hardlink'],
    ]) {
      const r = await w.regfs([...args, '--json']);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'USAGE', args.join(' '));
    }
    assert.equal((await w.keysOf('dst', '')).size, 0, 'nothing written');
    assert.ok(!existsSync(join(scratch, 'never-dir')) && !existsSync(join(scratch, 'never-oci')), 'nothing written');
  });

  test('rm on S3: a tag, a manifest and a repository go; a registry on S3 serves the rest and not what was removed; a dry run deletes nothing', async () => {
    ok(await w.regfs(['extract', list, 's3://src/reg', 's3://dst/rm']));
    const keys = await w.keysOf('dst', 'rm');
    const dry = JSON.parse(ok(await w.regfs(['rm', 's3://dst/rm', 'library/busybox', '--dry-run', '--json'])).stdout) as { what: string; tags: string[] };
    assert.equal(dry.what, 'repository');
    assert.deepEqual(dry.tags, ['library/busybox:1.36']);
    assert.deepEqual(await w.keysOf('dst', 'rm'), keys, 'a dry run deletes nothing');

    const tag = JSON.parse(ok(await w.regfs(['rm', 's3://dst/rm', 'multiarch/tool:1.0-oci', '--json'])).stdout) as { what: string };
    assert.equal(tag.what, 'tag');
    const alpine = w.digests.get('team/platform/base/alpine:3.20')!;
    const manifest = JSON.parse(ok(await w.regfs(['rm', 's3://dst/rm', `team/platform/base/alpine@${alpine}`, '--json'])).stdout) as { what: string; tags: string[] };
    assert.deepEqual([manifest.what, manifest.tags], ['manifest', ['team/platform/base/alpine:3.20']]);
    ok(await w.regfs(['rm', 's3://dst/rm', 'library/busybox']));

    const left = [...(await w.keysOf('dst', 'rm')).keys()];
    assert.ok(!left.some((k) => k.includes('/repositories/library/busybox/')), 'nothing of the repository is left');
    assert.ok(!left.some((k) => k.includes('/_manifests/tags/1.0-oci/')), 'nothing of the tag is left');
    assert.ok(!left.some((k) => k.includes(`/team/platform/base/alpine/_manifests/revisions/sha256/${alpine.slice(7)}/`)), 'the revision link is gone');
    await w.assertServedOnS3('dst', 'rm', w.served(['team/app:v1', 'multiarch/tool:1.0']), ['multiarch/tool:1.0-oci', 'team/platform/base/alpine:3.20', 'library/busybox:1.36']);

    // What is not there is a clear error; nothing is deleted.
    const before = await w.keysOf('dst', 'rm');
    for (const [ref, code] of [
      ['library/busybox', 'NAME_UNKNOWN'],
      ['team/app:nope', 'TAG_UNKNOWN'],
      [`team/app@${alpine}`, 'MANIFEST_UNKNOWN'],
    ] as const) {
      const r = await w.regfs(['rm', 's3://dst/rm', ref, '--json']);
      assert.equal(r.code, 1, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, code, ref);
    }
    assert.deepEqual(await w.keysOf('dst', 'rm'), before);
  });

  test('rm on S3 deletes tags before what they name: every tag\'s current/ first, then the tags, the revisions, then _manifests, _layers and _uploads; a nested repository stays', async () => {
    const nested = join(scratch, 'nested.list');
    await writeFile(nested, 'team/app:v1\nteam/app:v2\nteam/app/worker:1.1\n');
    ok(await w.regfs(['extract', nested, 's3://src/reg', 's3://dst/order']));
    const deleted: string[] = [];
    const original = S3Storage.prototype.delete;
    S3Storage.prototype.delete = async function (this: S3Storage, path: string): Promise<void> {
      deleted.push(path.slice(path.indexOf('/repositories/') + '/repositories/'.length));
      return original.call(this, path);
    };
    try {
      await inProcess(() => rm({ root: 's3://dst/order', ref: 'team/app' }));
    } finally {
      S3Storage.prototype.delete = original;
    }
    const tags = ['v1', 'v2'];
    assert.deepEqual(deleted.slice(0, 2).sort(), tags.map((t) => `team/app/_manifests/tags/${t}/current`));
    assert.deepEqual(deleted.slice(2, 4).sort(), tags.map((t) => `team/app/_manifests/tags/${t}`));
    assert.deepEqual(deleted.slice(4), ['team/app/_manifests/revisions', 'team/app/_manifests', 'team/app/_layers', 'team/app/_uploads']);
    await w.assertServedOnS3('dst', 'order', w.served(['team/app/worker:1.1']), ['team/app:v1', 'team/app:v2']);
  });

  test('rm on S3 killed part way: what it leaves serves no tag naming what is gone, and a re-run finishes it', async () => {
    ok(await w.regfs(['extract', list, 's3://src/reg', 's3://dst/killed']));
    const root = w.service.root('s3://dst/killed');
    const repos = `${root.v2}/repositories`;
    // A tag rm killed after its current/: the tag's index is left; the tag resolves to nothing.
    await root.delete(`${repos}/multiarch/tool/_manifests/tags/1.0-oci/current`);
    // A repository rm killed after _manifests: its _layers are left.
    await root.delete(`${repos}/library/busybox/_manifests`);
    await w.assertServedOnS3('dst', 'killed', w.served(['team/app:v1', 'multiarch/tool:1.0']), ['multiarch/tool:1.0-oci', 'library/busybox:1.36']);
    ok(await w.regfs(['rm', 's3://dst/killed', 'multiarch/tool:1.0-oci']));
    ok(await w.regfs(['rm', 's3://dst/killed', 'library/busybox']));
    const left = [...(await w.keysOf('dst', 'killed')).keys()];
    assert.ok(!left.some((k) => k.includes('/repositories/library/busybox/') || k.includes('/_manifests/tags/1.0-oci/')), left.join('\n'));
    await w.assertServedOnS3('dst', 'killed', w.served(['team/app:v1', 'multiarch/tool:1.0', 'team/platform/base/alpine:3.20']), ['multiarch/tool:1.0-oci', 'library/busybox:1.36']);
  });
});
