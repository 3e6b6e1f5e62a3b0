/**
 * extract against the registry-written fixture, without a registry: what lands in OUT,
 * checked file by file against what a lone push of the same images leaves (the pure writer,
 * which test/fixtures.test.ts proves equal to the real registry's output).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, lstatSync, renameSync, unlinkSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { extract } from '../src/ops/extract.js';
import { isRegfsError } from '../src/errors.js';
import { parseDigest, digestOf } from '../src/digest.js';
import { parseRepoName, parseTag } from '../src/reference.js';
import * as layout from '../src/registry/layout.js';
import { writeStorage } from '../scripts/lib/write-storage.js';
import { FIXTURE_PUSHES } from '../scripts/lib/fixture-spec.js';
import { manifestsOf, makeImage, makeLayer, type Image } from '../scripts/lib/images.js';
import { FIXTURE_ROOT, currentPush, currentPurePushes } from './helpers/fixture.js';
import { copyTree, listFiles, snapshotTree, withTempDir, writeListFile } from './helpers/tree.js';

const V2 = 'docker/registry/v2';

/** Relative file paths and contents (blob data by digest of content) of a storage tree. */
async function treeContents(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of await listFiles(root)) out.set(f, digestOf(await readFile(join(root, f))));
  return out;
}

test('extract: each repo:tag alone gives exactly the files a lone push of it leaves', async () => {
  await withTempDir(async (dir) => {
    for (const push of currentPurePushes()) {
      const out = join(dir, `out-${push.repo.replaceAll('/', '_')}-${push.tag}`);
      const want = join(dir, `want-${push.repo.replaceAll('/', '_')}-${push.tag}`);
      await extract({ list: await writeListFile(dir, [`${push.repo}:${push.tag}`]), source: FIXTURE_ROOT, output: out });
      await writeStorage(want, [push]);
      assert.deepEqual(await treeContents(out), await treeContents(want), `${push.repo}:${push.tag}`);
    }
  });
});

test('extract: the whole fixture, blob data hard-linked, shared blobs once, source untouched', async () => {
  await withTempDir(async (dir) => {
    const before = await snapshotTree(FIXTURE_ROOT);
    const refs = [...new Set(FIXTURE_PUSHES.map((p) => `${p.repo}:${p.tag}`))];
    const out = join(dir, 'out');
    const r = await extract({ list: await writeListFile(dir, refs), source: FIXTURE_ROOT, output: out });
    assert.equal(r.images.length, refs.length);
    assert.equal(r.stats?.blobsLinked, r.plan.blobs);
    assert.equal(r.stats?.blobsExisting, 0);
    // Every pure-writable image: the union of lone pushes.
    const want = join(dir, 'want');
    await writeStorage(want, currentPurePushes());
    const got = await treeContents(out);
    for (const [f, c] of await treeContents(want)) assert.equal(got.get(f), c, f);
    // Blob data shares the source's inode; link files never do.
    for (const f of await listFiles(out)) {
      const [a, b] = await Promise.all([stat(join(out, f)), stat(join(FIXTURE_ROOT, f)).catch(() => undefined)]);
      if (f.endsWith('/data')) assert.equal(a.ino, b?.ino, f);
      else assert.notEqual(a.ino, b?.ino, f);
    }
    assert.deepEqual(await snapshotTree(FIXTURE_ROOT), before);
    // A second run changes nothing and says so.
    const again = await extract({ list: await writeListFile(dir, refs), source: FIXTURE_ROOT, output: out });
    assert.equal(again.stats?.blobsExisting, r.plan.blobs);
    assert.equal(again.stats?.linksWritten, 0);
  });
});

test('extract: an index brings every child with its config and layers; schema1 by fsLayers', async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, 'out');
    await extract({ list: await writeListFile(dir, ['multiarch/tool:nested', 'legacy/app:1.0']), source: FIXTURE_ROOT, output: out });
    const v2 = join(out, V2);
    const repo = parseRepoName('multiarch/tool');
    for (const m of manifestsOf(currentPush('multiarch/tool', 'nested').image)) {
      await stat(layout.revisionLinkPath(v2, repo, m.digest));
      await stat(layout.blobDataPath(v2, m.digest));
      if (m.kind === 'image') for (const b of [m.config, ...m.layers]) await stat(layout.layerLinkPath(v2, repo, b.digest));
    }
    // schema1: the stored manifest's fsLayers are the layers, each linked.
    const legacy = parseRepoName('legacy/app');
    const d = parseDigest(await readFile(layout.tagCurrentLinkPath(v2, legacy, parseTag('1.0')), 'utf8'));
    const m = JSON.parse(await readFile(layout.blobDataPath(v2, d), 'utf8')) as { schemaVersion: number; fsLayers: Array<{ blobSum: string }> };
    assert.equal(m.schemaVersion, 1);
    for (const l of m.fsLayers) await stat(layout.layerLinkPath(v2, legacy, parseDigest(l.blobSum)));
  });
});

