/**
 * to-dir and from-dir without a registry: the dir: layout, names, the schema1 payload,
 * incremental export, refusal of foreign directories, verification, and the property that
 * ties them to extract: from-dir(to-dir(list)) writes exactly what extract(list) writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rename, rm, stat, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toDir, DIGEST_FILE } from '../src/ops/to-dir.js';
import { fromDir } from '../src/ops/from-dir.js';
import { extract } from '../src/ops/extract.js';
import { isRegfsError } from '../src/errors.js';
import { digestOf, digestHex, parseDigest } from '../src/digest.js';
import { parseRepoName, parseTag } from '../src/reference.js';
import * as layout from '../src/registry/layout.js';
import { DIR_VERSION, DIR_VERSION_1_0 } from '../src/dir/layout.js';
import { decodePortable, encodePortable, imageDirName, parseImageDirName } from '../src/dir/names.js';
import { schema1Payload } from '../src/schema1.js';
import { makeImage, makeLayer, manifestsOf, type Image } from '../scripts/lib/images.js';
import { MAX_INDEX_DEPTH, MediaTypes } from '../src/manifest.js';
import { FIXTURE_PUSHES } from '../scripts/lib/fixture-spec.js';
import { FIXTURE_ROOT, currentPush } from './helpers/fixture.js';
import { copyTree, listFiles, snapshotTree, withTempDir, writeListFile } from './helpers/tree.js';

const V2 = 'docker/registry/v2';
const LIST = ['team/app', 'multiarch/tool', 'legacy/app:1.0', 'library/busybox:1.36', 'tools/nomediatype:1.0', 'team/app/worker:1.1'];

async function treeContents(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of await listFiles(root)) out.set(f, digestOf(await readFile(join(root, f))));
  return out;
}

const storedBlob = (d: string): string => join(FIXTURE_ROOT, V2, 'blobs', 'sha256', d.slice(7, 9), d.slice(7), 'data');

test('names: scoped layout, portable escape and its inverse', () => {
  const d = parseDigest(`sha256:${'a'.repeat(64)}`);
  assert.equal(imageDirName(parseRepoName('team/app'), { tag: parseTag('v1') }), 'team/app:v1');
  assert.equal(imageDirName(parseRepoName('team/app'), { digest: d }), `team/app@${d}`);
  assert.equal(imageDirName(parseRepoName('Reg.Example.com/app'), { tag: parseTag('Latest') }, true), '%52eg.%45xample.com/app%3A%4Catest');
  for (const s of ['team/app:v1', 'A%B:c', 'x@sha256:ab', 'Latest', 'latest']) assert.equal(decodePortable(encodePortable(s)), s);
  assert.notEqual(encodePortable('Latest').toLowerCase(), encodePortable('latest').toLowerCase(), 'no case-insensitive collision');
  assert.doesNotMatch(encodePortable('H:5000/a:B').replace(/%[0-9A-F]{2}/g, ''), /[:A-Z]/);
  assert.deepEqual(parseImageDirName('team/app%3Av1'), { repo: 'team/app', tag: 'v1', digest: undefined });
  assert.throws(() => parseImageDirName('team/app'), (e) => isRegfsError(e, 'NAME_INVALID'));
});

test('schema1: a signed manifest is stored as its libtrust payload', () => {
  const payload = Buffer.from('{\n   "schemaVersion": 1,\n   "name": "a",\n   "tag": "t",\n   "fsLayers": []\n}');
  const formatLength = payload.length - 2; // everything before "\n}"
  const prot = (tail: string): string => Buffer.from(JSON.stringify({ formatLength, formatTail: Buffer.from(tail).toString('base64url'), time: '2024-01-01T00:00:00Z' })).toString('base64url');
  const sig = (tail: string) => ({ header: { alg: 'ES256' }, signature: 'c2ln', protected: prot(tail) });
  const signed = (sigs: object[]): Buffer =>
    Buffer.concat([payload.subarray(0, formatLength), Buffer.from(`,\n   "signatures": ${JSON.stringify(sigs)}\n}`)]);
  assert.deepEqual(schema1Payload(signed([sig('\n}'), sig('\n}')]), 'm'), payload);
  assert.throws(() => schema1Payload(signed([sig('\n}'), sig('}')]), 'm'), (e) => isRegfsError(e, 'MANIFEST_INVALID'));
  assert.throws(() => schema1Payload(Buffer.from('{"signatures":[]}'), 'm'), (e) => isRegfsError(e, 'MANIFEST_INVALID'));
  assert.throws(() => schema1Payload(Buffer.from('{"signatures":[{"protected":"!!"}]}'), 'm'), (e) => isRegfsError(e, 'MANIFEST_INVALID'));
});

test('to-dir: the dir: layout, exact manifest bytes, blobs one inode with the registry', async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, 'out');
    const r = await toDir({ list: await writeListFile(dir, LIST), source: FIXTURE_ROOT, output: out });
    assert.equal(r.images.length, 11);
    const app = join(out, 'team/app:v1');
    const v1 = currentPush('team/app', 'v1').image as Image;
    assert.equal(await readFile(join(app, 'version'), 'utf8'), DIR_VERSION);
    assert.deepEqual(await readFile(join(app, 'manifest.json')), v1.bytes);
    assert.deepEqual((await readdir(app)).sort(), [...[v1.config, ...v1.layers].map((b) => digestHex(b.digest)), 'manifest.json', 'version'].sort());
    for (const b of [v1.config, ...v1.layers]) assert.equal((await stat(join(app, digestHex(b.digest)))).ino, (await stat(storedBlob(b.digest))).ino);
    // A layer in several image directories is one inode.
    const shared = v1.layers[0]!.digest;
    assert.equal((await stat(join(out, 'team/app:v2', digestHex(shared)))).ino, (await stat(join(app, digestHex(shared)))).ino);
    // An index whole: instances as <hex>.manifest.json, all blobs flat.
    const list = currentPush('multiarch/tool', '1.0').image;
    const files = await readdir(join(out, 'multiarch/tool:1.0'));
    for (const m of manifestsOf(list).slice(1)) assert.ok(files.includes(`${digestHex(m.digest)}.manifest.json`));
    assert.equal(files.length, 2 + 3 + 6);
    // Nested indexes: every descendant as an instance.
    const nested = await readdir(join(out, 'multiarch/tool:nested'));
    assert.equal(nested.filter((f) => f.endsWith('.manifest.json')).length, manifestsOf(currentPush('multiarch/tool', 'nested').image).length - 1);
    // The digest file: one line an image, sorted by reference.
    const lines = (await readFile(join(out, DIGEST_FILE), 'utf8')).trimEnd().split('\n');
    assert.equal(lines.length, 11);
    assert.ok(lines.includes(`${v1.digest} team/app:v1`));
  });
});

test('to-dir: --platform exports one child; --image writes one directory', async () => {
  await withTempDir(async (dir) => {
    const list = currentPush('multiarch/tool', '1.0').image;
    const arm = manifestsOf(list)[3]! as Image;
    await toDir({ image: 'multiarch/tool:1.0', source: FIXTURE_ROOT, output: join(dir, 'one'), platform: 'linux/arm/v7' });
    assert.deepEqual(await readFile(join(dir, 'one', 'manifest.json')), arm.bytes);
    assert.deepEqual((await readdir(join(dir, 'one'))).sort(), [digestHex(arm.config.digest), digestHex(arm.layers[0]!.digest), 'manifest.json', 'version'].sort());
    // Through a nested index, too.
    const r = await toDir({ list: await writeListFile(dir, ['multiarch/tool:nested']), source: FIXTURE_ROOT, output: join(dir, 'tree'), platform: 'linux/arm64' });
    assert.equal(r.images[0]!.kind, 'oci');
    await assert.rejects(
      toDir({ image: 'multiarch/tool:1.0', source: FIXTURE_ROOT, output: join(dir, 'none'), platform: 'linux/s390x' }),
      (e) => isRegfsError(e, 'INCOMPLETE') && e.problems[0]?.code === 'PLATFORM_UNKNOWN' && /linux\/arm\/v7/.test(e.problems[0].message),
    );
    await assert.rejects(toDir({ image: 'team/app', source: FIXTURE_ROOT, output: join(dir, 'x') }), (e) => isRegfsError(e, 'USAGE'));
    await assert.rejects(toDir({ image: 'x:1', source: FIXTURE_ROOT, output: join(dir, 'x'), platform: 'linux' }), (e) => isRegfsError(e, 'USAGE'));
  });
});

test('to-dir: re-exporting updates to exactly a fresh export, touching only what changed', async () => {
  await withTempDir(async (dir) => {
    // A source where team/app:edge still points at its first image.
    const src = join(dir, 'src');
    await copyTree(FIXTURE_ROOT, src);
    const [oldEdge, newEdge] = FIXTURE_PUSHES.filter((p) => p.repo === 'team/app' && p.tag === 'edge').map((p) => p.image as Image);
    await writeFile(layout.tagCurrentLinkPath(join(src, V2), parseRepoName('team/app'), parseTag('edge')), oldEdge!.digest);
    const out = join(dir, 'out');
    await toDir({ list: await writeListFile(dir, ['team/app:edge', 'team/app:v1', 'library/busybox:1.36']), source: src, output: out });
    await writeFile(join(out, 'README.txt'), 'not ours');
    await writeFile(join(out, 'team/app:edge', 'leftover'), 'x');
    const base = join(out, 'team/app:edge', digestHex(newEdge!.layers[0]!.digest));
    const baseIno = (await stat(base)).ino;
    const v1Before = await snapshotTree(join(out, 'team/app:v1'));

    const r = await toDir({ list: await writeListFile(dir, ['team/app:edge', 'team/app:v1']), source: FIXTURE_ROOT, output: out });
    assert.deepEqual(r.staleImages, ['library/busybox:1.36']);
    const fresh = join(dir, 'fresh');
    await toDir({ list: await writeListFile(dir, ['team/app:edge', 'team/app:v1']), source: FIXTURE_ROOT, output: fresh });
    const got = await treeContents(out);
    got.delete('README.txt');
    assert.deepEqual(got, await treeContents(fresh));
    assert.equal(await readFile(join(out, 'README.txt'), 'utf8'), 'not ours');
    assert.equal((await stat(base)).ino, baseIno, 'the unchanged base layer was left alone');
    assert.deepEqual(await snapshotTree(join(out, 'team/app:v1')), v1Before, 'an unchanged image directory is untouched');
    await assert.rejects(stat(join(out, 'library')), 'the emptied parent of a stale image is gone');
    assert.equal(r.stats?.staleFilesRemoved, 3, 'the old config and layer, and the leftover');
  });
});

test('to-dir: a re-run removes the temp file of the record that a killed run left; a file of another name stays', async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, 'out');
    const list = await writeListFile(dir, ['team/app:v1']);
    await toDir({ list, source: FIXTURE_ROOT, output: out });
    // Killed while it wrote digests.txt, its last step.
    const temp = join(out, `.${DIGEST_FILE}.4242-0a1b2c3d-1.regfs-tmp`);
    await writeFile(temp, 'sha256:');
    await writeFile(join(out, `.${DIGEST_FILE}.mine`), 'not ours');
    await toDir({ list, source: FIXTURE_ROOT, output: out });
    await assert.rejects(stat(temp), 'the temp file is gone');
    assert.equal(await readFile(join(out, `.${DIGEST_FILE}.mine`), 'utf8'), 'not ours');
  });
});

test('to-dir: a non-empty directory that is not a dir: image is refused, and nothing is written', async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, 'out');
    await mkdir(join(out, 'team', 'app:v1'), { recursive: true });
    await writeFile(join(out, 'team', 'app:v1', 'precious.txt'), 'data');
    const before = await snapshotTree(out);
    const list = await writeListFile(dir, ['team/app:v1', 'library/busybox:1.36']);
    await assert.rejects(toDir({ list, source: FIXTURE_ROOT, output: out }), (e) => isRegfsError(e, 'INCOMPLETE') && e.problems[0]?.code === 'NOT_DIR_TRANSPORT' && e.problems[0].message.includes('app:v1'));
    assert.deepEqual(await snapshotTree(out), before);
    await writeFile(join(out, 'team', 'app:v1', 'version'), DIR_VERSION_1_0);
    await assert.rejects(toDir({ list, source: FIXTURE_ROOT, output: out }), (e) => isRegfsError(e, 'INCOMPLETE') && /1\.0/.test(e.problems[0]!.message));
    await assert.rejects(toDir({ list, source: FIXTURE_ROOT, output: join(FIXTURE_ROOT, 'x') }), (e) => isRegfsError(e, 'OUTPUT_IN_SOURCE'));
    await assert.rejects(toDir({ list, source: FIXTURE_ROOT, output: join(FIXTURE_ROOT, '..') }), (e) => isRegfsError(e, 'OUTPUT_IN_SOURCE'));
  });
});

test('from-dir(to-dir(list)) writes exactly what extract(list) writes, with and without portable names', async () => {
  await withTempDir(async (dir) => {
    const list = await writeListFile(dir, LIST);
    await extract({ list, source: FIXTURE_ROOT, output: join(dir, 'extracted') });
    const want = await treeContents(join(dir, 'extracted'));
    for (const portableNames of [false, true]) {
      const exp = join(dir, `exp-${portableNames}`);
      await toDir({ list, source: FIXTURE_ROOT, output: exp, portableNames });
      if (portableNames) for (const f of await listFiles(exp)) assert.doesNotMatch(f.replace(/%[0-9A-F]{2}/g, ''), /[:A-Z]/, f);
      const dest = join(dir, `imported-${portableNames}`);
      const r = await fromDir({ input: exp, output: dest });
      assert.equal(r.images.length, 11);
      assert.ok(r.bytesVerified > 0);
      assert.deepEqual(await treeContents(dest), want);
    }
  });
});

test('from-dir: version 1.0 (<hex>.tar), no version file, a signed schema1 manifest, --name', async () => {
  await withTempDir(async (dir) => {
    const exp = join(dir, 'exp');
    await toDir({ list: await writeListFile(dir, ['team/app:v1', 'legacy/app:1.0']), source: FIXTURE_ROOT, output: exp });
    const app = join(exp, 'team/app:v1');
    for (const f of await readdir(app)) if (/^[0-9a-f]{64}$/.test(f)) await rename(join(app, f), join(app, `${f}.tar`));
    await writeFile(join(app, 'version'), DIR_VERSION_1_0);
    // skopeo writes schema1 as the registry serves it: signed. Sign the stored payload.
    const legacy = join(exp, 'legacy/app:1.0');
    const payload = await readFile(join(legacy, 'manifest.json'));
    await unlink(join(legacy, 'version'));
    const cut = payload.length - 1;
    const prot = Buffer.from(JSON.stringify({ formatLength: cut, formatTail: Buffer.from('}').toString('base64url') })).toString('base64url');
    await writeFile(join(legacy, 'manifest.json'), Buffer.concat([payload.subarray(0, cut), Buffer.from(`,"signatures":[{"header":{},"signature":"x","protected":"${prot}"}]}`)]));
    const dest = join(dir, 'dest');
    const r = await fromDir({ input: exp, output: dest });
    assert.deepEqual(r.images.map((i) => i.ref).sort(), ['legacy/app:1.0', 'team/app:v1']);
    const v2 = join(dest, V2);
    const d = parseDigest(await readFile(layout.tagCurrentLinkPath(v2, parseRepoName('legacy/app'), parseTag('1.0')), 'utf8'));
    assert.equal(d, digestOf(payload));
    assert.deepEqual(await readFile(layout.blobDataPath(v2, d)), payload);
    // One directory, named by --name.
    const one = await fromDir({ input: app, output: join(dir, 'one'), name: 'other/name:x' });
    assert.equal(one.images[0]!.ref, 'other/name:x');
    await assert.rejects(fromDir({ input: exp, output: join(dir, 'two'), name: 'a:b' }), (e) => isRegfsError(e, 'USAGE'));
    // Without --name, a single directory is named by its basename, which must name a tag or digest.
    assert.equal((await fromDir({ input: app, output: join(dir, 'three') })).images[0]!.ref, 'app:v1');
    await rename(app, join(dir, 'plain'));
    await assert.rejects(fromDir({ input: join(dir, 'plain'), output: join(dir, 'four') }), (e) => isRegfsError(e, 'INCOMPLETE') && e.problems[0]?.code === 'NAME_INVALID');
  });
});

test('from-dir: verification before anything is visible; --no-verify checks presence and size only; --keep-going', async () => {
  await withTempDir(async (dir) => {
    const exp = join(dir, 'exp');
    await toDir({ list: await writeListFile(dir, ['team/app:v1', 'multiarch/tool:1.0', 'library/busybox:1.36']), source: FIXTURE_ROOT, output: exp, link: 'copy' });
    const v1 = currentPush('team/app', 'v1').image as Image;
    const tool = currentPush('multiarch/tool', '1.0').image;
    const layer = join(exp, 'team/app:v1', digestHex(v1.layers[1]!.digest));
    const bytes = await readFile(layer);
    bytes[100] = bytes[100]! ^ 1;
    await writeFile(layer, bytes);
    await unlink(join(exp, 'multiarch/tool:1.0', `${digestHex(manifestsOf(tool)[2]!.digest)}.manifest.json`));
    const dest = join(dir, 'dest');
    await assert.rejects(fromDir({ input: exp, output: dest }), (e) => {
      assert.ok(isRegfsError(e, 'INCOMPLETE'));
      assert.deepEqual(e.problems.map((p) => p.code).sort(), ['BLOB_UNKNOWN', 'DIGEST_MISMATCH']);
      assert.ok(e.problems.some((p) => p.message.includes(layer)));
      return true;
    });
    await assert.rejects(stat(dest), 'nothing written');
    // Without hashing, the flipped byte passes; the missing instance does not.
    await assert.rejects(fromDir({ input: exp, output: dest, noVerify: true }), (e) => isRegfsError(e, 'INCOMPLETE') && e.problems.length === 1);
    await truncate(layer, 10);
    await assert.rejects(fromDir({ input: exp, output: dest, noVerify: true }), (e) => isRegfsError(e, 'INCOMPLETE') && e.problems.some((p) => p.code === 'SIZE_INVALID'));
    const kept = await fromDir({ input: exp, output: dest, keepGoing: true });
    assert.deepEqual(kept.images.map((i) => i.ref), ['library/busybox:1.36']);
    const dry = await fromDir({ input: join(exp, 'library'), output: join(dir, 'dry'), dryRun: true });
    assert.equal(dry.images.length, 1);
    await assert.rejects(stat(join(dir, 'dry')));
    await rm(join(exp, 'library/busybox:1.36', 'manifest.json'));
    await assert.rejects(fromDir({ input: join(exp, 'library/busybox:1.36'), output: join(dir, 'y') }), (e) => isRegfsError(e, 'INCOMPLETE') && e.problems[0]?.code === 'MANIFEST_UNKNOWN');
    await assert.rejects(fromDir({ input: join(dir, 'nothing-here'), output: join(dir, 'y') }), (e) => isRegfsError(e, 'NOT_DIR_TRANSPORT'));
  });
});

test('from-dir --no-verify takes no blob through a symbolic link out of the input; a link inside it, or a verified blob, is followed', async () => {
  await withTempDir(async (dir) => {
    const exp = join(dir, 'exp');
    await toDir({ list: await writeListFile(dir, ['library/busybox:1.36']), source: FIXTURE_ROOT, output: exp, link: 'copy' });
    const image = join(exp, 'library/busybox:1.36');
    const busybox = currentPush('library/busybox', '1.36').image as Image;
    const layer = join(image, digestHex(busybox.layers[0]!.digest));
    const bytes = await readFile(layer);
    // A file of the host, outside the input, of the layer's size: without hashing, only the size is checked.
    const outside = join(dir, 'host-secret');
    await writeFile(outside, Buffer.alloc(bytes.length, 0x5a));
    await rm(layer);
    await symlink(outside, layer);
    const dest = join(dir, 'dest');
    await assert.rejects(fromDir({ input: exp, output: dest, noVerify: true }), (e) => {
      assert.ok(isRegfsError(e, 'INCOMPLETE'));
      assert.deepEqual(e.problems.map((p) => p.code), ['BLOB_INVALID']);
      assert.match(e.problems[0]!.message, /outside the input/);
      assert.ok(e.problems[0]!.message.includes(outside), e.problems[0]!.message);
      return true;
    });
    await assert.rejects(stat(dest), 'nothing written');
    // Verified, the link out is followed: its bytes are what the digest says, or refused.
    await assert.rejects(fromDir({ input: exp, output: dest }), (e) => isRegfsError(e, 'INCOMPLETE') && e.problems[0]?.code === 'DIGEST_MISMATCH');
    await writeFile(outside, bytes);
    assert.equal((await fromDir({ input: exp, output: join(dir, 'verified') })).images.length, 1);
    // A link to a file inside the input is followed, verified or not.
    const inside = join(exp, 'kept-layer');
    await writeFile(inside, bytes);
    await rm(layer);
    await symlink(inside, layer);
    assert.equal((await fromDir({ input: exp, output: dest, noVerify: true })).images.length, 1);
  });
});

test('from-dir: a name the registry cannot serve (a host with a port) is refused; an interrupted image directory is reported', async () => {
  await withTempDir(async (dir) => {
    const exp = join(dir, 'exp');
    await toDir({ list: await writeListFile(dir, ['team/app:v1', 'library/busybox:1.36']), source: FIXTURE_ROOT, output: join(dir, 'plain') });
    await mkdir(join(exp, '127.0.0.1:5000', 'team'), { recursive: true });
    await rename(join(dir, 'plain', 'team', 'app:v1'), join(exp, '127.0.0.1:5000', 'team', 'app:v1'));
    await assert.rejects(fromDir({ input: exp, output: join(dir, 'dest') }), (e) => {
      assert.ok(isRegfsError(e, 'INCOMPLETE'));
      assert.equal(e.problems[0]?.code, 'NAME_INVALID');
      assert.match(e.problems[0]!.message, /--strip-registry/);
      return true;
    });
    assert.equal((await fromDir({ input: exp, output: join(dir, 'dest'), stripRegistry: true })).images[0]!.ref, 'team/app:v1');
    // An image directory whose copy was cut short: a version file and blobs, no manifest.json.
    const cut = join(dir, 'plain', 'library', 'busybox:1.36');
    await unlink(join(cut, 'manifest.json'));
    await assert.rejects(fromDir({ input: join(dir, 'plain'), output: join(dir, 'd2') }), (e) => isRegfsError(e, 'INCOMPLETE') && e.problems[0]?.code === 'MANIFEST_UNKNOWN' && e.problems[0].message.includes('busybox:1.36'));
    await assert.rejects(fromDir({ input: cut, output: join(dir, 'd3'), name: 'a:b' }), (e) => isRegfsError(e, 'INCOMPLETE') && e.problems[0]?.code === 'MANIFEST_UNKNOWN');
  });
});

/**
 * An image directory whose top manifest is a chain of `depth` OCI indexes above one image
 * manifest, written straight into `input` (no registry, no to-dir): each instance as
 * `<hex>.manifest.json`, the top as `manifest.json`.
 */
