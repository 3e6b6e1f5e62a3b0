import { test } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf, type Digest } from '../src/digest.js';
import { MediaTypes, parseManifest, referencedBlobs } from '../src/manifest.js';
import { isRegfsError } from '../src/errors.js';

const h = (c: string): Digest => `sha256:${c.repeat(64)}` as Digest;
const desc = (c: string, size = 10, extra: object = {}) => ({ mediaType: 'x', digest: h(c), size, ...extra });
const parse = (doc: unknown) => {
  const raw = Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc));
  return parseManifest(raw, digestOf(raw), 'm');
};

test('manifest: Docker schema2', () => {
  const m = parse({ schemaVersion: 2, mediaType: MediaTypes.dockerManifest, config: desc('a'), layers: [desc('b'), desc('c'), desc('b')] });
  assert.equal(m.kind, 'docker');
  assert.deepEqual(referencedBlobs(m).map((d) => d.digest), [h('a'), h('b'), h('c')]);
});

test('manifest: OCI with and without mediaType, artifact with subject', () => {
  assert.equal(parse({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: desc('a'), layers: [] }).kind, 'oci');
  const bare = parse({ schemaVersion: 2, config: desc('a'), layers: [desc('b')] });
  assert.equal(bare.kind, 'oci');
  assert.equal(bare.mediaType, MediaTypes.ociManifest);
  const art = parse({
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    artifactType: 'application/vnd.example.sbom',
    config: desc('e', 2),
    layers: [desc('f')],
    subject: desc('9'),
  });
  assert.equal(art.artifactType, 'application/vnd.example.sbom');
  assert.equal(art.subject?.digest, h('9'));
  // The subject is a weak reference: not a blob to copy.
  assert.deepEqual(referencedBlobs(art).map((d) => d.digest), [h('e'), h('f')]);
});

test('manifest: Docker list, OCI index (with and without mediaType), nested', () => {
  const list = parse({
    schemaVersion: 2,
    mediaType: MediaTypes.dockerManifestList,
    manifests: [desc('1', 5, { platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }), desc('2')],
  });
  assert.equal(list.kind, 'docker-list');
  assert.deepEqual(list.manifests.map((c) => c.digest), [h('1'), h('2')]);
  assert.equal(list.manifests[0]!.platform?.variant, 'v7');
  assert.deepEqual(referencedBlobs(list), []);
  assert.equal(parse({ schemaVersion: 2, manifests: [desc('3', 5, { mediaType: MediaTypes.ociIndex })] }).kind, 'oci-index');
});

test('manifest: schema1 unsigned and signed use fsLayers only, never strings in v1Compatibility', () => {
  const v1c = JSON.stringify({ id: 'f'.repeat(64), parent: 'e'.repeat(64), config: { Image: h('d') } });
  const body = { schemaVersion: 1, name: 'a', tag: 't', architecture: 'amd64', fsLayers: [{ blobSum: h('a') }, { blobSum: h('b') }, { blobSum: h('a') }], history: [{ v1Compatibility: v1c }] };
  const m = parse(body);
  assert.equal(m.kind, 'schema1');
  assert.deepEqual(referencedBlobs(m).map((d) => d.digest), [h('a'), h('b')]);
  const signed = parse({ ...body, signatures: [{ header: {}, signature: 'x', protected: 'y' }] });
  assert.equal(signed.kind, 'schema1-signed');
});

test('manifest: bytes that do not hash to the digest are DIGEST_MISMATCH', () => {
  const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, config: desc('a'), layers: [] }));
  assert.throws(() => parseManifest(raw, h('0'), '/x/data'), (e) => isRegfsError(e, 'DIGEST_MISMATCH') && e.path === '/x/data');
});

test('manifest: not JSON, wrong shapes and unknown media types are MANIFEST_INVALID', () => {
  for (const bad of [
    'not json',
    '{"schemaVersion": 2, "config": ',
    '[]',
    { schemaVersion: 3 },
    { schemaVersion: 2, mediaType: 'application/vnd.example.unknown', layers: [] },
    { schemaVersion: 2 },
    { schemaVersion: 2, config: { digest: 'sha256:short', size: 1 }, layers: [] },
    { schemaVersion: 2, config: desc('a', -1), layers: [] },
    { schemaVersion: 2, manifests: 'x' },
    { schemaVersion: 1, fsLayers: [] },
    { schemaVersion: 1, fsLayers: [{ blobSum: 'nope' }] },
  ]) {
    assert.throws(() => parse(bad), (e) => isRegfsError(e, 'MANIFEST_INVALID'), JSON.stringify(bad));
  }
});

