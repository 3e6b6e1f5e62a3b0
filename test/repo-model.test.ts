/**
 * A repository holds what the registry serves from it, not what the blob store holds: the
 * real registry (docker-registry 2.8.2) deletes, answers 404 and serves; regfs must agree.
 * Manifests are deleted through the registry's API, links removed or moved by hand as
 * storage-formats §3.3 does, and the outputs judged by the registry and skopeo.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { extract } from '../src/ops/extract.js';
import { toDir } from '../src/ops/to-dir.js';
import { inspectImage } from '../src/ops/inspect.js';
import { listImages } from '../src/ops/ls.js';
import { verify } from '../src/ops/verify.js';
import { isRegfsError, type RegfsError } from '../src/errors.js';
import { digestOf, type Digest } from '../src/digest.js';
import { MAX_INDEX_DEPTH, MediaTypes } from '../src/manifest.js';
import { parseRepoName, parseTag } from '../src/reference.js';
import * as layout from '../src/registry/layout.js';
import { startRegistry, type RegistryServer } from '../scripts/lib/registry-server.js';
import { makeImage, makeLayer, manifestsOf, type Image } from '../scripts/lib/images.js';
import { FIXTURE_ROOT, currentPush } from './helpers/fixture.js';
import { assertServed } from './helpers/judge.js';
import { runCli } from './helpers/cli.js';
import { copyTree, tempDir, writeListFile } from './helpers/tree.js';

const V2 = 'docker/registry/v2';
const ACCEPT = [MediaTypes.dockerManifest, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.ociIndex].join(', ');

const APP = parseRepoName('team/app');
const TOOL = parseRepoName('multiarch/tool');
const v1 = currentPush('team/app', 'v1').image as Image;
const v2img = currentPush('team/app', 'v2').image as Image;
const tool = currentPush('multiarch/tool', '1.0').image;
const [, amdChild, armChild] = manifestsOf(tool) as [unknown, Image, Image];

async function withSource(fn: (dir: string, src: string) => Promise<void>): Promise<void> {
  const t = await tempDir();
  try {
    const src = join(t.dir, 'src');
    await copyTree(FIXTURE_ROOT, src);
    await fn(t.dir, src);
  } finally {
    await t.cleanup();
  }
}

async function withRegistry<T>(root: string, fn: (reg: RegistryServer) => Promise<T>): Promise<T> {
  const reg = await startRegistry({ root });
  try {
    return await fn(reg);
  } finally {
    await reg.stop();
  }
}

/** The registry's status for a manifest or blob request. */
async function status(reg: RegistryServer, path: string, method = 'GET'): Promise<number> {
  const res = await fetch(`http://${reg.host}/v2/${path}`, { method, headers: { Accept: ACCEPT } });
  await res.arrayBuffer();
  return res.status;
}

/** The problems of an INCOMPLETE rejection. */
async function problemsOf(p: Promise<unknown>): Promise<readonly RegfsError[]> {
  let problems: readonly RegfsError[] = [];
  await assert.rejects(p, (e) => {
    assert.ok(isRegfsError(e, 'INCOMPLETE'), String(e));
    problems = e.problems;
    return true;
  });
  return problems;
}

test('a manifest deleted through the registry API stays deleted: extract, to-dir and inspect refuse it', async () => {
  await withSource(async (dir, src) => {
    await withRegistry(src, async (reg) => {
      assert.equal(await status(reg, `team/app/manifests/${v1.digest}`, 'DELETE'), 202);
      assert.equal(await status(reg, `team/app/manifests/${v1.digest}`), 404);
    });
    // Its data is still in the blob store: only the revision link (and the tag) went.
    await stat(layout.blobDataPath(join(src, V2), v1.digest));
    const ref = `team/app@${v1.digest}`;
    const problems = await problemsOf(extract({ list: await writeListFile(dir, [ref]), source: src, output: join(dir, 'x') }));
    assert.deepEqual(problems.map((p) => p.code), ['MANIFEST_UNKNOWN']);
    await assert.rejects(stat(join(dir, 'x')));
    const td = await problemsOf(toDir({ image: ref, source: src, output: join(dir, 'd') }));
    assert.deepEqual(td.map((p) => p.code), ['MANIFEST_UNKNOWN']);
    await assert.rejects(inspectImage({ root: src, ref }), (e) => isRegfsError(e, 'MANIFEST_UNKNOWN'));
    // With --keep-going the rest is written, and the output's registry does not serve it either.
    const out = join(dir, 'out');
    const r = await runCli(['extract', await writeListFile(dir, [ref, 'team/app:v2']), src, out, '--keep-going']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /\[MANIFEST_UNKNOWN\]/);
    await assertServed(out, [{ name: 'team/app:v2', digest: v2img.digest }], [ref], join(dir, 'scratch'));
  });
});

