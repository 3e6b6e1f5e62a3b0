/**
 * verify and gc on registry storage on S3, judged against the same commands on a filesystem
 * copy of the same tree and by the real registry on S3 (docker-registry 2.8.2 on Ceph's RADOS
 * Gateway): the same findings and plans, damage found the same way, `verify --deep` reading
 * what plain verify on S3 takes from listings, gc --apply leaving a tree the registry serves,
 * stale multipart uploads aborted, and no blob data read without --deep.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { closeStorage, configureStorage, s3Service } from '../src/storage/config.js';
import { verify } from '../src/ops/verify.js';
import { gc } from '../src/ops/gc.js';
import { FIXTURE_ROOT, readFixtureManifest } from './helpers/fixture.js';
import { copyTree, listFiles } from './helpers/tree.js';
import { ok, startS3World, type S3World } from './helpers/s3.js';

const V2 = 'docker/registry/v2';

let w: S3World;
/** `s3://src/reg` copied to disk, key for key. */
let regDisk: string;

/** Copy every key of one S3 root to another (server-side). */
async function copyOnS3(from: string, to: string): Promise<void> {
  const a = w.service.root(from);
  const b = w.service.root(to);
  for await (const page of a.walk(a.v2)) await Promise.all(page.map((f) => b.placeBlob(a, f.path, `${b.v2}/${relative(a.v2, f.path)}`, f.size, { absent: true })));
}

/** Copy every key of an S3 root into a directory, read through the driver. */
async function copyToDisk(from: string, dir: string): Promise<void> {
  const a = w.service.root(from);
  for await (const page of a.walk(a.v2)) {
    for (const f of page) {
      const chunks: Buffer[] = [];
      for await (const c of (await a.reader(f.path)) as AsyncIterable<Buffer>) chunks.push(c);
      const to = join(dir, V2, relative(a.v2, f.path));
      await mkdir(dirname(to), { recursive: true });
      await writeFile(to, Buffer.concat(chunks));
    }
  }
}

/** One tree on S3 and its copy on disk, changed alike. */
interface Twin {
  url: string;
  disk: string;
  put(rel: string, bytes: Buffer): Promise<void>;
  del(rel: string): Promise<void>;
  read(rel: string): Promise<Buffer>;
}

function twin(url: string, disk: string): Twin {
  const s3 = w.service.root(url);
  return {
    url,
    disk,
    async put(rel, bytes) {
      await s3.putContent(`${s3.v2}/${rel}`, bytes);
      await mkdir(dirname(join(disk, V2, rel)), { recursive: true });
      await writeFile(join(disk, V2, rel), bytes);
    },
    async del(rel) {
      await s3.delete(`${s3.v2}/${rel}`);
      await rm(join(disk, V2, rel), { recursive: true, force: true });
    },
    read: (rel) => readFile(join(disk, V2, rel)),
  };
}

/** The output of a run with the storage root of either side as `@`, and without its timing. */
function normalized(text: string, t: { url: string; disk: string }): string {
  const prefix = t.url.slice('s3://'.length).split('/').slice(1).join('/');
  return text
    .replaceAll(join(t.disk, V2), '@')
    .replaceAll(`${prefix}/${V2}`, '@')
    .replace(/"seconds": ?[0-9.e-]+/g, '"seconds":0')
    .replace(/; [0-9.]+ s\n/g, '\n');
}

/** `regfs ARGS` on the S3 side and on the disk side; their outputs, normalized. */
async function both(t: { url: string; disk: string }, s3Args: string[], diskArgs: string[]): Promise<[string, string]> {
  const [cmd, ...rest] = s3Args;
  const [dcmd, ...drest] = diskArgs;
  const onS3 = await w.regfs([cmd!, t.url, ...rest]);
  const onDisk = await w.regfs([dcmd!, t.disk, ...drest]);
  assert.equal(onS3.code, onDisk.code, `${s3Args.join(' ')}: exit codes\n${onS3.stderr}\n${onDisk.stderr}`);
  // A run that finishes (not one that fails) says what it cost on S3.
  if (onS3.code !== 1) assert.ok(REQUESTS_JSON.test(onS3.stdout) || REQUESTS_LINE.test(onS3.stderr), `no request counts from ${s3Args.join(' ')}:\n${onS3.stdout}\n${onS3.stderr}`);
  assert.equal(normalized(withoutRequests(onS3.stderr), t), normalized(onDisk.stderr, t), s3Args.join(' '));
  return [normalized(withoutRequests(onS3.stdout), t), normalized(onDisk.stdout, t)];
}

