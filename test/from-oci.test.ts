/**
 * from-oci, judged by the real tools (skopeo 1.9.3, docker-registry 2.8.2):
 *
 *   1. layouts skopeo wrote (`copy [--all] docker://… oci:LAYOUT:REF`, several images in one
 *      layout, converted Docker images, an OCI artifact, a bare tag) and an `oci-archive:` are
 *      imported and served by the registry with the layout's digests; the garbage collector
 *      finds nothing to delete; a re-run changes nothing;
 *   2. what other writers put in a layout, assembled from the fixture's blobs: a nested index,
 *      a Docker-typed entry named as docker save names it, an unnamed entry, a foreign layer;
 *   3. names: --name, --repo, --strip-registry, a :port host, two entries naming one tag;
 *   4. bad input (a missing blob, a wrong hash, an index.json that is not an index, an invalid
 *      ref.name, a FIFO, tars with entries outside the layout, a link entry, a truncated tar):
 *      a clear error with its code, exit 1, and nothing visible written;
 *   5. detection: a layout where registry storage is expected, and the reverse.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { access, mkdir, readdir, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar/header';
import { fromOci } from '../src/ops/from-oci.js';
import { extract } from '../src/ops/extract.js';
import { toDir } from '../src/ops/to-dir.js';
import { toOci } from '../src/ops/to-oci.js';
import { ociLayoutFromExport, tarLayout } from '../scripts/lib/oci-from-export.js';
import { digestHex, digestOf, type Digest } from '../src/digest.js';
import { blobDataPath } from '../src/registry/layout.js';
import { startRegistry } from '../scripts/lib/registry-server.js';
import { skopeoCopy, skopeoManifestDigestOf } from '../scripts/lib/skopeo.js';
import { checkJsonDocument } from '../scripts/lib/json-schemas.js';
import { FIXTURE_ROOT, readFixtureManifest } from './helpers/fixture.js';
import { runCli, type CliResult } from './helpers/cli.js';
import { assertServed, assertServing, type Served } from './helpers/judge.js';
import { copyTree, listFiles, tempDir } from './helpers/tree.js';

const V2 = 'docker/registry/v2';
const TIMEOUT_MS = 20_000;
const refs = (await readFixtureManifest()).refs.filter((r) => !r.overwritten);
const fixture = (ref: string): { digest: string; blobs: string[] } => {
  const r = refs.find((x) => x.ref === ref);
  if (r === undefined) throw new Error(`no fixture ref ${ref}`);
  return r;
};
const SIG = 'team/app:sha256-6d1ddbb23e53cfd97b606fd78932a91c65f116c02fa690a4db6750d4793e35ac.sig';

let t: { dir: string; cleanup: () => Promise<void> };
/** A layout skopeo wrote, several images in it. */
let layout: string;
/** An oci-archive: skopeo wrote of an OCI index with its children. */
let archive: string;
/** A layout of one image (team/app/worker:1.1), for damage. */
let single: string;

before(async () => {
  t = await tempDir('regfs-oci-');
  layout = join(t.dir, 'layout');
  single = join(t.dir, 'single');
  archive = join(t.dir, 'tool.tar');
  const reg = await startRegistry({ root: FIXTURE_ROOT, readOnly: true });
  try {
    const pull = (ref: string, to: string, opts: { all?: boolean; format?: 'oci' } = {}): Promise<void> => skopeoCopy(`docker://${reg.host}/${ref.split('=')[0]}`, `${to}:${ref.split('=').at(-1)}`, opts);
    await pull('team/app/worker:1.1', `oci:${layout}`);
    await pull('multiarch/tool:1.0-oci', `oci:${layout}`, { all: true });
    await pull('tools/nomediatype:1.0', `oci:${layout}`);
    await pull(SIG, `oci:${layout}`);
    // Docker images: skopeo converts them to OCI (new digests).
    await pull('team/app:v1', `oci:${layout}`, { format: 'oci' });
    await pull('multiarch/tool:1.0', `oci:${layout}`, { all: true, format: 'oci' });
    // A bare tag, as regctl and docker save name entries.
    await pull('team/app/worker:1.0=1.0', `oci:${layout}`);
    await pull('multiarch/tool:1.0-oci=archived/tool:1.0-oci', `oci-archive:${archive}`, { all: true });
    await pull('team/app/worker:1.1', `oci:${single}`);
  } finally {
    await reg.stop();
  }
});

after(async () => {
  await t?.cleanup();
});

interface IndexEntry {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

async function readIndex(dir: string): Promise<{ schemaVersion: 2; manifests: IndexEntry[] }> {
  return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { schemaVersion: 2; manifests: IndexEntry[] };
}

const refName = (e: IndexEntry): string => e.annotations!['org.opencontainers.image.ref.name']!;

/** Every file under `root` and the digest of its bytes. */
async function treeContents(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of await listFiles(root)) out.set(f, digestOf(await readFile(join(root, f))));
  return out;
}