test('an index one of whose children was deleted through the API is broken: refused, or left out with --keep-going', async () => {
  await withSource(async (dir, src) => {
    await withRegistry(src, async (reg) => {
      assert.equal(await status(reg, `multiarch/tool/manifests/${armChild.digest}`, 'DELETE'), 202);
      assert.equal(await status(reg, `multiarch/tool/manifests/${armChild.digest}`), 404);
      // The index itself is still served; pulling it whole is not possible.
      assert.equal(await status(reg, 'multiarch/tool/manifests/1.0'), 200);
    });
    const problems = await problemsOf(extract({ list: await writeListFile(dir, ['multiarch/tool:1.0']), source: src, output: join(dir, 'x') }));
    assert.deepEqual(problems.map((p) => [p.code, p.digest]), [['CHILD_MISSING', armChild.digest]]);
    assert.match(problems[0]!.message, new RegExp(`${armChild.digest}.*linux/arm64`));
    const td = await problemsOf(toDir({ image: 'multiarch/tool:1.0', source: src, output: join(dir, 'd'), platform: 'linux/amd64' }));
    assert.deepEqual(td.map((p) => p.code), ['CHILD_MISSING']);

    const out = join(dir, 'out');
    const r = await runCli(['extract', await writeListFile(dir, ['multiarch/tool:1.0', 'team/app:v1']), src, out, '--keep-going', '--json']);
    assert.equal(r.code, 3, r.stderr);
    const json = JSON.parse(r.stdout) as { images: Array<{ ref: string }>; problems: Array<{ code: string }> };
    assert.deepEqual(json.images.map((i) => i.ref), ['team/app:v1']);
    assert.deepEqual(json.problems.map((p) => p.code), ['CHILD_MISSING']);
    await assert.rejects(stat(layout.blobDataPath(join(out, V2), tool.digest)), 'nothing of the broken index is written');
    await assertServed(out, [{ name: 'team/app:v1', digest: v1.digest }], ['multiarch/tool:1.0'], join(dir, 'scratch'));
  });
});

