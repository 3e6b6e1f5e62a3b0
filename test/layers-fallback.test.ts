/**
 * docker-registry 2.8 serves a manifest by digest from a `_layers` link when the repository
 * has no revision link for it (storage-formats §3.3). gc keeps such a manifest, tagged or
 * not, and everything it references; rm of it deletes that link too, so it is served no
 * more. The real registry is the judge: served before, and after gc; 404 after rm.
 */
import { test } from 'node:test';
import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import { mkdir, rm as removeTree, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseRepoName, parseTag } from '../src/reference.js';
import * as layout from '../src/registry/layout.js';
import type { Digest } from '../src/digest.js';
import { startRegistry } from '../scripts/lib/registry-server.js';
import { FIXTURE_PUSHES } from '../scripts/lib/fixture-spec.js';
import { Pusher } from '../scripts/fuzz/pusher.js';
import { blobOf, makeImage, makeLayer, manifestsOf, type Image, type Index } from '../scripts/lib/images.js';
import { runCli } from './helpers/cli.js';
import { FIXTURE_ROOT, currentPush } from './helpers/fixture.js';
import { assertServing } from './helpers/judge.js';
import { copyTree, tempDir } from './helpers/tree.js';

const REPO = parseRepoName('team/app');
/** team/app:v1, tagged. */
const TAGGED = currentPush('team/app', 'v1').image.digest;
/** The first image pushed as team/app:edge: untagged since edge moved on. */
const UNTAGGED = FIXTURE_PUSHES.find((p) => p.repo === 'team/app' && p.tag === 'edge')!.image.digest;
const ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** Replace the manifest's revision link by a `_layers` link, as 2.1.0 linked manifests. */
async function linkOnlyUnderLayers(v2: string, d: Digest, repo = REPO): Promise<void> {
  await removeTree(dirname(layout.revisionLinkPath(v2, repo, d)), { recursive: true });
  await linkUnderLayers(v2, d, repo);
}

async function linkUnderLayers(v2: string, d: Digest, repo = REPO): Promise<void> {
  const link = layout.layerLinkPath(v2, repo, d);
  await mkdir(dirname(link), { recursive: true });
  await writeFile(link, d);
}

async function status(host: string, ref: string): Promise<number> {
  const r = await fetch(`http://${host}/v2/team/app/manifests/${ref}`, { headers: { accept: ACCEPT } });
  await r.arrayBuffer();
  return r.status;
}

/** A copy of the fixture to damage: its root, its storage root and a scratch directory. */
async function withFixtureCopy(fn: (root: string, v2: string, scratch: string) => Promise<void>): Promise<void> {
  const t = await tempDir();
  try {
    const root = join(t.dir, 'src');
    await copyTree(FIXTURE_ROOT, root);
    await fn(root, join(root, 'docker', 'registry', 'v2'), join(t.dir, 'scratch'));
  } finally {
    await t.cleanup();
  }
}

/** The fixture with team/app:v1 and an untagged manifest linked only under `_layers`. */
async function withFallbackStorage(fn: (root: string, v2: string, scratch: string) => Promise<void>): Promise<void> {
  await withFixtureCopy(async (root, v2, scratch) => {
    await linkOnlyUnderLayers(v2, TAGGED);
    await linkOnlyUnderLayers(v2, UNTAGGED);
    await fn(root, v2, scratch);
  });
}

test('gc keeps a manifest the registry serves through a _layers link, tagged or by digest', async () => {
  await withFallbackStorage(async (root, _v2, scratch) => {
    const served = [
      { name: 'team/app:v1', digest: TAGGED },
      { name: `team/app@${TAGGED}`, digest: TAGGED },
      { name: `team/app@${UNTAGGED}`, digest: UNTAGGED },
    ];
    const before = await startRegistry({ root, readOnly: true });
    try {
      await assertServing(before.host, served, [], join(scratch, 'before'));
    } finally {
      await before.stop();
    }
    const gc = await runCli(['gc', root, '--apply']);
    assert.equal(gc.code, 0, gc.stderr);
    const after = await startRegistry({ root, readOnly: true });
    try {
      await assertServing(after.host, served, [], join(scratch, 'after'));
    } finally {
      await after.stop();
    }
    // --delete-untagged keeps the tagged one and deletes the untagged one.
    const untagged = await runCli(['gc', root, '--apply', '--delete-untagged']);
    assert.equal(untagged.code, 0, untagged.stderr);
    const last = await startRegistry({ root, readOnly: true });
    try {
      await assertServing(last.host, served.slice(0, 2), [`team/app@${UNTAGGED}`], join(scratch, 'last'));
    } finally {
      await last.stop();
    }
  });
});