/** A copy of a layout to damage. */
async function copyLayout(from: string, name: string): Promise<string> {
  const to = join(t.dir, name);
  await rm(to, { recursive: true, force: true });
  await copyTree(from, to);
  return to;
}

/** Nothing visible in `dest`: no link file, no blob data, no staging directory left. */
async function assertNothingVisible(dest: string): Promise<void> {
  const files = await listFiles(dest).catch(() => []);
  assert.deepEqual(
    files.filter((f) => !f.endsWith('.regfs.lock')),
    [],
    `nothing may be written into ${dest}`,
  );
}

/** Run from-oci; it must fail with `code`, exit 1 (2 for USAGE), and leave nothing visible. */
async function refused(args: string[], code: string, dest: string): Promise<CliResult> {
  const r = await runCli(['from-oci', ...args], { timeoutMs: TIMEOUT_MS });
  assert.equal(r.killed, false, `from-oci ${args.join(' ')} hung`);
  assert.equal(r.code, code === 'USAGE' ? 2 : 1, r.stderr);
  assert.match(r.stderr, new RegExp(`\\[${code}\\]`), r.stderr);
  assert.doesNotMatch(r.stderr, /internal error/);
  await assertNothingVisible(dest);
  return r;
}

/** A tar of `entries`, header by header (the tar library's own header encoder). */
function tarOf(entries: Array<{ path: string; data?: Buffer; type?: 'File' | 'SymbolicLink' | 'Directory'; linkpath?: string }>): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const block = Buffer.alloc(512);
    new Header({ path: e.path, mode: 0o644, uid: 0, gid: 0, size: e.type === undefined || e.type === 'File' ? data.length : 0, mtime: new Date(0), type: e.type ?? 'File', linkpath: e.linkpath }).encode(block, 0);
    blocks.push(block);
    if (e.type === undefined || e.type === 'File') blocks.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** A layout directory's files as tar entries, sorted by path (blobs first, index.json and oci-layout last). */
async function layoutEntries(dir: string): Promise<Array<{ path: string; data: Buffer }>> {
  const files = await listFiles(dir);
  return Promise.all(files.map(async (f) => ({ path: f, data: await readFile(join(dir, f)) })));
}

// ---------------------------------------------------------------------------------------------
// 1. skopeo writes, from-oci imports, the registry serves

