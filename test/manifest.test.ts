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