test('a config or layer without its _layers link is LAYER_UNLINKED; --repair writes the link and the output serves the image', async () => {
  await withSource(async (dir, src) => {
    const v2root = join(src, V2);
    const config = v1.config.digest;
    const layer = v1.layers[0]!.digest;
    await rm(dirname(layout.layerLinkPath(v2root, APP, config)), { recursive: true });
    await rm(dirname(layout.layerLinkPath(v2root, APP, layer)), { recursive: true });
    // The source registry answers 404 for both, though their data is there.
    await withRegistry(src, async (reg) => {
      assert.equal(await status(reg, `team/app/blobs/${config}`, 'HEAD'), 404);
      assert.equal(await status(reg, `team/app/blobs/${layer}`, 'HEAD'), 404);
      assert.equal(await status(reg, 'team/app/manifests/v1'), 200);
    });
    const list = await writeListFile(dir, ['team/app:v1']);
    const problems = await problemsOf(extract({ list, source: src, output: join(dir, 'x') }));
    assert.deepEqual(problems.map((p) => [p.code, p.digest]).sort(), [['LAYER_UNLINKED', config], ['LAYER_UNLINKED', layer]].sort());
    assert.ok(problems.every((p) => p.message.includes('--repair')));
    const td = await problemsOf(toDir({ image: 'team/app:v1', source: src, output: join(dir, 'd') }));
    assert.deepEqual(td.map((p) => p.code), ['LAYER_UNLINKED', 'LAYER_UNLINKED']);

    const dry = await runCli(['extract', list, src, join(dir, 'dry'), '--repair', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would write links the source lacks: 2 _layers links/);
    const out = join(dir, 'out');
    const r = await runCli(['extract', list, src, out, '--repair', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as { repaired: Array<{ repo: string; digest: string; link: string; missing: string }> };
    assert.deepEqual(
      json.repaired.map((x) => [x.repo, x.digest, x.link, x.missing]).sort(),
      [
        ['team/app', config, 'layers', layout.layerLinkPath(v2root, APP, config)],
        ['team/app', layer, 'layers', layout.layerLinkPath(v2root, APP, layer)],
      ].sort(),
    );
    await assertServed(out, [{ name: 'team/app:v1', digest: v1.digest }], [], join(dir, 'scratch'));

    const exported = join(dir, 'exported');
    const t = await runCli(['to-dir', '--image', 'team/app:v1', src, exported, '--repair', '--json']);
    assert.equal(t.code, 0, t.stderr);
    assert.equal((JSON.parse(t.stdout) as { repaired: unknown[] }).repaired.length, 2);
    await stat(join(exported, config.slice(7)));
    await stat(join(exported, layer.slice(7)));
  });
});

test('a manifest the registry serves through its _layers link alone is accepted, and gets a revision link in the output', async () => {
  await withSource(async (dir, src) => {
    const v2root = join(src, V2);
    // storage-formats §3.3, last row: a revision link replaced by a _layers link, for an index child and a tagged manifest.
    const move = async (repo: typeof APP, d: Digest): Promise<void> => {
      await rm(dirname(layout.revisionLinkPath(v2root, repo, d)), { recursive: true });
      await mkdir(dirname(layout.layerLinkPath(v2root, repo, d)), { recursive: true });
      await writeFile(layout.layerLinkPath(v2root, repo, d), d);
    };
    await move(TOOL, amdChild.digest);
    await move(APP, v1.digest);
    await withRegistry(src, async (reg) => {
      assert.equal(await status(reg, `multiarch/tool/manifests/${amdChild.digest}`), 200);
      assert.equal(await status(reg, 'team/app/manifests/v1'), 200);
    });
    const out = join(dir, 'out');
    const r = await runCli(['extract', await writeListFile(dir, ['multiarch/tool:1.0', 'team/app:v1']), src, out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as { repaired: Array<{ repo: string; digest: string; link: string }> };
    assert.deepEqual(
      json.repaired.map((x) => [x.repo, x.digest, x.link]).sort(),
      [
        ['multiarch/tool', amdChild.digest, 'revision'],
        ['team/app', v1.digest, 'revision'],
      ].sort(),
    );
    const outV2 = join(out, V2);
    await stat(layout.revisionLinkPath(outV2, TOOL, amdChild.digest));
    await stat(layout.revisionLinkPath(outV2, APP, v1.digest));
    await assertServed(
      out,
      [
        { name: 'multiarch/tool:1.0', digest: tool.digest },
        { name: 'team/app:v1', digest: v1.digest },
      ],
      [],
      join(dir, 'scratch'),
    );
    // ls, inspect and verify agree: the tag is served.
    const ls = await listImages({ root: src, pattern: 'team/app:v1' });
    assert.equal(ls.repositories[0]!.tags[0]!.error, undefined);
    assert.equal((await inspectImage({ root: src, ref: 'team/app:v1' })).digest, v1.digest);
    const ins = await inspectImage({ root: src, ref: 'multiarch/tool:1.0' });
    assert.ok(ins.manifests.every((m) => m.linked));
    const findings = (await verify({ root: src, fast: true })).findings.filter((f) => f.path.includes('/team/app/') || f.path.includes('/multiarch/tool/'));
    assert.deepEqual(findings, []);
  });
});

test('ls, inspect and verify agree with the registry on a tag without a revision link and on an unlinked layer', async () => {
  await withSource(async (dir, src) => {
    const v2root = join(src, V2);
    await rm(dirname(layout.revisionLinkPath(v2root, APP, v2img.digest)), { recursive: true });
    await rm(dirname(layout.layerLinkPath(v2root, APP, v1.layers[0]!.digest)), { recursive: true });
    await withRegistry(src, async (reg) => {
      assert.equal(await status(reg, 'team/app/manifests/v2'), 404);
      assert.equal(await status(reg, `team/app/blobs/${v1.layers[0]!.digest}`, 'HEAD'), 404);
    });
    const ls = await listImages({ root: src, pattern: 'team/app:v*' });
    const tags = new Map(ls.repositories[0]!.tags.map((t) => [t.tag, t]));
    assert.equal(tags.get(parseTag('v2'))?.error?.code, 'MANIFEST_UNKNOWN');
    assert.equal(tags.get(parseTag('v1'))?.missing, 1, 'the unlinked layer is not served');
    const cli = await runCli(['ls', src, 'team/app:v2']);
    assert.match(cli.stdout + cli.stderr, /MANIFEST_UNKNOWN/);
    await assert.rejects(inspectImage({ root: src, ref: 'team/app:v2' }), (e) => isRegfsError(e, 'MANIFEST_UNKNOWN'));
    const ins = await inspectImage({ root: src, ref: 'team/app:v1' });
    assert.deepEqual(ins.layers.map((l) => l.linked), [false, ...v1.layers.slice(1).map(() => true)]);
    assert.equal(ins.missing, 1);
    const all = await verify({ root: src, fast: true });
    assert.ok(all.findings.some((f) => f.code === 'TAG_DANGLING' && f.path === layout.tagCurrentLinkPath(v2root, APP, parseTag('v2'))));
    assert.ok(all.findings.some((f) => f.code === 'LAYER_UNLINKED' && f.digest === v1.layers[0]!.digest));
    const listed = await verify({ root: src, fast: true, list: await writeListFile(dir, ['team/app:v1', 'team/app:v2']) });
    assert.deepEqual(listed.findings.map((f) => [f.code, f.digest]).sort(), [['LAYER_UNLINKED', v1.layers[0]!.digest], ['MANIFEST_UNKNOWN', v2img.digest]].sort());
    // The linked blobs of v1 are still hashed.
    assert.equal(listed.counts.blobs, 1 + v1.layers.length);
  });
});

/** Write a blob straight into storage (no registry, no regfs writer). */
async function putBlob(v2root: string, bytes: Buffer): Promise<Digest> {
  const d = digestOf(bytes);
  await mkdir(layout.blobDir(v2root, d), { recursive: true });
  await writeFile(layout.blobDataPath(v2root, d), bytes);
  return d;
}

async function putLink(path: string, d: Digest): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, d);
}

/**
 * `deep/chain:TAG`: an image manifest under `depth` nested OCI indexes, each with one child,
 * written as blobs and links. With `shortcuts`, the top index also names every index of the
 * chain directly: each is one level below the top, but the longest path is as long as before.
 */
async function writeChain(root: string, tag: string, depth: number, opts: { shortcuts?: boolean } = {}): Promise<Digest> {
  const v2root = join(root, V2);
  const repo = parseRepoName('deep/chain');
  const img = makeImage({ format: 'oci', layers: [makeLayer('deep-chain')] });
  for (const b of [img.config, ...img.layers]) await putLink(layout.layerLinkPath(v2root, repo, await putBlob(v2root, b.bytes)), b.digest);
  let child: { mediaType: string; digest: Digest; size: number; platform?: object } = {
    mediaType: MediaTypes.ociManifest,
    digest: await putBlob(v2root, img.bytes),
    size: img.size,
    platform: { os: 'linux', architecture: 'amd64' },
  };
  await putLink(layout.revisionLinkPath(v2root, repo, child.digest), child.digest);
  const chain: object[] = [];
  for (let i = 0; i < depth; i++) {
    const last = i === depth - 1;
    const manifests = last && opts.shortcuts === true ? [child, ...chain] : [child];
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }));
    chain.push(child);
    child = { mediaType: MediaTypes.ociIndex, digest: await putBlob(v2root, bytes), size: bytes.length };
    await putLink(layout.revisionLinkPath(v2root, repo, child.digest), child.digest);
  }
  await putLink(layout.tagCurrentLinkPath(v2root, repo, parseTag(tag)), child.digest);
  return child.digest;
}