test('from-oci: a layout and an oci-archive skopeo wrote are served with the layout digests; a re-run changes nothing', async () => {
  const index = await readIndex(layout);
  assert.equal(index.manifests.length, 7);
  // Something the layout holds but no image references: not imported.
  const stray = Buffer.from('a blob no manifest names\n');
  await writeFile(join(layout, 'blobs/sha256', digestHex(digestOf(stray))), stray);
  const dest = join(t.dir, 'dest-skopeo');

  const r = await runCli(['from-oci', layout, dest, '--repo', 'team/app/worker', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = checkJsonDocument('from-oci', r.stdout, 0);
  assert.equal(doc['format'], 'directory');
  assert.equal((doc['images'] as unknown[]).length, 7);
  assert.ok((doc['bytesVerified'] as number) > 0);

  // The archive merges into the same storage, read as a stream.
  const a = await runCli(['from-oci', archive, dest]);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /imported 1 image/);
  await access(join(dest, V2, 'blobs')).then(async () => {
    const left = (await readdir(join(dest, V2, 'blobs'))).filter((n) => n !== 'sha256');
    assert.deepEqual(left, [], 'the staging directory is removed');
  });
  await assert.rejects(access(blobDataPath(join(dest, V2), digestOf(stray))), 'an unreferenced blob is not imported');

  const expected: Served[] = index.manifests.map((e) => ({ name: refName(e) === '1.0' ? 'team/app/worker:1.0' : refName(e), digest: e.digest }));
  const archived = (await readIndex(layout)).manifests.find((e) => refName(e) === 'multiarch/tool:1.0-oci')!;
  expected.push({ name: 'archived/tool:1.0-oci', digest: archived.digest });
  // skopeo kept the OCI images' digests and converted the Docker ones.
  assert.equal(expected.find((s) => s.name === 'team/app/worker:1.1')!.digest, fixture('team/app/worker:1.1').digest);
  assert.equal(expected.find((s) => s.name === SIG)!.digest, fixture(SIG).digest);
  assert.notEqual(expected.find((s) => s.name === 'team/app:v1')!.digest, fixture('team/app:v1').digest);
  await assertServed(dest, expected, ['team/app:v2', 'multiarch/tool:nested'], join(t.dir, 'judge-skopeo'));

  const again = await runCli(['from-oci', layout, dest, '--repo', 'team/app/worker', '--json']);
  assert.equal(again.code, 0, again.stderr);
  const stats = checkJsonDocument('from-oci', again.stdout, 0)['stats'] as { linksWritten: number; blobsExisting: number; blobsLinked: number };
  assert.equal(stats.linksWritten, 0, 'a re-run writes no link');
  assert.equal(stats.blobsLinked, 0);
  await rm(join(layout, 'blobs/sha256', digestHex(digestOf(stray))));
});

test('from-oci: a tar from standard input, with index.json before or after the blobs; a dry run writes nothing', async () => {
  const dest = join(t.dir, 'dest-stdin');
  const res = await fromOci({ input: '-', stdin: createReadStream(archive), output: dest });
  assert.equal(res.format, 'archive');
  assert.deepEqual(
    res.images.map((i) => i.ref),
    ['archived/tool:1.0-oci'],
  );
  const files = await layoutEntries(single);
  for (const [name, order] of [
    ['first', (e: { path: string }) => (e.path === 'index.json' ? 0 : 1)],
    ['last', (e: { path: string }) => (e.path === 'index.json' ? 1 : 0)],
  ] as const) {
    const tar = join(t.dir, `single-${name}.tar`);
    await writeFile(tar, tarOf([{ path: './', type: 'Directory' }, ...[...files].sort((x, y) => order(x) - order(y)).map((e) => ({ ...e, path: `./${e.path}` }))]));
    const dry = join(t.dir, `dry-${name}`);
    const d = await runCli(['from-oci', tar, dry, '--dry-run']);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /team\/app\/worker:1\.1/);
    const planned = checkJsonDocument('from-oci', (await runCli(['from-oci', tar, dry, '--dry-run', '--json'])).stdout, 0);
    assert.equal(planned['dryRun'], true);
    assert.equal(planned['format'], 'archive');
    assert.equal((planned['plan'] as { blobs: number }).blobs, files.filter((f) => f.path.startsWith('blobs/')).length);
    await assert.rejects(access(dry), 'a dry run creates nothing');
    // The dry run's images are the real run's, platforms too (it read them from no staged config).
    const real = checkJsonDocument('from-oci', (await runCli(['from-oci', tar, join(t.dir, `real-${name}`), '--json'])).stdout, 0);
    const shown = (doc: Record<string, unknown>): unknown => (doc['images'] as Array<{ ref: string; platforms: string[] }>).map((i) => [i.ref, i.platforms]);
    assert.deepEqual(shown(planned), shown(real));
    assert.deepEqual(shown(real), [['team/app/worker:1.1', ['linux/amd64']]]);
    // A staging directory a killed run left (the lock is taken over) is removed, with what it holds.
    const stale = join(dest, V2, 'blobs', `.from-oci.99999-0a1b2c3d-0.regfs-tmp`);
    await mkdir(stale, { recursive: true });
    await writeFile(join(stale, `sha256-${'0'.repeat(64)}`), 'staged');
    const r = await runCli(['from-oci', tar, dest]);
    assert.equal(r.code, 0, r.stderr);
    await assert.rejects(access(stale), 'the stale staging directory is gone');
  }
  // A gzip-compressed tar of a layout is read the same way.
  const gz = join(t.dir, 'single.tar.gz');
  await writeFile(gz, gzipSync(await readFile(join(t.dir, 'single-last.tar'))));
  const z = await runCli(['from-oci', gz, join(t.dir, 'dest-gz'), '--json']);
  assert.equal(z.code, 0, z.stderr);
  assert.deepEqual((checkJsonDocument('from-oci', z.stdout, 0)['images'] as Array<{ digest: string }>).map((i) => i.digest), [fixture('team/app/worker:1.1').digest]);
  await assertServed(
    dest,
    [
      { name: 'archived/tool:1.0-oci', digest: fixture('multiarch/tool:1.0-oci').digest },
      { name: 'team/app/worker:1.1', digest: fixture('team/app/worker:1.1').digest },
    ],
    [],
    join(t.dir, 'judge-stdin'),
  );
});

test('from-oci(layout(to-dir(list))) and from-oci(to-oci(list)) write exactly what extract(list) writes, from a directory and from a tar', async () => {
  const dir = join(t.dir, 'exact');
  await mkdir(dir);
  const list = join(dir, 'images.list');
  await writeFile(list, `${['team/app', 'multiarch/tool', 'library/busybox:1.36', 'tools/nomediatype:1.0', 'team/app/worker:1.1'].join('\n')}\n`);
  await extract({ list, source: FIXTURE_ROOT, output: join(dir, 'extracted') });
  const want = await treeContents(join(dir, 'extracted'));
  await toDir({ list, source: FIXTURE_ROOT, output: join(dir, 'export') });
  const lay = join(dir, 'layout');
  assert.equal(await ociLayoutFromExport(join(dir, 'export'), lay), 10, 'every tag of the list');
  tarLayout(lay, join(dir, 'layout.tar'));
  // And to-oci's own layout: Docker images keep their bytes and digests through to-oci then from-oci.
  const exported = join(dir, 'to-oci');
  await toOci({ list, source: FIXTURE_ROOT, output: exported });
  for (const input of [lay, join(dir, 'layout.tar'), exported]) {
    const dest = join(dir, `imported-${input.replace(/\W+/g, '-')}`);
    const r = await fromOci({ input, output: dest });
    assert.equal(r.images.length, 10);
    assert.deepEqual(await treeContents(dest), want, input);
  }
});