test('extract: repo selects every tag of that repository only; digest lines get no tag', async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, 'out');
    const old = FIXTURE_PUSHES.find((p) => p.repo === 'team/app' && p.tag === 'edge')!.image;
    const r = await extract({ list: await writeListFile(dir, ['team/app', `library/busybox@${currentPush('library/busybox', '1.36').image.digest}`, `team/app@${old.digest}`]), source: FIXTURE_ROOT, output: out });
    const v2 = join(out, V2);
    const tags = (await readdir(layout.tagsDir(v2, parseRepoName('team/app')))).sort();
    assert.deepEqual(tags, ['edge', `sha256-${currentPush('team/app', 'v1').image.digest.slice(7)}.sig`, 'v1', 'v2'].sort());
    await assert.rejects(stat(layout.repoDir(v2, parseRepoName('team/app/worker'))));
    await assert.rejects(stat(layout.tagsDir(v2, parseRepoName('library/busybox'))));
    await stat(layout.revisionLinkPath(v2, parseRepoName('team/app'), old.digest));
    assert.equal(r.images.length, 6);
  });
});

test('extract: every problem is reported with its line, and nothing is written', async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, 'out');
    const list = await writeListFile(dir, [
      'team/app:v1',
      'no/such/repo:1',
      'team/app:nosuchtag',
      'Bad:Name:x',
      `team/app:v1@${currentPush('team/app', 'v2').image.digest}`,
      `team/app@sha256:${'0'.repeat(64)}`,
    ]);
    await assert.rejects(extract({ list, source: FIXTURE_ROOT, output: out }), (e) => {
      assert.ok(isRegfsError(e, 'INCOMPLETE'));
      assert.deepEqual(
        e.problems.map((p) => [p.at?.line, p.code]).sort((a, b) => Number(a[0]) - Number(b[0])),
        [[2, 'NAME_UNKNOWN'], [3, 'TAG_UNKNOWN'], [4, 'NAME_INVALID'], [5, 'TAG_DIGEST_MISMATCH'], [6, 'MANIFEST_UNKNOWN']],
      );
      for (const p of e.problems) assert.ok(p.message.startsWith(`${list}:`), p.message);
      return true;
    });
    await assert.rejects(stat(out), 'nothing written, not even OUT');
    const kept = await extract({ list, source: FIXTURE_ROOT, output: out, keepGoing: true });
    assert.equal(kept.images.length, 1);
    assert.equal(kept.problems.length, 5);
    await stat(layout.tagCurrentLinkPath(join(out, V2), parseRepoName('team/app'), parseTag('v1')));
  });
});

test('extract: a repository line reports each broken tag on its own and keeps the rest; problems name their paths', async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, 'src');
    await copyTree(FIXTURE_ROOT, src);
    const v2 = join(src, V2);
    const alpine = parseRepoName('team/platform/base/alpine');
    const broken = layout.tagCurrentLinkPath(v2, alpine, parseTag('3.19'));
    await unlink(broken);
    const r = await extract({ list: await writeListFile(dir, ['team/platform/base/alpine']), source: src, output: join(dir, 'out'), keepGoing: true });
    assert.deepEqual(r.images.map((i) => i.ref), ['team/platform/base/alpine:3.20', 'team/platform/base/alpine:latest']);
    assert.equal(r.problems.length, 1);
    assert.equal(r.problems[0]!.code, 'TAG_UNKNOWN');
    assert.equal(r.problems[0]!.path, broken);
    // Every kind of problem carries the path at fault.
    const v1 = currentPush('team/app', 'v1').image as Image;
    await rm(layout.blobDir(v2, v1.layers[1]!.digest), { recursive: true });
    const list = await writeListFile(dir, ['team/app:nosuch', `team/app@sha256:${'0'.repeat(64)}`, 'team/app:v1']);
    await assert.rejects(extract({ list, source: src, output: join(dir, 'o2') }), (e) => {
      assert.ok(isRegfsError(e, 'INCOMPLETE'));
      const byCode = new Map(e.problems.map((p) => [p.code, p.path]));
      assert.equal(byCode.get('TAG_UNKNOWN'), layout.tagCurrentLinkPath(v2, parseRepoName('team/app'), parseTag('nosuch')));
      assert.equal(byCode.get('MANIFEST_UNKNOWN'), layout.revisionLinkPath(v2, parseRepoName('team/app'), parseDigest(`sha256:${'0'.repeat(64)}`)));
      assert.equal(byCode.get('BLOB_UNKNOWN'), layout.blobDataPath(v2, v1.layers[1]!.digest));
      return true;
    });
  });
});