async function writeDirChain(input: string, name: string, depth: number): Promise<void> {
  const dir = join(input, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'version'), DIR_VERSION);
  const img = makeImage({ format: 'oci', layers: [makeLayer('dir-chain')] });
  for (const b of [img.config, ...img.layers]) await writeFile(join(dir, digestHex(b.digest)), b.bytes);
  let child: { mediaType: string; digest: string; size: number; platform?: object } = { mediaType: img.mediaType, digest: img.digest, size: img.size, platform: { os: 'linux', architecture: 'amd64' } };
  let bytes = img.bytes;
  for (let i = 0; i < depth; i++) {
    await writeFile(join(dir, `${digestHex(parseDigest(child.digest))}.manifest.json`), bytes);
    bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [child] }));
    child = { mediaType: MediaTypes.ociIndex, digest: digestOf(bytes), size: bytes.length };
  }
  await writeFile(join(dir, 'manifest.json'), bytes);
}

test(`from-dir: indexes nested deeper than ${MAX_INDEX_DEPTH} are INDEX_TOO_DEEP, walked without recursion; ${MAX_INDEX_DEPTH} deep is imported`, async () => {
  await withTempDir(async (dir) => {
    const input = join(dir, 'in');
    await writeDirChain(input, 'deep/chain:max', MAX_INDEX_DEPTH);
    const ok = await fromDir({ input, output: join(dir, 'ok') });
    assert.equal(ok.images[0]?.manifests, MAX_INDEX_DEPTH + 1);
    for (const depth of [MAX_INDEX_DEPTH + 1, 10_000]) {
      const deep = join(dir, `in-${depth}`);
      await writeDirChain(deep, 'deep/chain:over', depth);
      const out = join(dir, `out-${depth}`);
      await assert.rejects(fromDir({ input: deep, output: out }), (e) => {
        if (!isRegfsError(e, 'INCOMPLETE')) return false;
        const problems = e.problems;
        assert.deepEqual(problems.map((p) => p.code), ['INDEX_TOO_DEEP'], String(depth));
        assert.match(problems[0]!.message, new RegExp(`more than ${MAX_INDEX_DEPTH} levels`));
        return true;
      });
      await assert.rejects(stat(join(out, V2, 'repositories')), { code: 'ENOENT' }, 'nothing written');
    }
  });
});
