/**
 * --with-referrers: signatures, SBOMs and attestations travel with their images. The source
 * is written through the real registry (docker-registry 2.8.2, over HTTP): cosign-style
 * `.sig`, `.att` and `.sbom` tags, OCI 1.1 artifacts with `subject` and their fallback index
 * tag, a referrer no tag lists, a referrer of an index child, a signature on an SBOM, and a
 * fallback index one of whose referrers was deleted through the API. The judge is the real
 * registry serving the output, and a signature check as `cosign verify --key` does it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../src/digest.js';
import { MediaTypes } from '../src/manifest.js';
import { checkJsonDocument } from '../scripts/lib/json-schemas.js';
import { registryGarbageCollectDryRun, startRegistry } from '../scripts/lib/registry-server.js';
import { Pusher } from '../scripts/fuzz/pusher.js';
import { blobOf, makeArtifact, makeImage, makeIndex, makeLayer, type Blob, type Image, type Manifest } from '../scripts/lib/images.js';
import { skopeoCopy } from '../scripts/lib/skopeo.js';
import { runCli } from './helpers/cli.js';
import { copyTree, tempDir, withTempDir, writeListFile } from './helpers/tree.js';

const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const SIG_ANNOTATION = 'dev.cosignproject.cosign/signature';
const noRand = (): number => 0.99;

const hexOf = (d: string): string => d.slice('sha256:'.length);
const fallback = (d: string): string => `sha256-${hexOf(d)}`;

/** A cosign-style `.sig`/`.att`/`.sbom` manifest: an OCI manifest whose one layer is `payload`, with the annotations given. */
function cosignManifest(payload: Blob, layerType: string, annotations: Record<string, string>): Image {
  const config = blobOf(JSON.stringify({ architecture: '', os: '', config: {}, rootfs: { type: 'layers', diff_ids: [payload.digest] } }));
  const doc = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    config: { mediaType: MediaTypes.ociConfig, size: config.size, digest: config.digest },
    layers: [{ mediaType: layerType, size: payload.size, digest: payload.digest, annotations }],
  };
  return { kind: 'image', mediaType: MediaTypes.ociManifest, config, layers: [payload], ...blobOf(JSON.stringify(doc)) };
}

/** A cosign signature of `image` as pushed under `repo`: the simple-signing payload, signed with `key` (ECDSA P-256, SHA-256). */
function cosignSignature(repo: string, image: Manifest, key: KeyObject): Image {
  const payload = blobOf(
    JSON.stringify({
      critical: { identity: { 'docker-reference': `registry.example/${repo}` }, image: { 'docker-manifest-digest': image.digest }, type: 'cosign container image signature' },
      optional: null,
    }),
  );
  return cosignManifest(payload, SIMPLE_SIGNING, { [SIG_ANNOTATION]: sign('sha256', payload.bytes, key).toString('base64') });
}

/** An OCI index of referrers (the fallback tag's content). */
function referrersIndex(items: Image[]): Manifest {
  const doc = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociIndex,
    manifests: items.map((m) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size, artifactType: m.artifactType })),
  };
  return { kind: 'index', mediaType: MediaTypes.ociIndex, children: items, ...blobOf(JSON.stringify(doc)) };
}

interface Source {
  root: string;
  publicKey: KeyObject;
  signed: Image;
  /** The fallback tag of the arm64 child of `app:multi`. */
  childFallback: string;
  /** The referrers of `signed`, transitively. */
  ofSigned: Array<{ name: string; digest: Digest }>;
  /** Every referrer each selected image must bring: by name (tag or digest) and digest. */
  expected: Array<{ name: string; digest: Digest; blobs: Blob[] }>;
  /** Referrers of an image not selected: never copied. */
  unrelated: Array<{ name: string; digest: Digest }>;
  broken: { tag: string; sourceDigest: Digest; kept: Image; deleted: Image };
}