test('extract: a repository line reports a tag directory whose name no request can name (the registry lists it, never serves it)', async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, 'src');
    await copyTree(FIXTURE_ROOT, src);
    const v2 = join(src, V2);
    const alpine = parseRepoName('team/platform/base/alpine');
    const misnamed = join(layout.tagsDir(v2, alpine), '-3.19');
    renameSync(layout.tagDir(v2, alpine, parseTag('3.19')), misnamed);
    const list = await writeListFile(dir, ['team/platform/base/alpine']);
    await assert.rejects(extract({ list, source: src, output: join(dir, 'out') }), (e) => {
      assert.ok(isRegfsError(e, 'INCOMPLETE'));
      assert.deepEqual(e.problems.map((p) => [p.code, p.path]), [['TAG_INVALID', misnamed]]);
      return true;
    });
    const r = await extract({ list, source: src, output: join(dir, 'out'), keepGoing: true });
    assert.deepEqual(r.images.map((i) => i.ref), ['team/platform/base/alpine:3.20', 'team/platform/base/alpine:latest']);
    assert.deepEqual(r.problems.map((p) => p.code), ['TAG_INVALID']);
  });
});

test('extract: a filesystem error is an IO_ERROR naming the path, not "does not exist"', async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, 'src');
    await copyTree(FIXTURE_ROOT, src);
    const loop = join(src, V2, 'repositories', 'loop');
    await symlink(loop, loop);
    await assert.rejects(extract({ list: await writeListFile(dir, ['loop/app:1']), source: src, output: join(dir, 'out') }), (e) => {
      assert.ok(isRegfsError(e, 'INCOMPLETE'));
      assert.equal(e.problems[0]!.code, 'IO_ERROR', e.problems[0]!.message);
      assert.match(e.problems[0]!.message, /ELOOP/);
      return true;
    });
  });
});

test('extract: a list naming a registry host the storage lacks is told about --strip-registry', async () => {
  await withTempDir(async (dir) => {
    const list = await writeListFile(dir, ['registry.example.com:5000/team/app:v1', 'mirror.example.com/library/busybox:1.36']);
    await assert.rejects(extract({ list, source: FIXTURE_ROOT, output: join(dir, 'out') }), (e) => {
      assert.ok(isRegfsError(e, 'INCOMPLETE'));
      assert.equal(e.problems.length, 1);
      // A name with a :port cannot be in the storage at all (2.8's driver refuses the path).
      assert.match(e.problems[0]!.message, /registry host registry\.example\.com:5000; docker-registry 2\.8 cannot store or serve a name with a :port .*--strip-registry drops the host/);
      assert.equal(e.problems[0]!.code, 'NAME_INVALID');
      return true;
    });
    const r = await extract({ list, source: FIXTURE_ROOT, output: join(dir, 'out'), stripRegistry: true });
    assert.deepEqual(r.images.map((i) => i.ref), ['team/app:v1', 'library/busybox:1.36']);
  });
});

test('extract: merging into an existing registry moves a tag and keeps its history', async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, 'out');
    const pushes = FIXTURE_PUSHES.filter((p) => p.repo === 'team/app' && p.tag === 'edge');
    await writeStorage(out, [pushes[0]!, currentPush('team/platform/base/alpine', '3.19')]);
    await extract({ list: await writeListFile(dir, ['team/app:edge']), source: FIXTURE_ROOT, output: out });
    const v2 = join(out, V2);
    const repo = parseRepoName('team/app');
    const edge = parseTag('edge');
    assert.equal(await readFile(layout.tagCurrentLinkPath(v2, repo, edge), 'utf8'), pushes[1]!.image.digest);
    assert.deepEqual((await readdir(join(layout.tagIndexDir(v2, repo, edge), 'sha256'))).sort(), pushes.map((p) => p.image.digest.slice(7)).sort());
    await stat(layout.revisionLinkPath(v2, repo, pushes[0]!.image.digest));
    await stat(layout.tagCurrentLinkPath(v2, parseRepoName('team/platform/base/alpine'), parseTag('3.19')));
  });
});