test('rm repo@digest of a manifest served through a _layers link makes it unservable; so it does when both links exist', async () => {
  await withFallbackStorage(async (root, v2) => {
    const both = currentPush('team/app', 'v2').image.digest;
    await linkUnderLayers(v2, both);
    const before = await startRegistry({ root, readOnly: true });
    try {
      for (const ref of [TAGGED, 'v1', UNTAGGED, both, 'v2']) assert.equal(await status(before.host, ref), 200, ref);
    } finally {
      await before.stop();
    }
    for (const d of [TAGGED, UNTAGGED, both]) {
      const r = await runCli(['rm', root, `team/app@${d}`]);
      assert.equal(r.code, 0, r.stderr);
    }
    const after = await startRegistry({ root, readOnly: true });
    try {
      for (const ref of [TAGGED, 'v1', UNTAGGED, both, 'v2']) assert.equal(await status(after.host, ref), 404, ref);
    } finally {
      await after.stop();
    }
    const again = await runCli(['rm', root, `team/app@${TAGGED}`]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /nor a _layers link.*\[MANIFEST_UNKNOWN\]/);
  });
});

test('gc --apply collects a damaged, unreferenced _layers blob that cannot be a manifest (it does not decode as one)', async () => {
  await withFallbackStorage(async (root, v2) => {
    // A layer nothing references, linked in _layers, whose bytes no longer hash to its digest.
    const bytes = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 1, 2, 3, 4, 5, 6, 7, 8]);
    const d = `sha256:${'ab'.repeat(32)}` as Digest;
    await mkdir(dirname(layout.blobDataPath(v2, d)), { recursive: true });
    await writeFile(layout.blobDataPath(v2, d), bytes);
    await linkUnderLayers(v2, d);
    const r = await runCli(['gc', root, '--apply', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const result = JSON.parse(r.stdout) as { blobs: Array<{ digest: string }> };
    assert.ok(result.blobs.some((b) => b.digest === d), 'the damaged layer is collected');
  });
});

test('rm of an index child refuses while an index served only through a _layers link names it', async () => {
  await withFixtureCopy(async (root, v2) => {
    const tool = parseRepoName('multiarch/tool');
    const list = currentPush('multiarch/tool', '1.0').image as Index;
    // The list is linked only under _layers (2.x serves it so); its children keep their revision links.
    await linkOnlyUnderLayers(v2, list.digest as Digest, tool);
    const child = list.children[0]!.digest;
    const r = await runCli(['rm', root, `multiarch/tool@${child}`]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /child of index .*\[UNSAFE\]/);
    assert.ok(list.children.every((c) => existsSync(layout.revisionLinkPath(v2, tool, c.digest as Digest))), 'no child was deleted');
  });
});

test('rm of an index child refuses while another revision link, holding the index digest (damage), serves that index', async () => {
  await withFixtureCopy(async (root, v2) => {
    const tool = parseRepoName('multiarch/tool');
    const list = currentPush('multiarch/tool', '1.0').image as Index;
    const other = currentPush('multiarch/tool', '1.0-oci').image;
    // The list's own revision link is gone; the OCI index's link holds the list's digest.
    await removeTree(dirname(layout.revisionLinkPath(v2, tool, list.digest as Digest)), { recursive: true });
    await writeFile(layout.revisionLinkPath(v2, tool, other.digest as Digest), list.digest);
    const reg = await startRegistry({ root, readOnly: true });
    try {
      // 2.8 reads the digest in the link: the OCI index's digest gets the list's bytes.
      const r = await fetch(`http://${reg.host}/v2/multiarch/tool/manifests/${other.digest}`, { headers: { accept: ACCEPT } });
      assert.equal(r.status, 200);
      assert.ok(Buffer.from(await r.arrayBuffer()).equals(list.bytes), 'the list is served through the other link');
    } finally {
      await reg.stop();
    }
    const child = list.children[0]!.digest as Digest;
    const r = await runCli(['rm', root, `multiarch/tool@${child}`]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /child of index .*\[UNSAFE\]/);
    assert.ok(existsSync(layout.revisionLinkPath(v2, tool, child)), 'the child was not deleted');
  });
});