/** Push the source through the real registry, then stop it. */
async function buildSource(root: string): Promise<Source> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const reg = await startRegistry({ root });
  const expected: Source['expected'] = [];
  const unrelated: Source['unrelated'] = [];
  try {
    const p = new Pusher(reg.host);
    const push = async (m: Manifest, ref: string): Promise<void> => p.pushManifest('app', m, ref, noRand);
    const want = (m: Image | Manifest, name: string): void => {
      expected.push({ name, digest: m.digest, blobs: m.kind === 'image' ? [m.config, ...m.layers] : [] });
    };

    // An image with a cosign signature, attestation and SBOM by tag, an SBOM artifact listed in
    // its fallback index, a referrer no tag lists, and a signature on the SBOM.
    const signed = makeImage({ format: 'oci', layers: [makeLayer('signed')] });
    await push(signed, 'v1');
    const sig = cosignSignature('app', signed, privateKey);
    const att = cosignManifest(blobOf('{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}'), 'application/vnd.dsse.envelope.v1+json', {
      predicateType: 'https://slsa.dev/provenance/v0.2',
    });
    const sbom = cosignManifest(blobOf('{"spdxVersion":"SPDX-2.3","name":"signed"}'), 'text/spdx+json', {});
    await push(sig, `${fallback(signed.digest)}.sig`);
    await push(att, `${fallback(signed.digest)}.att`);
    await push(sbom, `${fallback(signed.digest)}.sbom`);
    for (const [m, t] of [
      [sig, '.sig'],
      [att, '.att'],
      [sbom, '.sbom'],
    ] as const) want(m, `${fallback(signed.digest)}${t}`);
    const spdx = makeArtifact({ subject: signed, artifactType: 'application/spdx+json', layerMediaType: 'application/spdx+json', payload: '{"spdxVersion":"SPDX-2.3"}' });
    await push(spdx, spdx.digest);
    const idx = referrersIndex([spdx]);
    await push(idx, fallback(signed.digest));
    want(spdx, `@${spdx.digest}`);
    want(idx, fallback(signed.digest));
    const untagged = makeArtifact({ subject: signed, artifactType: 'application/vnd.example.untagged', layerMediaType: 'text/plain', payload: 'no tag lists me' });
    await push(untagged, untagged.digest);
    want(untagged, `@${untagged.digest}`);
    const sbomSig = makeArtifact({ subject: spdx, artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', layerMediaType: 'text/plain', payload: 'signature on the SBOM' });
    await push(sbomSig, sbomSig.digest);
    want(sbomSig, `@${sbomSig.digest}`);
    // A signature on the untagged referrer: found only by the subject scan, twice over.
    const onUntagged = makeArtifact({ subject: untagged, artifactType: 'application/vnd.example.sig-on-sig', layerMediaType: 'text/plain', payload: 'signature on a signature' });
    await push(onUntagged, onUntagged.digest);
    want(onUntagged, `@${onUntagged.digest}`);

    const ofSigned = [...expected];

    // An index whose child has a referrer, listed in the child's fallback index.
    const a = makeImage({ format: 'oci', layers: [makeLayer('multi-amd64')] });
    const b = makeImage({ format: 'oci', layers: [makeLayer('multi-arm64')], platform: { os: 'linux', architecture: 'arm64' } });
    const multi = makeIndex({ format: 'oci', children: [a, b] });
    await push(multi, 'multi');
    const childRef = makeArtifact({ subject: b, artifactType: 'application/vnd.example.child', layerMediaType: 'text/plain', payload: 'of the arm64 child' });
    await push(childRef, childRef.digest);
    const childIdx = referrersIndex([childRef]);
    await push(childIdx, fallback(b.digest));
    want(childRef, `@${childRef.digest}`);
    want(childIdx, fallback(b.digest));

    // A fallback index one of whose referrers was deleted through the API.
    const lonely = makeImage({ format: 'oci', layers: [makeLayer('broken')] });
    await push(lonely, 'broken');
    const kept = makeArtifact({ subject: lonely, artifactType: 'application/vnd.example.kept', layerMediaType: 'text/plain', payload: 'kept' });
    const deleted = makeArtifact({ subject: lonely, artifactType: 'application/vnd.example.deleted', layerMediaType: 'text/plain', payload: 'deleted' });
    await push(kept, kept.digest);
    await push(deleted, deleted.digest);
    const brokenIdx = referrersIndex([kept, deleted]);
    await push(brokenIdx, fallback(lonely.digest));
    assert.equal(await p.deleteManifest('app', deleted.digest), 202);
    want(kept, `@${kept.digest}`);

    // An image not selected, signed: its signature must stay behind.
    const other = makeImage({ format: 'oci', layers: [makeLayer('other')] });
    await push(other, 'other');
    const otherSig = cosignSignature('app', other, privateKey);
    await push(otherSig, `${fallback(other.digest)}.sig`);
    unrelated.push({ name: `${fallback(other.digest)}.sig`, digest: otherSig.digest });
    return { root, publicKey, signed, ofSigned, childFallback: fallback(b.digest), expected, unrelated, broken: { tag: fallback(lonely.digest), sourceDigest: brokenIdx.digest, kept, deleted } };
  } finally {
    await reg.stop();
  }
}

const ACCEPT = [MediaTypes.ociManifest, MediaTypes.ociIndex, MediaTypes.dockerManifest, MediaTypes.dockerManifestList].join(', ');

async function getManifest(host: string, ref: string): Promise<{ status: number; body: Buffer; digest: string }> {
  const res = await fetch(`http://${host}/v2/app/manifests/${ref}`, { headers: { accept: ACCEPT } });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, body, digest: `sha256:${createHash('sha256').update(body).digest('hex')}` };
}