test('extract: the output may not be the source or inside it', async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, 'src');
    await copyTree(FIXTURE_ROOT, src);
    const list = await writeListFile(dir, ['team/app:v1']);
    for (const output of [src, join(src, 'sub'), join(src, V2), join(src, V2, 'repositories', 'x')]) {
      await assert.rejects(extract({ list, source: src, output }), (e) => isRegfsError(e, 'OUTPUT_IN_SOURCE'), output);
    }
    await assert.rejects(extract({ list, source: join(src, V2), output: join(src, V2) }), (e) => isRegfsError(e, 'OUTPUT_IN_SOURCE'));
    // SRC given as its v2 directory: the registry root around it is the source too.
    await assert.rejects(extract({ list, source: join(src, V2), output: join(src, 'docker') }), (e) => isRegfsError(e, 'OUTPUT_IN_SOURCE'));
    await symlink(src, join(dir, 'alias'));
    await assert.rejects(extract({ list, source: src, output: join(dir, 'alias', 'out') }), (e) => isRegfsError(e, 'OUTPUT_IN_SOURCE'));
    // The v2 directory itself is accepted as SRC and as OUT.
    const r = await extract({ list, source: join(src, V2), output: join(dir, 'o2', V2) });
    assert.equal(r.output, join(dir, 'o2', V2));
  });
});

test('extract: an output reaching into the source through a bind mount is refused', async (t) => {
  await withTempDir(async (dir) => {
    const src = join(dir, 'src');
    await copyTree(FIXTURE_ROOT, src);
    const bind = join(dir, 'bind');
    await mkdir(bind);
    const { spawnSync } = await import('node:child_process');
    if (spawnSync('mount', ['--bind', src, bind]).status !== 0) {
      t.skip('bind mounts are not permitted here');
      return;
    }
    try {
      const list = await writeListFile(dir, ['team/app:v1']);
      await assert.rejects(extract({ list, source: src, output: join(bind, 'out') }), (e) => isRegfsError(e, 'OUTPUT_IN_SOURCE'));
      await assert.rejects(extract({ list, source: bind, output: join(src, 'out') }), (e) => isRegfsError(e, 'OUTPUT_IN_SOURCE'));
      await assert.rejects(stat(join(src, 'out')));
    } finally {
      spawnSync('umount', [bind]);
    }
  });
});

test('extract: an output holding blobs/ is a registry root, not a v2 directory; an OCI layout is refused', async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, 'out');
    await mkdir(join(out, 'blobs', 'sha256'), { recursive: true });
    const list = await writeListFile(dir, ['team/app:v1']);
    const r = await extract({ list, source: FIXTURE_ROOT, output: out });
    assert.equal(r.output, join(out, V2));
    assert.deepEqual(await readdir(join(out, 'blobs', 'sha256')), [], 'blobs/ is left alone');
    // An OCI layout: regfs writes no registry storage into it (to-oci writes layouts).
    const oci = join(dir, 'oci');
    await mkdir(join(oci, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(oci, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await assert.rejects(extract({ list, source: FIXTURE_ROOT, output: oci }), (e) => isRegfsError(e, 'NOT_REGISTRY') && e.message.includes('to-oci'));
    assert.deepEqual((await readdir(oci)).sort(), ['blobs', 'oci-layout'], 'the layout is untouched');
  });
});

test('extract: platforms: false reads no config (the CLI text summary shows none); the default reads them', async () => {
  await withTempDir(async (dir) => {
    const list = await writeListFile(dir, ['multiarch/tool:1.0']);
    const without = await extract({ list, source: FIXTURE_ROOT, output: join(dir, 'a'), platforms: false });
    assert.deepEqual(without.images[0]!.platforms, []);
    assert.equal(without.images[0]!.blobs, (await extract({ list, source: FIXTURE_ROOT, output: join(dir, 'b') })).images[0]!.blobs);
    const withThem = await extract({ list, source: FIXTURE_ROOT, output: join(dir, 'c'), platforms: true });
    assert.deepEqual(withThem.images[0]!.platforms, ['linux/amd64', 'linux/arm64', 'linux/arm/v7']);
  });
});