/** A run's output on S3 without what only a run on S3 prints: its request counts (`s3Requests` in JSON, an `s3:` line on stderr). */
function withoutRequests(text: string): string {
  return text.replace(REQUESTS_JSON, '').replace(REQUESTS_LINE, '');
}

const REQUESTS_JSON = /\n {2}"s3Requests": \{[^}]*\},/;
const REQUESTS_LINE = /^s3: \d+ requests? .*\n/m;

/** gc's JSON on S3 without its list of stale multipart uploads (which gc on disk has not), when it is empty. */
function withoutUploads(json: string): string {
  assert.match(json, /\n {2}"uploads": \[\],\n/);
  return json.replace(/\n {2}"uploads": \[\],\n/, '\n');
}

interface Finding {
  code: string;
  path: string;
}

function findings(json: string): Finding[] {
  return (JSON.parse(json) as { findings: Finding[] }).findings;
}

/** The blob data path of a digest, relative to the storage root. */
function blobRel(d: string): string {
  const hex = d.slice('sha256:'.length);
  return `blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
}

function linkRel(repo: string, kind: '_layers' | '_manifests/revisions', d: string): string {
  return `repositories/${repo}/${kind}/sha256/${d.slice('sha256:'.length)}/link`;
}

/** The config and layers of an image manifest in a disk tree. */
async function partsOf(disk: string, d: string): Promise<{ config: string; layers: string[] }> {
  const m = JSON.parse(await readFile(join(disk, V2, blobRel(d)), 'utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
  return { config: m.config.digest, layers: m.layers.map((l) => l.digest) };
}

describe('verify and gc on S3-backed registry storage', { timeout: 900_000 }, () => {
  before(async () => {
    w = await startS3World(['src', 'dst']);
    regDisk = join(w.scratch, 'reg');
    await copyToDisk('s3://src/reg', regDisk);
  });

  after(async () => {
    closeStorage();
    await w?.stop();
  });

  test('verify and gc (dry run) on S3 print what they print on the disk copy of the same tree', async () => {
    const list = join(w.scratch, 'images.list');
    await writeFile(list, 'team/app:v1\nmultiarch/tool:1.0\nlibrary/busybox:1.36\n');
    for (const t of [
      { url: 's3://src/verbatim', disk: FIXTURE_ROOT },
      { url: 's3://src/reg', disk: regDisk },
    ]) {
      // Without --deep, verify on S3 checks sizes: what verify --fast checks on disk.
      let [s3, disk] = await both(t, ['verify', '--json'], ['verify', '--fast', '--json']);
      assert.equal(s3, disk, `verify ${t.url}`);
      [s3, disk] = await both(t, ['verify'], ['verify', '--fast']);
      assert.equal(s3.replace('sizes only (--deep hashes)', '#'), disk.replace('sizes only (--fast)', '#'), `verify ${t.url}`);
      // With --deep, what verify does on disk by default: every blob hashed.
      [s3, disk] = await both(t, ['verify', '--deep', '--json'], ['verify', '--json']);
      assert.equal(s3, disk, `verify --deep ${t.url}`);
      assert.ok((JSON.parse(s3) as { counts: { bytesHashed: number } }).counts.bytesHashed > 0);
      // --list: what the listed images need, the same way.
      [s3, disk] = await both(t, ['verify', '--list', list, '--json'], ['verify', '--list', list, '--fast', '--json']);
      assert.equal(s3, disk, `verify --list ${t.url}`);
      [s3, disk] = await both(t, ['verify', '--list', list, '--deep', '--json'], ['verify', '--list', list, '--json']);
      assert.equal(s3, disk, `verify --list --deep ${t.url}`);
      assert.ok((JSON.parse(s3) as { counts: { bytesHashed: number } }).counts.bytesHashed > 0);
      for (const args of [['gc', '--json'], ['gc', '-v'], ['gc', '-m', '--json'], ['gc', '-m', '--no-keep-referrers', '-v']]) {
        [s3, disk] = await both(t, args, args);
        assert.equal(args.includes('--json') ? withoutUploads(s3) : s3, disk, `${args.join(' ')} ${t.url}`);
      }
    }
    // --fast and --deep exclude each other, on S3 as on disk.
    for (const root of ['s3://src/verbatim', FIXTURE_ROOT]) {
      const r = await w.regfs(['verify', root, '--fast', '--deep']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--fast and --deep exclude each other.*\[USAGE\]/);
    }
  });

  test('damage on S3 is found as on disk; --deep finds changed bytes of the same size, plain verify on S3 does not', async () => {
    const t = twin('s3://dst/damaged', join(w.scratch, 'damaged'));
    await copyOnS3('s3://src/verbatim', t.url);
    await copyTree(FIXTURE_ROOT, t.disk);
    const digests = w.digests;
    const app = await partsOf(t.disk, digests.get('team/app:v1')!);
    const worker = digests.get('team/app/worker:1.0')!;
    const busybox = await partsOf(t.disk, digests.get('library/busybox:1.36')!);
    const nomediatype = await partsOf(t.disk, digests.get('tools/nomediatype:1.0')!);
    // A deleted blob, a blob of the wrong size, a link with a newline, an untagged manifest.
    await t.del(dirname(blobRel(app.layers.at(-1)!)));
    await t.put(blobRel(app.config), Buffer.concat([await t.read(blobRel(app.config)), Buffer.from('\n')]));
    await t.put(linkRel('team/app/worker', '_manifests/revisions', worker), Buffer.from(`${worker}\n`));
    await t.del('repositories/team/app/_manifests/tags/v2');
    // Bytes changed, size kept: only hashing finds it.
    const changed = await t.read(blobRel(busybox.layers[0]!));
    const at = changed.length >> 1;
    changed.writeUInt8(changed.readUInt8(at) ^ 0xff, at);
    await t.put(blobRel(busybox.layers[0]!), changed);
    // A link of the right length holding another digest: its ETag is another MD5, so plain
    // verify reads it too.
    const sameSize = linkRel('tools/nomediatype', '_layers', nomediatype.layers[0]!);
    await t.put(sameSize, Buffer.from(nomediatype.config));

    const [deep, hashed] = await both(t, ['verify', '--deep', '--json'], ['verify', '--json']);
    assert.equal(deep, hashed);
    const [plain, fast] = await both(t, ['verify', '--json'], ['verify', '--fast', '--json']);
    const deepCodes = findings(deep).map((f) => `${f.code} ${f.path}`);
    const plainCodes = findings(plain).map((f) => `${f.code} ${f.path}`);
    for (const expected of [`LINK_INVALID @/${linkRel('team/app/worker', '_manifests/revisions', worker)}`, `SIZE_INVALID @/${blobRel(app.config)}`, `LINK_DANGLING @/${linkRel('team/app', '_layers', app.layers.at(-1)!)}`]) {
      assert.ok(plainCodes.includes(expected), `${expected} in ${plainCodes.join('\n')}`);
      assert.ok(deepCodes.includes(expected), expected);
    }
    const mismatch = `DIGEST_MISMATCH @/${blobRel(busybox.layers[0]!)}`;
    const wrongLink = `LINK_INVALID @/${sameSize}`;
    assert.ok(deepCodes.includes(mismatch) && deepCodes.includes(wrongLink), deepCodes.join('\n'));
    assert.ok(!plainCodes.includes(mismatch) && plainCodes.includes(wrongLink), plainCodes.join('\n'));
    // Plain verify on S3 finds what --fast finds on disk, which reads every link.
    assert.deepEqual(findings(plain), findings(fast));

    // gc plans the same from the damaged tree; the untagged manifest goes with -m.
    for (const args of [['gc', '--json'], ['gc', '-m', '--json']]) {
      const [s3, disk] = await both(t, args, args);
      assert.equal(withoutUploads(s3), disk, args.join(' '));
    }
    const [plan] = await both(t, ['gc', '-m', '--json'], ['gc', '-m', '--json']);
    assert.ok((JSON.parse(plan) as { manifests: Array<{ digest: string }> }).manifests.some((m) => m.digest === digests.get('team/app:v2')), plan);
  });

  test('gc --apply on S3 deletes what gc deletes on disk; the registry on S3 serves every tagged image after', async () => {
    const t = twin('s3://dst/gc', join(w.scratch, 'gc'));
    await copyOnS3('s3://src/reg', t.url);
    await copyTree(regDisk, t.disk);
    await t.del('repositories/team/app/_manifests/tags/v2');
    const stray = randomBytes(3000);
    const strayDigest = `sha256:${createHash('sha256').update(stray).digest('hex')}`;
    await t.put(blobRel(strayDigest), stray);
    // Someone's files in directories gc deletes (a blob's, a revision link's): they are not
    // regfs's to delete, and stay, with their directories.
    const v2Hex = w.digests.get('team/app:v2')!.slice('sha256:'.length);
    const foreign = [join(dirname(blobRel(strayDigest)), 'notes'), `repositories/team/app/_manifests/revisions/sha256/${v2Hex}/notes`];
    for (const f of foreign) await t.put(f, Buffer.from('mine\n'));

    const [s3, disk] = await both(t, ['gc', '-m', '--apply', '--json'], ['gc', '-m', '--apply', '--json']);
    assert.equal(withoutUploads(s3), disk);
    for (const f of foreign) assert.equal((await t.read(f)).toString(), 'mine\n', `${f} stays on disk`);
    const left = new Set([...(await w.keysOf('dst', 'gc')).keys()].map((k) => relative(`gc/${V2}`, k)));
    for (const f of foreign) assert.ok(left.has(f), `${f} stays on S3`);
    for (const gone of [blobRel(strayDigest), `repositories/team/app/_manifests/revisions/sha256/${v2Hex}/link`]) assert.ok(!left.has(gone), `${gone} is deleted`);
    const result = JSON.parse(s3) as { applied: boolean; blobs: Array<{ digest: string }>; manifests: Array<{ digest: string }> };
    assert.ok(result.applied);
    assert.ok(result.blobs.some((b) => b.digest === strayDigest));
    assert.ok(result.manifests.some((m) => m.digest === w.digests.get('team/app:v2')));
    // The same files are left on both sides.
    const keys = [...(await w.keysOf('dst', 'gc')).keys()].map((k) => relative(`gc/${V2}`, k)).sort();
    assert.deepEqual(keys, await listFiles(join(t.disk, V2)));
    // A second run finds nothing more.
    const again = JSON.parse(ok(await w.regfs(['gc', t.url, '-m', '--json'])).stdout) as { blobs: unknown[]; manifests: unknown[]; links: unknown[] };
    assert.deepEqual([again.blobs, again.manifests, again.links], [[], [], []]);

    const manifest = await readFixtureManifest();
    const tagged = manifest.refs.filter((r) => r.overwritten !== true && r.kind !== 'schema1' && r.ref !== 'multiarch/tool:nested' && r.ref !== 'team/app:v2').map((r) => r.ref);
    await w.assertServedOnS3('dst', 'gc', w.served(tagged), ['team/app:v2']);
  });

  test('gc on S3 judges a manifest linked only in _layers whose bytes changed by decoding it, as on disk', async () => {
    const t = twin('s3://dst/decode', join(w.scratch, 'decode'));
    await copyOnS3('s3://src/reg', t.url);
    await copyTree(regDisk, t.disk);
    // team/app:v2's manifest, untagged and linked only in _layers, its bytes changed but still a manifest.
    const v2 = w.digests.get('team/app:v2')!;
    await t.del('repositories/team/app/_manifests/tags/v2');
    await t.del(dirname(linkRel('team/app', '_manifests/revisions', v2)));
    await t.put(linkRel('team/app', '_layers', v2), Buffer.from(v2));
    await t.put(blobRel(v2), Buffer.concat([await t.read(blobRel(v2)), Buffer.from(' ')]));
    // A _layers-linked blob whose bytes are not its digest's and no manifest: swept.
    const junk = `sha256:${createHash('sha256').update('not these bytes').digest('hex')}`;
    await t.put(blobRel(junk), randomBytes(200));
    await t.put(linkRel('team/app', '_layers', junk), Buffer.from(junk));

    const [s3, disk] = await both(t, ['gc', '--json'], ['gc', '--json']);
    assert.equal(withoutUploads(s3), disk);
    const plan = JSON.parse(s3) as { problems: Array<{ code: string; digest: string }>; blobs: Array<{ digest: string }> };
    assert.deepEqual(
      plan.problems.map((p) => [p.code, p.digest]),
      [['DIGEST_MISMATCH', v2]],
    );
    assert.ok(plan.blobs.some((b) => b.digest === junk), JSON.stringify(plan.blobs));
    // gc --apply refuses while it is uncertain, on S3 as on disk, and deletes nothing.
    const before = await w.keysOf('dst', 'decode');
    const [refusedS3, refusedDisk] = await both(t, ['gc', '--apply', '--json'], ['gc', '--apply', '--json']);
    assert.equal(refusedS3, refusedDisk);
    assert.equal((JSON.parse(refusedS3) as { error: { code: string } }).error.code, 'UNSAFE');
    assert.deepEqual(await w.keysOf('dst', 'decode'), before);
  });

  test('gc on S3 lists multipart uploads under the storage root and aborts the stale ones with --apply', async () => {
    await copyOnS3('s3://src/reg', 's3://dst/up');
    const { client } = w.service;
    const start = async (key: string): Promise<string> => {
      const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'dst', Key: key }));
      await client.send(new UploadPartCommand({ Bucket: 'dst', Key: key, UploadId, PartNumber: 1, Body: randomBytes(1024) }));
      return UploadId!;
    };
    const uploads = async (prefix: string): Promise<string[]> => ((await client.send(new ListMultipartUploadsCommand({ Bucket: 'dst', Prefix: prefix }))).Uploads ?? []).map((u) => u.UploadId!).sort();
    const staleKey = `up/${V2}/repositories/team/app/_uploads/0b1e6c9e-stale/data`;
    const stale = await start(staleKey);
    // Outside the storage root: never gc's.
    const outside = await start('up-other/docker/registry/v2/repositories/x/_uploads/u/data');
    await new Promise((resolve) => setTimeout(resolve, 8000));
    const fresh = await start(`up/${V2}/repositories/team/app/_uploads/5f0d7a2c-fresh/data`);
    // Stale: started more than 4 seconds ago.
    const age = String(4 / 3600);

    const dry = JSON.parse(ok(await w.regfs(['gc', 's3://dst/up', '--upload-age', age, '--json'])).stdout) as { uploads: Array<{ key: string; uploadId: string; initiated: string }> };
    assert.deepEqual(
      dry.uploads.map((u) => [u.key, u.uploadId]),
      [[staleKey, stale]],
    );
    assert.ok(!Number.isNaN(Date.parse(dry.uploads[0]!.initiated)));
    assert.deepEqual(await uploads('up'), [fresh, outside, stale].sort(), 'a dry run aborts nothing');
    const text = ok(await w.regfs(['gc', 's3://dst/up', '--upload-age', age, '-v'])).stdout;
    assert.match(text, /upload {4}up\/docker\/registry\/v2\/repositories\/team\/app\/_uploads\/0b1e6c9e-stale\/data {2}\d{4}-/);
    assert.match(text, /would abort 1 multipart upload older than/);

    const applied = JSON.parse(ok(await w.regfs(['gc', 's3://dst/up', '--upload-age', age, '--apply', '--json'])).stdout) as { uploads: Array<{ uploadId: string }> };
    assert.deepEqual(
      applied.uploads.map((u) => u.uploadId),
      [stale],
    );
    assert.deepEqual(await uploads('up'), [fresh, outside].sort(), 'the stale upload is aborted, the fresh one and the one outside kept');
    // On disk, the result has no uploads.
    const onDisk = JSON.parse(ok(await w.regfs(['gc', regDisk, '--json'])).stdout) as Record<string, unknown>;
    assert.ok(!('uploads' in onDisk));
  });

  test('requests: verify reads no blob data but manifests without --deep, and every blob once with it', async () => {
    Object.assign(process.env, w.env);
    configureStorage({ s3Endpoint: w.s3.endpoint, jobs: 8 });
    const service = await s3Service();
    const read: string[] = [];
    service.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'GetObjectCommand') read.push((args.input as { Key: string }).Key);
        return next(args);
      },
      { step: 'initialize', name: 'testGetObjectKeys' },
    );
    const root = 'verbatim/docker/registry/v2';
    const blobKeys = [...(await w.keysOf('src', 'verbatim')).keys()].filter((k) => k.startsWith(`${root}/blobs/`)).sort();
    const manifestKeys = new Set(
      [...(await w.keysOf('src', 'verbatim')).keys()]
        .filter((k) => /\/_manifests\/revisions\/sha256\/[0-9a-f]{64}\/link$/.test(k))
        .map((k) => `${root}/${blobRel(`sha256:${k.split('/').at(-2)!}`)}`),
    );

    service.resetRequestCounts();
    const plain = await verify({ root: 's3://src/verbatim' });
    const plainCounts = service.requestCounts();
    const plainBlobReads = read.filter((k) => k.startsWith(`${root}/blobs/`));
    assert.equal(plain.counts.bytesHashed, 0);
    assert.ok(plainBlobReads.length > 0 && plainBlobReads.every((k) => manifestKeys.has(k)), `blob data read without --deep: ${plainBlobReads.filter((k) => !manifestKeys.has(k)).join(', ')}`);
    // Opening the root looks for it (a listing of its top level); then one listing of the whole tree.
    assert.equal(plainCounts.HeadObject, undefined, JSON.stringify(plainCounts));
    assert.equal(plainCounts.ListObjectsV2, 2, JSON.stringify(plainCounts));

    read.length = 0;
    service.resetRequestCounts();
    const deep = await verify({ root: 's3://src/verbatim', deep: true, jobs: 4 });
    assert.ok(deep.counts.bytesHashed > 0);
    const deepBlobReads = read.filter((k) => k.startsWith(`${root}/blobs/`));
    // Every blob hashed once (a manifest also read as a manifest).
    assert.deepEqual([...new Set(deepBlobReads)].sort(), blobKeys);
    assert.equal(deepBlobReads.length - plainBlobReads.length, blobKeys.length);
    // Every link read.
    const links = [...(await w.keysOf('src', 'verbatim')).keys()].filter((k) => k.endsWith('/link'));
    assert.ok(links.every((k) => read.includes(k)), 'every link read with --deep');
    assert.equal(service.requestCounts().ListObjectsV2, 2);

    // gc --apply: the root looked for (a listing of its top level), one listing to mark, one
    // to sweep, one of uploads, and a DeleteObjects per phase with anything to delete (the
    // revision link, the _layers links, the blobs: the tag's history went with the tag).
    await copyOnS3('s3://src/reg', 's3://dst/requests');
    await w.service.root('s3://dst/requests').delete(`requests/${V2}/repositories/team/app/_manifests/tags/v2`);
    service.resetRequestCounts();
    const swept = await gc({ root: 's3://dst/requests', deleteUntagged: true, apply: true });
    assert.ok(swept.blobs.length > 0 && swept.links.length > 0 && swept.manifests.length === 1);
    const counts = service.requestCounts();
    assert.deepEqual([counts.ListObjectsV2, counts.ListMultipartUploads, counts.DeleteObjects], [3, 1, 3], JSON.stringify(counts));
    assert.deepEqual(Object.keys(counts).sort(), ['DeleteObjects', 'GetObject', 'ListMultipartUploads', 'ListObjectsV2']);
  });
});