test('from-oci(to-oci(list)) writes what extract(list) writes for schema1 images and digest-only lines too', async () => {
  // schema1 entries were skipped with a warning (exit 0), and their blobs, which schema1 gives
  // no size, were refused as SIZE_INVALID; a digest-only line's entry had no name to import by.
  const dir = join(t.dir, 'exact-schema1');
  await mkdir(dir);
  const list = join(dir, 'images.list');
  await writeFile(list, 'legacy/app:1.0\nlibrary/busybox@sha256:3271c4fec4a89f06c12edeadbb942bb5aba4b9d57b3671bb5a1f6d149778b82c\nteam/app:v1\n');
  await extract({ list, source: FIXTURE_ROOT, output: join(dir, 'extracted') });
  const exported = join(dir, 'to-oci');
  await toOci({ list, source: FIXTURE_ROOT, output: exported });
  const r = await fromOci({ input: exported, output: join(dir, 'imported') });
  assert.deepEqual(r.warnings, []);
  assert.equal(r.images.length, 3);
  assert.deepEqual(await treeContents(join(dir, 'imported')), await treeContents(join(dir, 'extracted')));
});

// ---------------------------------------------------------------------------------------------
// 2. What other writers produce, assembled from the fixture's own blobs

/** Copy blobs of the fixture storage into a layout's blobs/sha256. */
async function fixtureBlobs(dir: string, digests: string[]): Promise<void> {
  await mkdir(join(dir, 'blobs/sha256'), { recursive: true });
  for (const d of digests) await writeFile(join(dir, 'blobs/sha256', digestHex(d as Digest)), await readFile(blobDataPath(join(FIXTURE_ROOT, V2), d as Digest)));
}