test('manifest: as lenient as the 2.8 registry where it stores and serves (no layers, odd subject or artifactType)', () => {
  const m = parse({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: desc('a') });
  assert.deepEqual(m.layers, []);
  assert.deepEqual(referencedBlobs(m).map((d) => d.digest), [h('a')]);
  const odd = parse({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: desc('a'), layers: [], subject: 'nope', artifactType: 7 });
  assert.equal(odd.subject, undefined);
  assert.equal(odd.artifactType, undefined);
});

test('manifest: read as Go reads it: keys match case-insensitively, the last duplicate wins, objects and arrays merge', () => {
  const D = MediaTypes.dockerManifest;
  const m = parse(`{"schemaVersion":2,"mediaType":"${D}","Config":${JSON.stringify(desc('a'))},"layers":[${JSON.stringify(desc('b'))}],"LAYERS":[${JSON.stringify(desc('c'))}]}`);
  assert.deepEqual(referencedBlobs(m).map((d) => d.digest), [h('a'), h('c')]);
  // An array is decoded element by element into the one before: fields the second lacks stay,
  // and elements past a shorter array's end come back when a longer one follows (Go's backing array).
  const merged = parse(`{"schemaVersion":2,"mediaType":"${D}","config":${JSON.stringify(desc('a'))},"layers":[${JSON.stringify(desc('b', 10, { urls: ['https://x'] }))},${JSON.stringify(desc('c'))}],"layers":[{"size":5}],"layers":[{"size":6},{"size":7}]}`);
  assert.deepEqual(merged.layers.map((d) => [d.digest, d.size, d.urls]), [[h('b'), 6, ['https://x']], [h('c'), 7, undefined]]);
  // null keeps a struct and a string, empties a slice.
  const nulls = parse(`{"schemaVersion":2,"mediaType":"${D}","config":${JSON.stringify(desc('a'))},"config":null,"layers":[${JSON.stringify(desc('b'))}],"layers":null}`);
  assert.deepEqual(referencedBlobs(nulls).map((d) => d.digest), [h('a')]);
  // Without a mediaType, an index is whatever decodes with a manifests array, whatever its case.
  assert.equal(parse({ schemaVersion: 2, Manifests: [desc('d')] }).kind, 'oci-index');
  assert.equal(parse({ schemaVersion: 2, manifests: null, config: desc('a') }).kind, 'oci');
  // A missing size is Go's zero.
  assert.equal(parse({ schemaVersion: 2, mediaType: D, config: { digest: h('a') } }).config?.size, 0);
});

test('manifest: what Go refuses to decode is MANIFEST_INVALID (BOM, trailing bytes, wrong types, non-integer numbers, depth)', () => {
  const D = MediaTypes.dockerManifest;
  const good = { schemaVersion: 2, mediaType: D, config: desc('a'), layers: [] };
  for (const bad of [
    `\ufeff${JSON.stringify(good)}`,
    `${JSON.stringify(good)} x`,
    `${JSON.stringify(good)}{}`,
    JSON.stringify(good).replace('"size":10', '"size":10.0'),
    JSON.stringify(good).replace('"size":10', '"size":1e1'),
    JSON.stringify(good).replace('"size":10', '"size":"10"'),
    JSON.stringify(good).replace('"schemaVersion":2', '"schemaVersion":2.0'),
    JSON.stringify(good).replace('"schemaVersion":2', '"schemaVersion":true'),
    JSON.stringify({ ...good, layers: {} }),
    JSON.stringify({ ...good, config: { ...desc('a'), urls: 'x' } }),
    JSON.stringify({ ...good, config: { ...desc('a'), platform: { os: 1 } } }),
    JSON.stringify({ ...good, config: { ...desc('a'), size: 2 ** 63 } }),
    JSON.stringify({ ...good, extra: '['.repeat(10001) + ']'.repeat(10001) }).replace(/"\[+\]+"/, '['.repeat(10001) + ']'.repeat(10001)),
  ]) {
    assert.throws(() => parse(bad), (e) => isRegfsError(e, 'MANIFEST_INVALID'), bad.slice(0, 120));
  }
  // Deep nesting within Go's limit, in a field Go skips, is fine.
  assert.equal(parse(JSON.stringify({ ...good, extra: 0 }).replace('"extra":0', `"extra":${'['.repeat(9000)}${']'.repeat(9000)}`)).kind, 'docker');
});