test('extract: --dry-run plans and writes nothing', async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, 'out');
    const r = await extract({ list: await writeListFile(dir, ['multiarch/tool:1.0']), source: FIXTURE_ROOT, output: out, dryRun: true });
    assert.equal(r.dryRun, true);
    assert.equal(r.stats, undefined);
    const image = currentPush('multiarch/tool', '1.0').image;
    assert.equal(r.plan.blobs, manifestsOf(image).length + 3 * 2);
    assert.deepEqual(r.images[0]!.platforms, ['linux/amd64', 'linux/arm64', 'linux/arm/v7']);
    await assert.rejects(stat(out));
  });
});

test('extract: copy mode copies; a failure in the blob phase leaves no tag, and a re-run completes', async () => {
  await withTempDir(async (dir) => {
    const list = await writeListFile(dir, ['team/app:v1', 'multiarch/tool:1.0']);
    const copied = join(dir, 'copied');
    const r = await extract({ list, source: FIXTURE_ROOT, output: copied, link: 'copy' });
    assert.equal(r.stats?.blobsCopied, r.plan.blobs);
    for (const f of (await listFiles(copied)).filter((f) => f.endsWith('/data'))) assert.equal((await stat(join(copied, f))).nlink, 1);

    const out = join(dir, 'out');
    let n = 0;
    const flaky = {
      linkSync: (a: string, b: string) => {
        if (++n === 5) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
        linkSync(a, b);
      },
      // A filesystem without reflinks, such as ext4: auto then hard-links.
      copyFileSync: () => {
        throw Object.assign(new Error('EOPNOTSUPP: injected'), { code: 'EOPNOTSUPP' });
      },
      unlinkSync,
      renameSync,
      lstatSync,
    };
    await assert.rejects(extract({ list, source: FIXTURE_ROOT, output: out, linkFs: flaky }), (e) => isRegfsError(e, 'IO_ERROR'));
    assert.ok(!(await listFiles(out)).some((f) => f.includes('/_manifests/') || f.includes('/_layers/')), 'no link before all blob data');
    // A crash after the blobs: links partly there, one malformed, no tags.
    await extract({ list, source: FIXTURE_ROOT, output: out });
    const v2 = join(out, V2);
    const repo = parseRepoName('team/app');
    await rm(layout.tagsDir(v2, repo), { recursive: true });
    await writeFile(layout.revisionLinkPath(v2, repo, currentPush('team/app', 'v1').image.digest), '');
    await extract({ list, source: FIXTURE_ROOT, output: out });
    assert.deepEqual(await treeContents(out), await treeContents(copied));
  });
});

