/**
 * Manifests whose JSON Go reads differently from JavaScript, against docker-registry 2.8.2:
 * pushed over HTTP, what the registry accepts it serves, and regfs must see in it the blobs
 * the registry sees (its garbage collector is the judge: both find the same blobs unused);
 * written straight into storage, what the registry cannot decode it does not serve, and regfs
 * refuses it (MANIFEST_INVALID), so gc will not guess (UNSAFE).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf, type Digest } from '../src/digest.js';
import { isRegfsError } from '../src/errors.js';
import { MediaTypes, referencedBlobs } from '../src/manifest.js';
import { gc } from '../src/ops/gc.js';
import { inspectImage } from '../src/ops/inspect.js';
import { parseRepoName, parseTag } from '../src/reference.js';
import { RegistryReader } from '../src/registry/read.js';
import * as layout from '../src/registry/layout.js';
import { registryGarbageCollectDryRun, startRegistry, type RegistryServer } from '../scripts/lib/registry-server.js';
import { blobOf, makeImage, makeLayer, type Blob } from '../scripts/lib/images.js';
import { tempDir } from './helpers/tree.js';

const ACCEPT = [MediaTypes.dockerManifest, MediaTypes.ociManifest, MediaTypes.dockerManifestList, MediaTypes.ociIndex].join(', ');

async function pushBlob(base: string, repo: string, b: Blob): Promise<void> {
  const start = await fetch(`${base}/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202, await start.text());
  const loc = new URL(start.headers.get('location')!, base);
  loc.searchParams.set('digest', b.digest);
  const put = await fetch(loc, { method: 'PUT', body: b.bytes, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(put.status, 201, await put.text());
}

async function putManifest(base: string, repo: string, tag: string, bytes: Buffer, mediaType: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`${base}/${repo}/manifests/${tag}`, { method: 'PUT', body: bytes, headers: { 'content-type': mediaType } });
  return { status: r.status, body: await r.text() };
}

async function getManifest(base: string, repo: string, ref: string): Promise<{ status: number; bytes: Buffer }> {
  const r = await fetch(`${base}/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT } });
  return { status: r.status, bytes: Buffer.from(await r.arrayBuffer()) };
}

/** One image's blobs, and a layer pushed beside them that the manifest names only in a way Go ignores. */
function parts(seed: string): { config: Blob; layer: Blob; decoy: Blob; desc: (b: Blob, type: string) => object } {
  const img = makeImage({ format: 'docker', layers: [makeLayer(`json-${seed}`)], labels: { seed } });
  return {
    config: img.config,
    layer: img.layers[0]!,
    decoy: makeLayer(`json-decoy-${seed}`),
    desc: (b, type) => ({ mediaType: type, size: b.size, digest: b.digest }),
  };
}

interface Variant {
  name: string;
  /** The manifest bytes, given the blobs. */
  bytes: (p: ReturnType<typeof parts>) => string;
  /** The blobs the registry references through it (config and layers). */
  refs: (p: ReturnType<typeof parts>) => Blob[];
}

const DOCKER = MediaTypes.dockerManifest;
const C = MediaTypes.dockerConfig;
const L = MediaTypes.dockerLayer;