async function getBlob(host: string, d: string): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`http://${host}/v2/app/blobs/${d}`);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

/** `cosign verify --key`, by hand: the `.sig` manifest and its payload from the registry, the payload naming the image, the signature valid. */
async function cosignVerify(host: string, image: Manifest, key: KeyObject): Promise<void> {
  const m = await getManifest(host, `${fallback(image.digest)}.sig`);
  assert.equal(m.status, 200, `no signature served for ${image.digest}`);
  const doc = JSON.parse(m.body.toString('utf8')) as { layers: Array<{ mediaType: string; digest: string; annotations: Record<string, string> }> };
  const layer = doc.layers.find((l) => l.mediaType === SIMPLE_SIGNING);
  assert.ok(layer !== undefined, 'a simple-signing layer');
  const payload = await getBlob(host, layer.digest);
  assert.equal(payload.status, 200);
  const claim = JSON.parse(payload.body.toString('utf8')) as { critical: { image: { 'docker-manifest-digest': string } } };
  assert.equal(claim.critical.image['docker-manifest-digest'], image.digest);
  assert.ok(verify('sha256', payload.body, key, Buffer.from(layer.annotations[SIG_ANNOTATION]!, 'base64')), 'the signature verifies with the public key');
}

let src: Source;
let list: string;
let cleanup: () => Promise<void>;
before(async () => {
  const t = await tempDir('regfs-referrers-');
  cleanup = t.cleanup;
  src = await buildSource(join(t.dir, 'src'));
  list = await writeListFile(t.dir, ['app:v1', 'app:multi', 'app:broken']);
});
after(async () => cleanup());

/** Every expected referrer served with its source digest, its blobs too; the unrelated signature not; the rewritten index whole. */
async function judgeReferrers(host: string, rewritten: string): Promise<void> {
  for (const e of src.expected) {
    const ref = e.name.startsWith('@') ? e.name.slice(1) : e.name;
    const got = await getManifest(host, ref);
    assert.equal(got.status, 200, `${e.name} served`);
    assert.equal(got.digest, e.digest, `${e.name} has its source digest`);
    for (const b of e.blobs) assert.equal((await getBlob(host, b.digest)).status, 200, `${e.name}: blob ${b.digest}`);
  }
  for (const u of src.unrelated) assert.equal((await getManifest(host, u.name)).status, 404, `${u.name} is not copied`);
  await cosignVerify(host, src.signed, src.publicKey);
  // The rewritten index is served under the fallback tag and lists only what is served.
  const idx = await getManifest(host, src.broken.tag);
  assert.equal(idx.status, 200);
  assert.equal(idx.digest, rewritten);
  const listed = (JSON.parse(idx.body.toString('utf8')) as { manifests: Array<{ digest: string }> }).manifests.map((c) => c.digest);
  assert.deepEqual(listed, [src.broken.kept.digest]);
  for (const c of listed) assert.equal((await getManifest(host, c)).status, 200);
  assert.equal((await getManifest(host, src.broken.deleted.digest)).status, 404);
}