async function writeLayout(dir: string, manifests: unknown[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
}

async function entryOf(ref: string, annotations: Record<string, string> | undefined): Promise<IndexEntry> {
  const { digest } = fixture(ref);
  const raw = await readFile(blobDataPath(join(FIXTURE_ROOT, V2), digest as Digest));
  const doc = JSON.parse(raw.toString('utf8')) as { mediaType?: string; manifests?: unknown };
  const mediaType = doc.mediaType ?? (doc.manifests === undefined ? 'application/vnd.oci.image.manifest.v1+json' : 'application/vnd.oci.image.index.v1+json');
  return { mediaType, digest, size: raw.length, ...(annotations === undefined ? {} : { annotations }) };
}

test('from-oci: a nested index, a Docker entry named as docker save names it, an unnamed entry (--repo)', async () => {
  const dir = join(t.dir, 'assembled');
  const nested = fixture('multiarch/tool:nested');
  const app = fixture('team/app:v1');
  const worker = fixture('team/app/worker:1.0');
  await fixtureBlobs(dir, [nested.digest, ...nested.blobs, app.digest, ...app.blobs, worker.digest, ...worker.blobs]);
  await writeLayout(dir, [
    await entryOf('multiarch/tool:nested', { 'org.opencontainers.image.ref.name': 'multiarch/tool:nested' }),
    await entryOf('team/app:v1', { 'org.opencontainers.image.ref.name': 'v1', 'io.containerd.image.name': 'docker.io/team/app:v1' }),
    await entryOf('team/app/worker:1.0', undefined),
  ]);
  const dest = join(t.dir, 'dest-assembled');
  await refused([dir, dest, '--strip-registry'], 'NAME_INVALID', dest);
  const r = await runCli(['from-oci', dir, dest, '--strip-registry', '--repo', 'imported/bydigest']);
  assert.equal(r.code, 0, r.stderr);
  await assertServed(
    dest,
    [
      { name: 'multiarch/tool:nested', digest: nested.digest },
      { name: 'team/app:v1', digest: app.digest },
      { name: `imported/bydigest@${worker.digest}`, digest: worker.digest },
    ],
    ['docker.io/team/app:v1', 'imported/bydigest:1.0'],
    join(t.dir, 'judge-assembled'),
  );
});

test('from-oci: a layer with urls absent from the layout is foreign: imported without it, with a warning', async () => {
  const dir = join(t.dir, 'foreign');
  const base = fixture('team/app/worker:1.1');
  await fixtureBlobs(dir, base.blobs);
  const worker = JSON.parse((await readFile(blobDataPath(join(FIXTURE_ROOT, V2), base.digest as Digest))).toString('utf8')) as { layers: unknown[] };
  const foreign = { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', digest: digestOf(Buffer.from('elsewhere')), size: 9, urls: ['https://example.invalid/layer'] };
  const raw = Buffer.from(JSON.stringify({ ...worker, layers: [...worker.layers, foreign] }));
  await writeFile(join(dir, 'blobs/sha256', digestHex(digestOf(raw))), raw);
  await writeLayout(dir, [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(raw), size: raw.length, annotations: { 'org.opencontainers.image.ref.name': 'team/foreign:1' } }]);
  const dest = join(t.dir, 'dest-foreign');
  const r = await runCli(['from-oci', dir, dest]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /foreign layer sha256:[0-9a-f]{64} is not in the layout/);
  const reg = await startRegistry({ root: dest, readOnly: true });
  try {
    assert.equal(await skopeoManifestDigestOf(`docker://${reg.host}/team/foreign:1`), digestOf(raw));
  } finally {
    await reg.stop();
  }
});

test('from-oci: merges into storage the registry wrote: a new tag, and an existing tag moved', async () => {
  const dest = join(t.dir, 'dest-merge');
  await copyTree(FIXTURE_ROOT, dest);
  const worker = fixture('team/app/worker:1.1').digest;
  for (const name of ['team/app:imported', 'team/app:v2']) {
    const r = await runCli(['from-oci', single, dest, '--name', name]);
    assert.equal(r.code, 0, r.stderr);
  }
  const reg = await startRegistry({ root: dest, readOnly: true });
  try {
    await assertServing(
      reg.host,
      [
        { name: 'team/app:imported', digest: worker },
        { name: 'team/app:v2', digest: worker },
        { name: 'team/app:v1', digest: fixture('team/app:v1').digest },
        { name: 'multiarch/tool:1.0', digest: fixture('multiarch/tool:1.0').digest },
      ],
      [],
      join(t.dir, 'judge-merge'),
    );
  } finally {
    await reg.stop();
  }
  const verified = await runCli(['verify', dest]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
});

test('from-oci: indexes nested deeper than 16 are INDEX_TOO_DEEP; 16 deep is imported', async () => {
  const worker = fixture('team/app/worker:1.1');
  for (const [depth, ok] of [
    [16, true],
    [17, false],
  ] as const) {
    const dir = join(t.dir, `deep-${depth}`);
    await fixtureBlobs(dir, [worker.digest, ...worker.blobs]);
    let child = await entryOf('team/app/worker:1.1', undefined);
    for (let i = 0; i < depth; i++) {
      const raw = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [child] }));
      await writeFile(join(dir, 'blobs/sha256', digestHex(digestOf(raw))), raw);
      child = { mediaType: 'application/vnd.oci.image.index.v1+json', digest: digestOf(raw), size: raw.length };
    }
    await writeLayout(dir, [{ ...child, annotations: { 'org.opencontainers.image.ref.name': 'deep/tool:1' } }]);
    const dest = join(t.dir, `dest-deep-${depth}`);
    if (ok) {
      const r = await runCli(['from-oci', dir, dest]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /imported 1 image/);
    } else {
      await refused([dir, dest], 'INDEX_TOO_DEEP', dest);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// 3. Names

test('from-oci: --name renames the one image of a layout; names that cannot be stored are refused', async () => {
  const dest = join(t.dir, 'dest-names');
  const worker = fixture('team/app/worker:1.1').digest;
  const r = await runCli(['from-oci', single, dest, '--name', 'renamed/worker:stable']);
  assert.equal(r.code, 0, r.stderr);
  await assertServed(dest, [{ name: 'renamed/worker:stable', digest: worker }], ['team/app/worker:1.1'], join(t.dir, 'judge-names'));

  const none = join(t.dir, 'dest-none');
  await refused([layout, none, '--name', 'one/image:1'], 'USAGE', none);
  await refused([single, none, '--name', `renamed/worker@sha256:${'0'.repeat(64)}`], 'DIGEST_MISMATCH', none);
  for (const [name, code] of [
    ['team/App:v1', 'NAME_INVALID'],
    ['team/app:-v1', 'TAG_INVALID'],
    ['127.0.0.1:5000/team/app:v1', 'NAME_INVALID'],
  ] as const) {
    const dir = await copyLayout(single, 'badname');
    const index = await readIndex(dir);
    index.manifests[0]!.annotations = { 'org.opencontainers.image.ref.name': name };
    await writeFile(join(dir, 'index.json'), JSON.stringify(index));
    const rr = await refused([dir, none], code, none);
    assert.ok(rr.stderr.includes('org.opencontainers.image.ref.name') || rr.stderr.includes('registry host'), rr.stderr);
  }
  // --strip-registry drops the host the registry cannot store.
  const stripped = await runCli(['from-oci', join(t.dir, 'badname'), join(t.dir, 'dest-stripped'), '--strip-registry']);
  assert.equal(stripped.code, 0, stripped.stderr);
  assert.match(stripped.stdout, /imported 1 image/);

  // Two entries naming one tag, with different manifests: neither wins.
  const two = await copyLayout(layout, 'conflict');
  const index = await readIndex(two);
  for (const e of index.manifests.slice(0, 2)) e.annotations = { 'org.opencontainers.image.ref.name': 'same/name:1' };
  await writeFile(join(two, 'index.json'), JSON.stringify(index));
  await refused([two, none, '--repo', 'x/y'], 'TAG_CONFLICT', none);
  // With --keep-going the others are written (exit 3).
  const partial = await runCli(['from-oci', two, join(t.dir, 'dest-partial'), '--repo', 'team/app/worker', '--keep-going']);
  assert.equal(partial.code, 3, partial.stderr);
  assert.match(partial.stdout, /imported 5 images/);
});

// ---------------------------------------------------------------------------------------------
// 4. Bad input

test('from-oci: a damaged layout directory is refused with its code, nothing written', async () => {
  const dest = join(t.dir, 'dest-bad');
  const index = await readIndex(single);
  const manifest = JSON.parse(await readFile(join(single, 'blobs/sha256', digestHex(index.manifests[0]!.digest as Digest)), 'utf8')) as { layers: Array<{ digest: string; size: number }> };
  const layer = manifest.layers.at(-1)!;
  const layerPath = (dir: string): string => join(dir, 'blobs/sha256', digestHex(layer.digest as Digest));

  let dir = await copyLayout(single, 'missing');
  await rm(layerPath(dir));
  let r = await refused([dir, dest], 'BLOB_UNKNOWN', dest);
  assert.ok(r.stderr.includes(layerPath(dir)), r.stderr);
  // With --json: one document of the schema, the problem in it.
  const failed = checkJsonDocument('from-oci', (await runCli(['from-oci', dir, dest, '--json'])).stdout, 1);
  assert.equal((failed['error'] as { code: string }).code, 'INCOMPLETE');
  assert.deepEqual((failed['problems'] as Array<{ code: string }>).map((p) => p.code), ['BLOB_UNKNOWN']);

  dir = await copyLayout(single, 'wronghash');
  const bytes = await readFile(layerPath(dir));
  bytes[0] = bytes[0]! ^ 0xff;
  await writeFile(layerPath(dir), bytes);
  r = await refused([dir, dest], 'DIGEST_MISMATCH', dest);
  assert.ok(r.stderr.includes(layerPath(dir)), r.stderr);
  // --no-verify keeps the size check.
  await truncate(layerPath(dir), layer.size - 1);
  await refused([dir, dest, '--no-verify'], 'SIZE_INVALID', dest);

  dir = await copyLayout(single, 'notindex');
  await writeFile(join(dir, 'index.json'), await readFile(join(dir, 'blobs/sha256', digestHex(index.manifests[0]!.digest as Digest))));
  await refused([dir, dest], 'MANIFEST_INVALID', dest);
  await writeFile(join(dir, 'index.json'), '[]');
  await refused([dir, dest], 'MANIFEST_INVALID', dest);

  dir = await copyLayout(single, 'nolayoutfile');
  await rm(join(dir, 'oci-layout'));
  await refused([dir, dest], 'NOT_OCI_LAYOUT', dest);

  // FIFOs: never opened, so nothing hangs.
  dir = await copyLayout(single, 'fifo-index');
  await rm(join(dir, 'index.json'));
  execFileSync('mkfifo', [join(dir, 'index.json')]);
  await refused([dir, dest], 'NOT_OCI_LAYOUT', dest);
  dir = await copyLayout(single, 'fifo-blob');
  await rm(layerPath(dir));
  execFileSync('mkfifo', [layerPath(dir)]);
  r = await refused([dir, dest], 'BLOB_INVALID', dest);
  assert.ok(r.stderr.includes('FIFO'), r.stderr);
});

test('from-oci --no-verify takes no blob through a symbolic link out of the layout; verified, or inside it, the link is followed', async () => {
  const dest = join(t.dir, 'dest-symlink-out');
  const index = await readIndex(single);
  const manifest = JSON.parse(await readFile(join(single, 'blobs/sha256', digestHex(index.manifests[0]!.digest as Digest)), 'utf8')) as { layers: Array<{ digest: string; size: number }> };
  const layer = manifest.layers.at(-1)!;
  const dir = await copyLayout(single, 'symlink-out');
  const layerPath = join(dir, 'blobs/sha256', digestHex(layer.digest as Digest));
  const bytes = await readFile(layerPath);
  // A file of the host outside the layout, of the layer's size: without hashing only the size is checked.
  const outside = join(t.dir, 'symlink-out-secret');
  await writeFile(outside, Buffer.alloc(bytes.length, 0x5a));
  await rm(layerPath);
  await symlink(outside, layerPath);
  const r = await refused([dir, dest, '--no-verify'], 'BLOB_INVALID', dest);
  assert.match(r.stderr, /outside the input/);
  // blobs/ itself a link out of the layout: outside too.
  const blobsElsewhere = join(t.dir, 'symlink-out-blobs');
  await rm(blobsElsewhere, { recursive: true, force: true });
  await copyTree(join(single, 'blobs'), blobsElsewhere);
  const viaDir = await copyLayout(single, 'symlink-out-dir');
  await rm(join(viaDir, 'blobs'), { recursive: true });
  await symlink(blobsElsewhere, join(viaDir, 'blobs'));
  await refused([viaDir, dest, '--no-verify'], 'BLOB_INVALID', dest);
  // Verified, the links are followed: the blob's bytes are checked against its digest.
  await refused([dir, dest], 'DIGEST_MISMATCH', dest);
  const verified = await runCli(['from-oci', viaDir, dest]);
  assert.equal(verified.code, 0, verified.stderr);
  // A link to a file inside the layout is followed without hashing too.
  await writeFile(join(dir, 'kept-layer'), bytes);
  await rm(layerPath);
  await symlink(join(dir, 'kept-layer'), layerPath);
  const inside = await runCli(['from-oci', dir, join(t.dir, 'dest-symlink-in'), '--no-verify']);
  assert.equal(inside.code, 0, inside.stderr);
});

test('from-oci: a tar with entries outside the layout, a link entry, a wrong hash, truncated or not a tar is refused, nothing written', async () => {
  const dest = join(t.dir, 'dest-badtar');
  const files = await layoutEntries(single);
  const index = await readIndex(single);
  const manifest = JSON.parse(await readFile(join(single, 'blobs/sha256', digestHex(index.manifests[0]!.digest as Digest)), 'utf8')) as { layers: Array<{ digest: string }> };
  const layerEntry = `blobs/sha256/${digestHex(manifest.layers.at(-1)!.digest as Digest)}`;
  const cases: Array<[string, Buffer, string]> = [
    ['dotdot', tarOf([...files, { path: '../x', data: Buffer.from('x') }]), 'ARCHIVE_INVALID'],
    ['inner-dotdot', tarOf([{ path: 'blobs/../../x', data: Buffer.from('x') }, ...files]), 'ARCHIVE_INVALID'],
    ['absolute', tarOf([{ path: '/etc/x', data: Buffer.from('x') }, ...files]), 'ARCHIVE_INVALID'],
    ['symlink', tarOf([...files.filter((f) => f.path !== layerEntry), { path: layerEntry, type: 'SymbolicLink', linkpath: '/etc/passwd' }]), 'ARCHIVE_INVALID'],
    ['wronghash', tarOf(files.map((f) => (f.path === layerEntry ? { ...f, data: Buffer.from(f.data.map((b, i) => (i === 0 ? b ^ 0xff : b))) } : f))), 'DIGEST_MISMATCH'],
    ['missing', tarOf(files.filter((f) => f.path !== layerEntry)), 'BLOB_UNKNOWN'],
    ['noindex', tarOf(files.filter((f) => f.path !== 'index.json')), 'NOT_OCI_LAYOUT'],
    ['notatar', Buffer.alloc(4096, 'not a tar '), 'ARCHIVE_INVALID'],
    // zstd's magic number: a compression this Node cannot undo is refused, not a crash.
    ['zstd', Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(4092, 1)]), 'ARCHIVE_INVALID'],
  ];
  const whole = await readFile(archive);
  cases.push(['truncated', whole.subarray(0, Math.floor(whole.length / 2) + 100), 'ARCHIVE_INVALID']);
  for (const [name, bytes, code] of cases) {
    const tar = join(t.dir, `bad-${name}.tar`);
    await writeFile(tar, bytes);
    const r = await refused([tar, dest], code, dest);
    if (code === 'BLOB_UNKNOWN' || code === 'DIGEST_MISMATCH') assert.ok(r.stderr.includes(`${tar}:${layerEntry}`), r.stderr);
    // Into an output that did not exist: not even a directory is left.
    await assert.rejects(stat(dest), `bad-${name}.tar: "${dest}" was left behind`);
  }
  // A tar ends at its end-of-archive blocks: an endless input (here /dev/zero, all end blocks) is not read on.
  await refused(['/dev/zero', dest], 'ARCHIVE_INVALID', dest);
  // The truncated archive, read by a dry run too.
  await refused([join(t.dir, 'bad-truncated.tar'), join(t.dir, 'dry-badtar'), '--dry-run'], 'ARCHIVE_INVALID', join(t.dir, 'dry-badtar'));
  // An entry that names a layer as its manifest: not JSON, for a run and for a dry run (which keeps only JSON blobs in memory).
  const layerFile = files.find((f) => f.path === layerEntry)!;
  const asManifest = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifest.layers.at(-1)!.digest, size: layerFile.data.length, annotations: { 'org.opencontainers.image.ref.name': 'team/layer:1' } }] };
  const layerTar = join(t.dir, 'bad-layer-as-manifest.tar');
  await writeFile(layerTar, tarOf([...files.filter((f) => f.path !== 'index.json'), { path: 'index.json', data: Buffer.from(JSON.stringify(asManifest)) }]));
  await refused([layerTar, dest], 'MANIFEST_INVALID', dest);
  await refused([layerTar, join(t.dir, 'dry-badtar'), '--dry-run'], 'MANIFEST_INVALID', join(t.dir, 'dry-badtar'));
  // Entries that are not the layout's (docker save's manifest.json, a link elsewhere) are skipped.
  const extra = join(t.dir, 'extra.tar');
  await writeFile(extra, tarOf([...files, { path: 'manifest.json', data: Buffer.from('[]') }, { path: 'legacy/layer.tar', type: 'SymbolicLink', linkpath: `../${layerEntry}` }]));
  const ok = await runCli(['from-oci', extra, dest]);
  assert.equal(ok.code, 0, ok.stderr);
});