test('extract: damaged sources are refused with the path and a code', async () => {
  await withTempDir(async (dir) => {
    const v1 = currentPush('team/app', 'v1').image as Image;
    const repo = parseRepoName('team/app');
    const tool = currentPush('multiarch/tool', '1.0').image;
    const armChild = manifestsOf(tool)[2]!;
    const cases: Array<[string, (v2: string) => Promise<void>, string, string?, string?]> = [
      ['current link with a newline', (v2) => writeFile(layout.tagCurrentLinkPath(v2, repo, parseTag('v1')), `${v1.digest}\n`), 'LINK_INVALID', 'current/link'],
      ['empty current link', (v2) => writeFile(layout.tagCurrentLinkPath(v2, repo, parseTag('v1')), ''), 'LINK_INVALID'],
      ['revision link missing', (v2) => unlink(layout.revisionLinkPath(v2, repo, v1.digest)), 'MANIFEST_UNKNOWN'],
      ['revision link naming another digest', (v2) => writeFile(layout.revisionLinkPath(v2, repo, v1.digest), v1.config.digest), 'LINK_INVALID'],
      ['manifest byte flipped', async (v2) => {
        const p = layout.blobDataPath(v2, v1.digest);
        const b = await readFile(p);
        b[b.length - 2] = b[b.length - 2]! ^ 1;
        await unlink(p);
        await writeFile(p, b);
      }, 'DIGEST_MISMATCH', v1.digest.slice(7)],
      ['manifest not JSON', async (v2) => {
        await unlink(layout.blobDataPath(v2, v1.digest));
        await writeFile(layout.blobDataPath(v2, v1.digest), 'not json');
      }, 'DIGEST_MISMATCH'],
      ['manifest blob missing', (v2) => rm(layout.blobDir(v2, v1.digest), { recursive: true }), 'BLOB_UNKNOWN'],
      ['manifest of an unknown media type, under its own digest', async (v2) => {
        const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example.thing', layers: [] }));
        const d = digestOf(bytes);
        await mkdir(layout.blobDir(v2, d), { recursive: true });
        await writeFile(layout.blobDataPath(v2, d), bytes);
        await mkdir(join(layout.revisionLinkPath(v2, repo, d), '..'), { recursive: true });
        await writeFile(layout.revisionLinkPath(v2, repo, d), d);
        await writeFile(layout.tagCurrentLinkPath(v2, repo, parseTag('v1')), d);
      }, 'MANIFEST_INVALID', 'application/vnd.example.thing'],
      // Its children are linked in multiarch/tool, where the index was pushed.
      ['index child missing', (v2) => rm(layout.blobDir(v2, armChild.digest), { recursive: true }), 'BLOB_UNKNOWN', 'linux/arm64', 'multiarch/tool:1.0'],
      ['tag pointing at a blob too large to be a manifest', async (v2) => {
        const big = Buffer.alloc(5 << 20, 0x20);
        const d = digestOf(big);
        await mkdir(layout.blobDir(v2, d), { recursive: true });
        await writeFile(layout.blobDataPath(v2, d), big);
        await mkdir(join(layout.revisionLinkPath(v2, repo, d), '..'), { recursive: true });
        await writeFile(layout.revisionLinkPath(v2, repo, d), d);
        await writeFile(layout.tagCurrentLinkPath(v2, repo, parseTag('v1')), d);
      }, 'MANIFEST_INVALID', 'larger than'],
      ['layer missing', (v2) => rm(layout.blobDir(v2, v1.layers[1]!.digest), { recursive: true }), 'BLOB_UNKNOWN', v1.layers[1]!.digest],
      ['layer truncated', (v2) => truncate(layout.blobDataPath(v2, v1.layers[1]!.digest), 3), 'SIZE_INVALID'],
      // A symlink to a regular file is served by the registry and followed; one to a FIFO is not data.
      ['layer is a symlink to a FIFO', async (v2) => {
        await rm(join(dir, 'outside'), { force: true });
        execFileSync('mkfifo', [join(dir, 'outside')]);
        await unlink(layout.blobDataPath(v2, v1.layers[1]!.digest));
        await symlink(join(dir, 'outside'), layout.blobDataPath(v2, v1.layers[1]!.digest));
      }, 'BLOB_INVALID'],
    ];
    for (const [name, damage, code, inMessage, ref = 'team/app:v1'] of cases) {
      const list = await writeListFile(dir, [ref]);
      const src = join(dir, 'src');
      await rm(src, { recursive: true, force: true });
      await copyTree(FIXTURE_ROOT, src);
      await damage(join(src, V2));
      const before = await snapshotTree(src);
      const out = join(dir, 'out');
      await assert.rejects(extract({ list, source: src, output: out }), (e) => {
        assert.ok(isRegfsError(e, 'INCOMPLETE'), name);
        assert.equal(e.problems[0]?.code, code, `${name}: ${e.problems[0]?.message}`);
        if (inMessage !== undefined) assert.ok(e.problems[0]!.message.includes(inMessage), `${name}: ${e.problems[0]!.message}`);
        return true;
      });
      await assert.rejects(stat(out), name);
      assert.deepEqual(await snapshotTree(src), before, name);
    }
    await mkdir(join(dir, 'empty'));
    await assert.rejects(extract({ list: await writeListFile(dir, ['team/app:v1']), source: join(dir, 'empty'), output: join(dir, 'o') }), (e) => isRegfsError(e, 'NOT_REGISTRY'));
  });
});

test('extract: an absent foreign layer is a warning, not an error', async () => {
  await withTempDir(async (dir) => {
    const base = makeLayer('foreign-base');
    const img = makeImage({ format: 'docker', layers: [makeLayer('app-on-windows')] });
    // A manifest whose first layer is foreign: it has urls and its blob is not in storage.
    const manifest = JSON.parse(img.bytes.toString()) as { layers: object[] };
    manifest.layers.unshift({ mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: base.digest, size: base.size, urls: ['https://example.com/layer'] });
    const bytes = Buffer.from(JSON.stringify(manifest));
    const foreign: Image = { ...img, bytes, digest: digestOf(bytes), size: bytes.length };
    const src = join(dir, 'src');
    await writeStorage(src, [{ repo: 'win/app', tag: '1', image: foreign }]);
    const warnings: string[] = [];
    const r = await extract({ list: await writeListFile(dir, ['win/app:1']), source: src, output: join(dir, 'out'), onWarning: (m) => warnings.push(m) });
    assert.equal(r.images.length, 1);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /foreign layer/);
    await assert.rejects(stat(layout.blobDataPath(join(dir, 'out', V2), base.digest)));
  });
});