/** Manifests 2.8.2 accepts, each read by Go in a way JSON.parse alone would not. */
const ACCEPTED: Variant[] = [
  {
    name: 'capitalised-keys',
    bytes: (p) => JSON.stringify({ SchemaVersion: 2, MediaType: DOCKER, Config: p.desc(p.config, C), Layers: [p.desc(p.layer, L)] }),
    refs: (p) => [p.config, p.layer],
  },
  {
    name: 'duplicate-layers-other-case',
    bytes: (p) => `{"schemaVersion":2,"mediaType":"${DOCKER}","config":${JSON.stringify(p.desc(p.config, C))},"layers":[${JSON.stringify(p.desc(p.decoy, L))}],"LAYERS":[${JSON.stringify(p.desc(p.layer, L))}]}`,
    refs: (p) => [p.config, p.layer],
  },
  {
    name: 'duplicate-layers-last-empty',
    bytes: (p) => `{"schemaVersion":2,"mediaType":"${DOCKER}","config":${JSON.stringify(p.desc(p.config, C))},"layers":[${JSON.stringify(p.desc(p.decoy, L))}],"layers":[]}`,
    refs: (p) => [p.config],
  },
  {
    // The second object is decoded into the struct the first filled: the digest stays.
    name: 'duplicate-config-merged',
    bytes: (p) => `{"schemaVersion":2,"mediaType":"${DOCKER}","config":${JSON.stringify(p.desc(p.config, C))},"Config":{"size":${p.config.size}},"layers":[${JSON.stringify(p.desc(p.layer, L))}]}`,
    refs: (p) => [p.config, p.layer],
  },
  {
    // Go folds U+017F (long s) to s when it matches keys to fields.
    name: 'long-s-key',
    bytes: (p) => `{"schemaVersion":2,"mediaType":"${DOCKER}","config":${JSON.stringify(p.desc(p.config, C))},"layer\u017f":[${JSON.stringify(p.desc(p.layer, L))}]}`,
    refs: (p) => [p.config, p.layer],
  },
  {
    // Fields 2.8's structs do not have are skipped whatever they hold.
    name: 'unknown-fields-any-type',
    bytes: (p) => JSON.stringify({ schemaVersion: 2, mediaType: DOCKER, config: p.desc(p.config, C), layers: [p.desc(p.layer, L)], annotations: { a: 1 }, subject: 5, extra: [null, { x: 1 }] }),
    refs: (p) => [p.config, p.layer],
  },
];

/** Manifests 2.8.2 refuses on push and cannot serve when they are written into storage. */
const REFUSED: Array<{ name: string; bytes: (p: ReturnType<typeof parts>) => string }> = [
  { name: 'byte-order-mark', bytes: (p) => `\ufeff${JSON.stringify({ schemaVersion: 2, mediaType: DOCKER, config: p.desc(p.config, C), layers: [] })}` },
  { name: 'trailing-bytes', bytes: (p) => `${JSON.stringify({ schemaVersion: 2, mediaType: DOCKER, config: p.desc(p.config, C), layers: [] })} x` },
  { name: 'size-as-string', bytes: (p) => JSON.stringify({ schemaVersion: 2, mediaType: DOCKER, config: { ...p.desc(p.config, C), size: String(p.config.size) }, layers: [] }) },
  { name: 'size-with-fraction', bytes: (p) => JSON.stringify({ schemaVersion: 2, mediaType: DOCKER, config: p.desc(p.config, C), layers: [] }).replace(`"size":${p.config.size}`, `"size":${p.config.size}.0`) },
  { name: 'size-with-exponent', bytes: (p) => JSON.stringify({ schemaVersion: 2, mediaType: DOCKER, config: p.desc(p.config, C), layers: [] }).replace(`"size":${p.config.size}`, `"size":${p.config.size}e0`) },
  { name: 'schema-version-as-string', bytes: (p) => JSON.stringify({ schemaVersion: '2', mediaType: DOCKER, config: p.desc(p.config, C), layers: [] }) },
  { name: 'media-type-as-number', bytes: (p) => JSON.stringify({ schemaVersion: 2, mediaType: 5, config: p.desc(p.config, C), layers: [] }) },
  { name: 'urls-of-numbers', bytes: (p) => JSON.stringify({ schemaVersion: 2, mediaType: DOCKER, config: p.desc(p.config, C), layers: [{ ...p.desc(p.layer, L), urls: [1] }] }) },
  { name: 'platform-as-string', bytes: (p) => JSON.stringify({ schemaVersion: 2, mediaType: DOCKER, config: { ...p.desc(p.config, C), platform: 'linux' }, layers: [] }) },
];

let reg: RegistryServer;
let root: string;
let cleanup: () => Promise<void>;
let base: string;