// ---------------------------------------------------------------------------------------------
// 5. Detection

test('from-oci: a layout where registry storage is expected, and registry storage given to from-oci, name the command to use', async () => {
  const ls = await runCli(['ls', layout]);
  assert.equal(ls.code, 1);
  assert.match(ls.stderr, /is an OCI image layout: import it into registry storage with "regfs from-oci/);
  assert.match(ls.stderr, /\[NOT_REGISTRY\]/);
  const dest = join(t.dir, 'dest-detect');
  const r = await refused([FIXTURE_ROOT, dest], 'NOT_OCI_LAYOUT', dest);
  assert.match(r.stderr, /is registry storage.*regfs extract/);
  const list = join(t.dir, 'one.list');
  await writeFile(list, 'team/app:v1\n');
  const before = await listFiles(single);
  const into = await runCli(['extract', list, FIXTURE_ROOT, single]);
  assert.equal(into.code, 1);
  assert.match(into.stderr, /is an OCI image layout, not registry storage.*\[NOT_REGISTRY\]/);
  assert.deepEqual(await listFiles(single), before);
  await assert.rejects(stat(join(single, 'docker')));
});

test('from-oci and apply --dry-run into an output that holds the images count its blobs as already there', async () => {
  const { withTempDir, writeListFile } = await import('./helpers/tree.js');
  await withTempDir(async (dir) => {
    const list = await writeListFile(dir, ['team/app:v1', 'multiarch/tool:1.0']);
    const tar = join(dir, 'b.tar');
    const layout = join(dir, 'layout');
    const reg = join(dir, 'reg');
    for (const args of [['bundle', list, FIXTURE_ROOT, tar], ['to-oci', list, FIXTURE_ROOT, layout], ['apply', tar, reg]]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, r.stderr);
    }
    for (const args of [['apply', tar, reg], ['from-oci', tar, reg], ['from-oci', layout, reg]]) {
      const r = await runCli([...args, '--dry-run', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const plan = (JSON.parse(r.stdout) as { plan: { blobs: number; blobsAlreadyThere: number } }).plan;
      assert.ok(plan.blobs > 0);
      assert.equal(plan.blobsAlreadyThere, plan.blobs, `${args.join(' ')}: every blob is there`);
    }
  });
});

test('from-oci: index.json keys are matched as Go matches them (skopeo agrees): "Manifests" is manifests, and of "annotations" and "Annotations" the last name wins', async () => {
  const base = await readIndex(single);
  const entry = base.manifests[0]!;
  const name = refName(entry);
  const { annotations: _, ...bare } = entry;
  const cases: Array<[string, string]> = [
    ['upper-manifests', JSON.stringify({ schemaVersion: 2, Manifests: [entry] })],
    ['two-annotations', JSON.stringify({ schemaVersion: 2, manifests: [{ ...bare, annotations: { 'org.opencontainers.image.ref.name': 'first/name:1' }, Annotations: { 'org.opencontainers.image.ref.name': name } }] })],
  ];
  for (const [label, text] of cases) {
    const l = await copyLayout(single, `go-keys-${label}`);
    await writeFile(join(l, 'index.json'), text);
    assert.equal(await skopeoManifestDigestOf(`oci:${l}:${name}`), entry.digest, `${label}: skopeo reads ${name}`);
    const dest = join(t.dir, `go-keys-${label}-dest`);
    const r = await fromOci({ input: l, output: dest });
    assert.deepEqual(r.images.map((i) => `${i.repo}:${i.tag}@${i.digest}`), [`${name.split(':')[0]}:${name.split(':')[1]}@${entry.digest}`], label);
  }
});

test('from-oci and inventory: an index.json without manifests, or with "manifests": null, is an empty index as Go decodes it (0 images), as "manifests": [] is', async () => {
  for (const [label, text] of [
    ['missing', '{"schemaVersion":2}'],
    ['null', '{"schemaVersion":2,"manifests":null}'],
    ['empty', '{"schemaVersion":2,"manifests":[]}'],
  ] as const) {
    const l = await copyLayout(single, `no-manifests-${label}`);
    await writeFile(join(l, 'index.json'), text);
    const dest = join(t.dir, `no-manifests-${label}-dest`);
    const r = await runCli(['from-oci', l, dest]);
    assert.equal(r.code, 0, `${label}: ${r.stderr}`);
    assert.match(r.stderr + r.stdout, /imported 0 images/, label);
    const inv = await runCli(['inventory', l]);
    assert.equal(inv.code, 0, `${label}: ${inv.stderr}`);
  }
  // A document that is an image manifest (config and layers), as index.json, stays refused.
  const l = await copyLayout(single, 'no-manifests-image');
  await writeFile(join(l, 'index.json'), '{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:' + 'a'.repeat(64) + '","size":2},"layers":[]}');
  await refused([l, join(t.dir, 'no-manifests-image-dest')], 'MANIFEST_INVALID', join(t.dir, 'no-manifests-image-dest'));
});