test(`nested indexes: a chain ${MAX_INDEX_DEPTH} deep is extracted and served; deeper, and 10,000 deep, is INDEX_TOO_DEEP without recursion`, async () => {
  const t = await tempDir();
  try {
    const src = join(t.dir, 'src');
    const atMax = await writeChain(src, 'max', MAX_INDEX_DEPTH);
    await writeChain(src, 'over', MAX_INDEX_DEPTH + 1);
    await writeChain(src, 'long-path', MAX_INDEX_DEPTH + 1, { shortcuts: true });
    await writeChain(src, 'deep', 10_000);

    const out = join(t.dir, 'out');
    const r = await extract({ list: await writeListFile(t.dir, ['deep/chain:max']), source: src, output: out });
    assert.equal(r.images[0]?.manifests, MAX_INDEX_DEPTH + 1);
    await assertServed(out, [{ name: 'deep/chain:max', digest: atMax }], [], join(t.dir, 'scratch'));
    const dirOut = join(t.dir, 'dir');
    const d = await toDir({ image: 'deep/chain:max', source: src, output: dirOut, platform: 'linux/amd64' });
    assert.equal(d.images[0]?.kind, 'oci');
    assert.equal((await inspectImage({ root: src, ref: 'deep/chain:max' })).platforms.join(), 'linux/amd64');

    for (const tag of ['over', 'long-path', 'deep']) {
      const problems = await problemsOf(extract({ list: await writeListFile(t.dir, [`deep/chain:${tag}`]), source: src, output: join(t.dir, 'x') }));
      assert.deepEqual(problems.map((p) => p.code), ['INDEX_TOO_DEEP'], tag);
      assert.match(problems[0]!.message, new RegExp(`more than ${MAX_INDEX_DEPTH} levels`));
      const td = await problemsOf(toDir({ image: `deep/chain:${tag}`, source: src, output: join(t.dir, 'd') }));
      assert.deepEqual(td.map((p) => p.code), ['INDEX_TOO_DEEP'], tag);
    }
    // ls lists the too-deep tags as broken; inspect refuses them; the CLI gives the code, no stack trace.
    const ls = await listImages({ root: src, pattern: 'deep/chain' });
    const errors = new Map(ls.repositories[0]!.tags.map((x) => [x.tag, x.error?.code]));
    assert.deepEqual(Object.fromEntries(errors), { deep: 'INDEX_TOO_DEEP', 'long-path': 'INDEX_TOO_DEEP', max: undefined, over: 'INDEX_TOO_DEEP' });
    await assert.rejects(inspectImage({ root: src, ref: 'deep/chain:deep' }), (e) => isRegfsError(e, 'INDEX_TOO_DEEP'));
    // ls says the registry serves them (it does: only regfs's limit stops there), not that it cannot.
    const lsCli = await runCli(['ls', src, 'deep/chain']);
    assert.equal(lsCli.code, 0, lsCli.stderr);
    assert.match(lsCli.stderr, new RegExp(`warning: 3 tags nest indexes deeper than regfs's limit of ${MAX_INDEX_DEPTH} \\(listed with the error\\); the registry serves them, but regfs does not walk them`));
    assert.doesNotMatch(lsCli.stderr, /cannot serve/);
    const cli = await runCli(['extract', await writeListFile(t.dir, ['deep/chain:deep']), src, join(t.dir, 'y')]);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /\[INDEX_TOO_DEEP\]/);
    assert.doesNotMatch(cli.stderr, /internal error|RangeError/);
  } finally {
    await t.cleanup();
  }
});