test('verify follows a tag served through _layers links down through children served the same way', async () => {
  await withFixtureCopy(async (root, v2) => {
    const tool = parseRepoName('multiarch/tool');
    const list = currentPush('multiarch/tool', '1.0').image as Index;
    const child = list.children[0]! as Image;
    for (const d of [list.digest, child.digest] as Digest[]) await linkOnlyUnderLayers(v2, d, tool);
    // The other indexes of the repository share the child's config: delete them (their tags
    // and revision links), so only the fallback path leads to it.
    for (const tag of ['1.0-oci', 'nested']) {
      const img = currentPush('multiarch/tool', tag).image;
      await removeTree(layout.tagDir(v2, tool, parseTag(tag)), { recursive: true });
      for (const m of manifestsOf(img)) await removeTree(dirname(layout.revisionLinkPath(v2, tool, m.digest as Digest)), { recursive: true, force: true });
    }
    // The child's config loses its _layers link: the registry answers 404 for it.
    await removeTree(dirname(layout.layerLinkPath(v2, tool, child.config.digest as Digest)), { recursive: true });
    const r = await runCli(['verify', root, '--fast', '--json']);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    const findings = (JSON.parse(r.stdout) as { findings: Array<{ code: string; digest?: string }> }).findings;
    assert.ok(findings.some((f) => f.code === 'LAYER_UNLINKED' && f.digest === child.config.digest), JSON.stringify(findings, null, 1));
  });
});

/** Push an image to `repo` through the registry's API (uploads, never mounts), under `tag`. */
async function push(host: string, repo: string, img: Image, tag: string): Promise<void> {
  await new Pusher(host).pushManifest(repo, img, tag, () => 1);
}

test('gc keeps what a manifest served through a _layers link references, also when that manifest is a layer of a kept image', async () => {
  const t = await tempDir();
  try {
    const root = join(t.dir, 'root');
    // Pushed through the registry: `inner`, deleted by digest (its revision link and tag go),
    // then `outer`, whose one layer is inner's manifest bytes: y/_layers links inner again,
    // and 2.8 serves inner by digest through that link.
    const inner = makeImage({ format: 'oci', layers: [makeLayer('served-through-layers')] });
    const outer = makeImage({ format: 'oci', layers: [{ ...blobOf(inner.bytes), diffId: inner.digest }] });
    const reg = await startRegistry({ root });
    try {
      await push(reg.host, 'y', inner, 'inner');
      const del = await fetch(`http://${reg.host}/v2/y/manifests/${inner.digest}`, { method: 'DELETE' });
      assert.equal(del.status, 202, await del.text());
      await push(reg.host, 'y', outer, 'outer');
    } finally {
      await reg.stop();
    }
    const served = [
      { name: 'y:outer', digest: outer.digest },
      { name: `y@${inner.digest}`, digest: inner.digest },
    ];
    const before = await startRegistry({ root, readOnly: true });
    try {
      await assertServing(before.host, served, ['y:inner'], join(t.dir, 'before'));
    } finally {
      await before.stop();
    }
    const gc = await runCli(['gc', root, '--apply', '--json']);
    assert.equal(gc.code, 0, gc.stdout + gc.stderr);
    assert.deepEqual((JSON.parse(gc.stdout) as { blobs: unknown[] }).blobs, [], 'nothing the registry serves is collected');
    const after = await startRegistry({ root, readOnly: true });
    try {
      await assertServing(after.host, served, ['y:inner'], join(t.dir, 'after'));
    } finally {
      await after.stop();
    }
  } finally {
    await t.cleanup();
  }
});

test('rm of a manifest whose bytes are also a layer of an image in the repository refuses (UNSAFE): one _layers link serves both', async () => {
  const t = await tempDir();
  try {
    const root = join(t.dir, 'root');
    const inner = makeImage({ format: 'oci', layers: [makeLayer('rm-layer-manifest')] });
    const outer = makeImage({ format: 'oci', layers: [{ ...blobOf(inner.bytes), diffId: inner.digest }] });
    const reg = await startRegistry({ root });
    try {
      await push(reg.host, 'y', inner, 'inner');
      await push(reg.host, 'y', outer, 'outer');
    } finally {
      await reg.stop();
    }
    const r = await runCli(['rm', root, `y@${inner.digest}`]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /also a config or layer of .*\[UNSAFE\]/);
    const after = await startRegistry({ root, readOnly: true });
    try {
      await assertServing(after.host, [{ name: 'y:outer', digest: outer.digest }, { name: `y@${inner.digest}`, digest: inner.digest }], [], join(t.dir, 'after'));
    } finally {
      await after.stop();
    }
  } finally {
    await t.cleanup();
  }
});