before(async () => {
  ({ dir: root, cleanup } = await tempDir('regfs-json-'));
  reg = await startRegistry({ root });
  base = `http://${reg.host}/v2`;
});

after(async () => {
  await reg.stop();
  await cleanup();
});

test('manifests 2.8.2 accepts with Go-only readings: regfs sees the blobs the registry sees', async () => {
  const expectUnused: string[] = [];
  for (const v of ACCEPTED) {
    const p = parts(v.name);
    const repo = `json/${v.name}`;
    for (const b of [p.config, p.layer, p.decoy]) await pushBlob(base, repo, b);
    const bytes = Buffer.from(v.bytes(p));
    const put = await putManifest(base, repo, 'v1', bytes, DOCKER);
    assert.equal(put.status, 201, `${v.name}: ${put.body}`);
    const got = await getManifest(base, repo, digestOf(bytes));
    assert.equal(got.status, 200, v.name);
    assert.ok(got.bytes.equals(bytes), `${v.name}: served other bytes`);
    const reader = await RegistryReader.open(root);
    const m = await reader.manifest(digestOf(bytes));
    assert.deepEqual(referencedBlobs(m).map((d) => d.digest).sort(), v.refs(p).map((b) => b.digest).sort(), v.name);
    for (const b of [p.layer, p.decoy]) if (!v.refs(p).includes(b)) expectUnused.push(b.digest);
  }
  // The registry's own garbage collector, which decodes with Go, agrees with regfs's plan.
  const theirs = await registryGarbageCollectDryRun(root);
  const ours = await gc({ root });
  assert.deepEqual(ours.problems, []);
  assert.deepEqual(ours.blobs.map((b) => b.digest).sort(), [...theirs.blobsEligible].sort());
  assert.deepEqual([...theirs.blobsEligible].sort(), expectUnused.sort());
});

test('manifests 2.8.2 cannot decode: refused on push, not served from storage, MANIFEST_INVALID in regfs, and gc refuses', async () => {
  const { dir, cleanup: done } = await tempDir('regfs-json-direct-');
  const direct = await startRegistry({ root: dir, readOnly: true });
  try {
    const v2 = layout.storageRoot(dir);
    for (const v of REFUSED) {
      const p = parts(v.name);
      const repo = parseRepoName(`json/${v.name}`);
      const bytes = Buffer.from(v.bytes(p));
      for (const b of [p.config, p.layer]) await pushBlob(base, repo, b);
      const put = await putManifest(base, repo, 'v1', bytes, DOCKER);
      assert.equal(put.status, 400, `${v.name}: the registry accepted it`);
      // Written straight into storage, as a tool or a hand could.
      const d = digestOf(bytes) as Digest;
      for (const b of [...[p.config, p.layer], blobOf(bytes)]) {
        await mkdir(layout.blobDir(v2, b.digest), { recursive: true });
        await writeFile(layout.blobDataPath(v2, b.digest), b.bytes);
      }
      for (const [path, target] of [
        [layout.revisionLinkPath(v2, repo, d), d],
        [layout.tagCurrentLinkPath(v2, repo, parseTag('v1')), d],
        [layout.layerLinkPath(v2, repo, p.config.digest), p.config.digest],
      ] as const) {
        await mkdir(join(path, '..'), { recursive: true });
        await writeFile(path, target);
      }
      const got = await getManifest(`http://${direct.host}/v2`, repo, 'v1');
      assert.notEqual(got.status, 200, `${v.name}: the registry served it`);
      await assert.rejects(inspectImage({ root: dir, ref: `${repo}:v1` }), (e) => isRegfsError(e, 'MANIFEST_INVALID') && e.path === layout.blobDataPath(v2, d), v.name);
    }
    await assert.rejects(registryGarbageCollectDryRun(dir), /failed/);
    await assert.rejects(gc({ root: dir, apply: true }), (e) => isRegfsError(e, 'UNSAFE') && e.problems.length === REFUSED.length);
  } finally {
    await direct.stop();
    await done();
  }
});