test('extract --with-referrers: every referrer is served from the output with its source digest, the signature verifies; without it none is', async () => {
  await withTempDir(async (dir) => {

    const withOut = join(dir, 'with');
    const r = await runCli(['extract', list, src.root, withOut, '--with-referrers', '--json']);
    const doc = JSON.parse(r.stdout) as {
      images: Array<{ ref: string; referrers: Array<{ digest: string; tag?: string; artifactType: string }> }>;
      referrers: { images: number; rewritten: Array<{ tag: string; sourceDigest: string; digest: string; dropped: string[] }> };
      problems?: Array<{ code: string; digest?: string }>;
    };
    checkJsonDocument('extract', r.stdout, r.code ?? -1);
    // The deleted referrer is reported, the image written all the same.
    assert.equal(r.code, 3, r.stderr + r.stdout);
    const problems = (doc.problems ?? []).map((p) => [p.code, p.digest]);
    assert.deepEqual(problems, [['REFERRER_MISSING', src.broken.deleted.digest]]);

    const byRef = new Map(doc.images.map((i) => [i.ref, i]));
    const v1 = byRef.get('app:v1')!.referrers;
    assert.deepEqual(
      v1.map((x) => x.artifactType).sort(),
      [
        SIMPLE_SIGNING,
        'application/vnd.dsse.envelope.v1+json',
        'text/spdx+json',
        'application/spdx+json',
        MediaTypes.ociIndex,
        'application/vnd.example.untagged',
        'application/vnd.dev.cosign.artifact.sig.v1+json',
        'application/vnd.example.sig-on-sig',
      ].sort(),
    );
    assert.ok(v1.some((x) => x.tag === `${fallback(src.signed.digest)}.sig`));
    assert.equal(byRef.get('app:multi')!.referrers.length, 2);
    const [rw] = doc.referrers.rewritten;
    assert.equal(doc.referrers.rewritten.length, 1);
    assert.equal(rw!.tag, src.broken.tag);
    assert.equal(rw!.sourceDigest, src.broken.sourceDigest);
    assert.deepEqual(rw!.dropped, [src.broken.deleted.digest]);
    assert.notEqual(rw!.digest, src.broken.sourceDigest);

    const reg = await startRegistry({ root: withOut, readOnly: true });
    try {
      await judgeReferrers(reg.host, rw!.digest);
    } finally {
      await reg.stop();
    }
    const gc = await registryGarbageCollectDryRun(withOut);
    assert.deepEqual(gc.blobsEligible, [], gc.output);
    const verified = await runCli(['verify', withOut]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    // A re-run finds everything in place: the rewritten index has the same bytes again.
    const again = await runCli(['extract', list, src.root, withOut, '--with-referrers', '--json']);
    assert.equal(again.code, 3, again.stderr);
    const stats = JSON.parse(again.stdout) as { stats: { linksWritten: number; blobsWritten: number }; referrers: { rewritten: Array<{ digest: string }> } };
    assert.equal(stats.stats.linksWritten, 0);
    assert.equal(stats.stats.blobsWritten, 0);
    assert.equal(stats.referrers.rewritten[0]!.digest, rw!.digest);

    const text = await runCli(['extract', list, src.root, join(dir, 'planned'), '--with-referrers', '--dry-run']);
    assert.equal(text.code, 3, text.stderr);
    assert.match(text.stdout, new RegExp(`^referrers: 12 came along with 3 of 3 images; ${doc.referrers.images} would be written$`, 'm'));
    assert.match(text.stdout, new RegExp(`^would rewrite referrers index app:${src.broken.tag}: ${src.broken.sourceDigest} -> ${rw!.digest}, without 1 missing from the source$`, 'm'));

    // Without the option: the images, and no referrer; the signature check fails.
    const plainOut = join(dir, 'plain');
    const plain = await runCli(['extract', list, src.root, plainOut]);
    assert.equal(plain.code, 0, plain.stderr);
    const reg2 = await startRegistry({ root: plainOut, readOnly: true });
    try {
      assert.equal((await getManifest(reg2.host, 'v1')).digest, src.signed.digest);
      for (const e of src.expected) {
        const ref = e.name.startsWith('@') ? e.name.slice(1) : e.name;
        assert.equal((await getManifest(reg2.host, ref)).status, 404, `${e.name} not served without --with-referrers`);
      }
      await assert.rejects(cosignVerify(reg2.host, src.signed, src.publicKey), /no signature served/);
    } finally {
      await reg2.stop();
    }
  });
});

test('to-dir --with-referrers: each referrer an image directory (repo:tag or repo@digest); from-dir brings them back, served exactly', async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, 'dirs');
    const r = await runCli(['to-dir', list, src.root, out, '--with-referrers', '--json']);
    checkJsonDocument('to-dir', r.stdout, r.code ?? -1);
    assert.equal(r.code, 3, r.stderr);
    const doc = JSON.parse(r.stdout) as { images: Array<{ ref: string; referrers: unknown[] }>; referrers: { rewritten: Array<{ digest: string }> } };
    assert.deepEqual(
      doc.images.map((i) => [i.ref, i.referrers.length]),
      [
        ['app:v1', 8],
        ['app:multi', 2],
        ['app:broken', 2],
      ],
    );
    const one = await runCli(['to-dir', '--image', 'app:v1', src.root, join(dir, 'one'), '--with-referrers']);
    assert.equal(one.code, 2, one.stderr);
    assert.match(one.stderr, /--with-referrers exports each referrer as an image directory of its own.*\[USAGE\]/);
    const sig = await readFile(join(out, `app:${fallback(src.signed.digest)}.sig`, 'manifest.json'));
    assert.equal(`sha256:${createHash('sha256').update(sig).digest('hex')}`, src.expected.find((e) => e.name.endsWith('.sig'))!.digest);
    const back = join(dir, 'back');
    const imp = await runCli(['from-dir', out, back]);
    assert.equal(imp.code, 0, imp.stderr + imp.stdout);
    const reg = await startRegistry({ root: back, readOnly: true });
    try {
      await judgeReferrers(reg.host, doc.referrers.rewritten[0]!.digest);
    } finally {
      await reg.stop();
    }
  });
});

test('to-oci --with-referrers: referrers are entries of index.json (named by tag, or repo@digest) with their blobs; from-oci brings them back; the signature survives a copy out of the layout', async () => {
  await withTempDir(async (dir) => {
    const layout = join(dir, 'oci');
    const r = await runCli(['to-oci', list, src.root, layout, '--with-referrers', '--json']);
    checkJsonDocument('to-oci', r.stdout, r.code ?? -1);
    assert.equal(r.code, 3, r.stderr);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
    const byDigest = new Map(index.manifests.map((e) => [e.digest, e.annotations?.['org.opencontainers.image.ref.name']]));
    for (const e of src.expected) {
      assert.ok(byDigest.has(e.digest), `${e.name} is in index.json`);
      // A tagged referrer by its tag; an untagged one by its digest, so from-oci brings it back into its repository.
      assert.equal(byDigest.get(e.digest), e.name.startsWith('@') ? `app@${e.digest}` : `app:${e.name}`);
      const bytes = await readFile(join(layout, 'blobs', 'sha256', hexOf(e.digest)));
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, e.digest);
      for (const b of e.blobs) assert.ok((await readFile(join(layout, 'blobs', 'sha256', hexOf(b.digest)))).equals(b.bytes));
    }
    for (const u of src.unrelated) assert.ok(!byDigest.has(u.digest));
    // With --platform, the referrers of the exported child come along, not those of the other child.
    const childIndex = src.expected.find((e) => e.name === src.childFallback)!;
    for (const [platform, has] of [
      ['linux/arm64', true],
      ['linux/amd64', false],
    ] as const) {
      const l = join(dir, `oci-${platform.replace('/', '-')}`);
      const p = await runCli(['to-oci', await writeListFile(dir, ['app:multi']), src.root, l, '--platform', platform, '--with-referrers']);
      assert.equal(p.code, 0, p.stderr);
      const entries = (JSON.parse(await readFile(join(l, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }).manifests.map((e) => e.digest);
      assert.equal(entries.includes(childIndex.digest), has, platform);
    }
    // from-oci brings every referrer back: served from its output as the source serves it.
    const back = join(dir, 'back');
    const imp = await runCli(['from-oci', layout, back]);
    assert.equal(imp.code, 0, imp.stderr + imp.stdout);
    const doc = JSON.parse(r.stdout) as { referrers: { rewritten: Array<{ digest: string }> } };
    const served = await startRegistry({ root: back, readOnly: true });
    try {
      await judgeReferrers(served.host, doc.referrers.rewritten[0]!.digest);
    } finally {
      await served.stop();
    }
    const reg = await startRegistry({ root: join(dir, 'reg') });
    try {
      const sigName = `app:${fallback(src.signed.digest)}.sig`;
      await skopeoCopy(`oci:${layout}:app:v1`, `docker://${reg.host}/app:v1`);
      await skopeoCopy(`oci:${layout}:${sigName}`, `docker://${reg.host}/${sigName}`);
      await cosignVerify(reg.host, src.signed, src.publicKey);
    } finally {
      await reg.stop();
    }
  });
});

test('inspect lists every referrer (artifact type, digest, tag if any); ls marks images with referrer tags', async () => {
  const r = await runCli(['inspect', src.root, 'app:v1', '--json']);
  checkJsonDocument('inspect', r.stdout, r.code ?? -1);
  const doc = JSON.parse(r.stdout) as { referrers: Array<{ digest: string; tag: string | null; artifactType: string }>; referrersMissing: number };
  assert.deepEqual(doc.referrers.map((x) => x.digest).sort(), src.ofSigned.map((e) => e.digest).sort());
  assert.equal(doc.referrers.find((x) => x.tag === `${fallback(src.signed.digest)}.sig`)?.artifactType, SIMPLE_SIGNING);
  assert.equal(doc.referrersMissing, 0);
  const text = await runCli(['inspect', src.root, 'app:broken']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^referrers +2 \(1 that the repository cannot serve whole\)$/m);
  assert.match(text.stdout, new RegExp(`^  ${src.broken.kept.digest}  application/vnd\\.example\\.kept$`, 'm'));

  const ls = await runCli(['ls', src.root, 'app:v1', '--json']);
  checkJsonDocument('ls', ls.stdout, ls.code ?? -1);
  const tags = (JSON.parse(ls.stdout) as { repositories: Array<{ tags: Array<{ tag: string; referrerTags?: number }> }> }).repositories[0]!.tags;
  assert.deepEqual(tags.map((t) => [t.tag, t.referrerTags]), [['v1', 4]]);
  const other = await runCli(['ls', src.root, 'app:multi', '--json']);
  assert.equal((JSON.parse(other.stdout) as { repositories: Array<{ tags: Array<{ referrerTags?: number }> }> }).repositories[0]!.tags[0]!.referrerTags, undefined);
});

test('gc --delete-untagged keeps referrers of kept manifests by default (transitively); --no-keep-referrers reports what it deletes', async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, 'copy');
    await copyTree(src.root, root);
    type Gc = { manifests: Array<{ digest: string }>; referrers: Array<{ digest: string; subject: string; kept: boolean }> };
    const untagged = src.expected.filter((e) => e.name.startsWith('@')).map((e) => e.digest);
    const drop = await runCli(['gc', root, '--delete-untagged', '--no-keep-referrers', '--json']);
    checkJsonDocument('gc', drop.stdout, drop.code ?? -1);
    const dropped = JSON.parse(drop.stdout) as Gc;
    // The untagged referrers no tag reaches: of the image, of its SBOM, and (transitively) of an untagged referrer.
    const digestNamed = (name: string): string => src.expected.find((e) => e.name === name)!.digest;
    const [untaggedRef, sbomSig, sigOnSig] = src.ofSigned.filter((e) => e.name.startsWith('@')).slice(1).map((e) => e.name);
    assert.deepEqual(
      dropped.referrers.map((x) => [x.digest, x.subject, x.kept]).sort(),
      [
        [digestNamed(untaggedRef!), src.signed.digest, false],
        [digestNamed(sbomSig!), src.ofSigned.find((e) => e.name.startsWith('@'))!.digest, false],
        [digestNamed(sigOnSig!), digestNamed(untaggedRef!), false],
      ].sort(),
    );
    for (const x of dropped.referrers) assert.ok(dropped.manifests.some((m) => m.digest === x.digest), `${x.digest} would be deleted`);

    const keep = await runCli(['gc', root, '--delete-untagged', '--apply', '--json']);
    checkJsonDocument('gc', keep.stdout, keep.code ?? -1);
    const kept = JSON.parse(keep.stdout) as Gc;
    assert.deepEqual(kept.referrers.map((x) => [x.digest, x.kept]).sort(), dropped.referrers.map((x) => [x.digest, true]).sort());
    for (const d of untagged) assert.ok(!kept.manifests.some((m) => m.digest === d), `${d} is kept`);
    const reg = await startRegistry({ root, readOnly: true });
    try {
      for (const e of src.expected) {
        const ref = e.name.startsWith('@') ? e.name.slice(1) : e.name;
        assert.equal((await getManifest(reg.host, ref)).digest, e.digest, `${e.name} still served`);
        for (const b of e.blobs) assert.equal((await getBlob(reg.host, b.digest)).status, 200);
      }
      await cosignVerify(reg.host, src.signed, src.publicKey);
    } finally {
      await reg.stop();
    }
  });
});
