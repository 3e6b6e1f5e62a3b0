/**
 * The storage seam (src/storage/): one conformance suite run against the filesystem driver (in
 * a temp directory) and the S3 driver (on a Ceph RADOS Gateway started for this file, each
 * test under a prefix of its own); blobs moved between the two kinds; the S3 driver's errors;
 * and the real registry as judge: what docker-registry 2.8.2 writes through its `s3` driver,
 * read back by the S3 driver's flat listing, is the tree it writes on disk for the same pushes,
 * key for key and byte for byte.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pLimit, { type LimitFunction } from 'p-limit';
import { ListMultipartUploadsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { isRegfsError } from '../src/errors.js';
import { digestOf, parseDigest } from '../src/digest.js';
import { parseRepoName, parseTag } from '../src/reference.js';
import { createLinker } from '../src/fs/link.js';
import { blobDataPath, storageRoot, layerLinkPath, tagCurrentLinkPath } from '../src/registry/layout.js';
import type { StorageDriver, WalkEntry } from '../src/storage/driver.js';
import { FsStorage } from '../src/storage/fs.js';
import { MIN_PART_SIZE, S3Service, type S3Storage } from '../src/storage/s3.js';
import { checkS3Endpoint, formatS3Root, parseS3Url, s3StorageRoot } from '../src/storage/s3-url.js';
import { registryGarbageCollectDryRun, startRegistry } from '../scripts/lib/registry-server.js';
import { startS3Server, type S3Server } from '../scripts/lib/s3-server.js';
import { skopeoCopy, skopeoManifestDigestOf, withRetry } from '../scripts/lib/skopeo.js';
import { tempDir } from './helpers/tree.js';
import { FIXTURE_ROOT, readFixtureManifest } from './helpers/fixture.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const D1 = parseDigest(`sha256:${'a1'.repeat(32)}`);
const D2 = parseDigest(`sha256:${'b2'.repeat(32)}`);
const APP = parseRepoName('team/app');
const APPLE = parseRepoName('team/apple');
const R = parseRepoName('r');
const V1 = parseTag('v1');

/** A process's command line, '' if it is gone. */
function cmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

async function bytesOf(stream: Readable | undefined): Promise<Buffer> {
  assert.ok(stream !== undefined, 'a stream');
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Every file below a prefix, path and size (a driver may say more: when S3 last wrote it). */
async function walkAll(d: StorageDriver, prefix: string): Promise<WalkEntry[]> {
  const out: WalkEntry[] = [];
  for await (const page of d.walk(prefix)) out.push(...page.map(({ path, size }) => ({ path, size })));
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}

/** Relative path -> bytes of every file below `prefix`, read through the driver. */
async function treeOf(d: StorageDriver, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await walkAll(d, prefix)) {
    const bytes = await bytesOf(await d.reader(e.path));
    assert.equal(bytes.length, e.size, e.path);
    out.set(e.path.slice(prefix.length + 1), createHash('sha256').update(bytes).digest('hex'));
  }
  return out;
}

/** A fresh, empty storage root of one kind. */
type Fresh = () => Promise<StorageDriver>;

/** What every driver must do alike. */
function conformance(kind: string, fresh: Fresh): void {
  test(`${kind}: putContent then getContent gives the bytes, at most maxBytes of them; nothing there is undefined`, async () => {
    const d = await fresh();
    const link = tagCurrentLinkPath(d.v2, APP, V1);
    assert.equal(await d.getContent(link, 200), undefined);
    await d.putContent(link, Buffer.from(D1));
    assert.deepEqual(await d.getContent(link, 200), Buffer.from(D1));
    assert.deepEqual(await d.getContent(link, 7), Buffer.from('sha256:'));
    // Written again: the new content whole.
    await d.putContent(link, Buffer.from(D2));
    assert.deepEqual(await d.getContent(link, 200), Buffer.from(D2));
    const empty = `${d.v2}/empty`;
    await d.putContent(empty, new Uint8Array());
    assert.deepEqual(await d.getContent(empty, 200), Buffer.alloc(0));
  });

  test(`${kind}: stat tells a file and its size, a directory (a prefix of a file), nothing`, async () => {
    const d = await fresh();
    const data = blobDataPath(d.v2, D1);
    await d.putContent(data, Buffer.from('hello'));
    assert.deepEqual(await d.stat(data), { kind: 'file', size: 5 });
    assert.equal((await d.stat(`${d.v2}/blobs/sha256`))?.kind, 'directory');
    assert.equal(await d.stat(blobDataPath(d.v2, D2)), undefined);
    assert.equal(await d.stat(`${d.v2}/blobs/sha2`), undefined, 'a prefix of a name is no directory');
  });

  test(`${kind}: list gives a directory's children sorted, files and directories told apart; a sibling sharing the prefix is not a child`, async () => {
    const d = await fresh();
    await d.putContent(layerLinkPath(d.v2, APP, D1), Buffer.from(D1));
    await d.putContent(tagCurrentLinkPath(d.v2, APP, V1), Buffer.from(D1));
    await d.putContent(tagCurrentLinkPath(d.v2, APPLE, V1), Buffer.from(D1));
    await d.putContent(`${d.v2}/repositories/team/app/zfile`, Buffer.from('x'));
    assert.deepEqual(await d.list(`${d.v2}/repositories/team/app`), [
      { name: '_layers', dir: true },
      { name: '_manifests', dir: true },
      { name: 'zfile', dir: false },
    ]);
    assert.deepEqual(await d.list(`${d.v2}/repositories/team`), [
      { name: 'app', dir: true },
      { name: 'apple', dir: true },
    ]);
    assert.deepEqual(await d.list(`${d.v2}/repositories/none`), []);
  });

  test(`${kind}: walk lists every file below a prefix with its size, flat, and nothing beside it`, async () => {
    const d = await fresh();
    const files = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const path = `${d.v2}/repositories/r${i % 3}/_layers/sha256/${i.toString(16).padStart(64, '0')}/link`;
      const body = Buffer.alloc(i + 1, i);
      await d.putContent(path, body);
      files.set(path, body.length);
    }
    await d.putContent(`${d.v2}/repositoriesX/other`, Buffer.from('no'));
    const listed = await walkAll(d, `${d.v2}/repositories`);
    assert.deepEqual(
      listed,
      [...files].map(([path, size]) => ({ path, size })).sort((a, b) => (a.path < b.path ? -1 : 1)),
    );
    assert.deepEqual(await walkAll(d, `${d.v2}/nothing`), []);
  });

  test(`${kind}: placeBlob from its own kind copies (or links) the data, keeps data of the right size, replaces a cut-short copy`, async () => {
    const src = await fresh();
    const dest = await fresh();
    const bytes = randomBytes(100_000);
    await src.putContent(blobDataPath(src.v2, D1), bytes);
    const at = blobDataPath(dest.v2, D1);
    assert.notEqual(await dest.placeBlob(src, blobDataPath(src.v2, D1), at, bytes.length), 'exists');
    assert.deepEqual(await bytesOf(await dest.reader(at)), bytes);
    assert.equal(await dest.placeBlob(src, blobDataPath(src.v2, D1), at, bytes.length), 'exists');
    await dest.putContent(at, bytes.subarray(0, 10));
    assert.notEqual(await dest.placeBlob(src, blobDataPath(src.v2, D1), at, bytes.length), 'exists');
    assert.deepEqual(await bytesOf(await dest.reader(at)), bytes);
    await assert.rejects(dest.placeBlob(src, blobDataPath(src.v2, D2), blobDataPath(dest.v2, D2), 1), (e) => isRegfsError(e, 'BLOB_UNKNOWN'));
  });

  test(`${kind}: reader streams a file; nothing there is undefined`, async () => {
    const d = await fresh();
    const bytes = randomBytes(300_000);
    await d.putContent(blobDataPath(d.v2, D1), bytes);
    assert.deepEqual(await bytesOf(await d.reader(blobDataPath(d.v2, D1))), bytes);
    assert.equal(await d.reader(blobDataPath(d.v2, D2)), undefined);
  });

  test(`${kind}: delete removes a directory and all below it, not a sibling sharing its prefix; nothing there is no error`, async () => {
    const d = await fresh();
    await d.putContent(tagCurrentLinkPath(d.v2, APP, V1), Buffer.from(D1));
    await d.putContent(layerLinkPath(d.v2, APP, D1), Buffer.from(D1));
    await d.putContent(tagCurrentLinkPath(d.v2, APPLE, V1), Buffer.from(D1));
    await d.delete(`${d.v2}/repositories/team/app`);
    assert.deepEqual(
      (await walkAll(d, `${d.v2}/repositories`)).map((e) => e.path),
      [tagCurrentLinkPath(d.v2, APPLE, V1)],
    );
    await d.delete(`${d.v2}/repositories/team/app`);
    await d.delete(tagCurrentLinkPath(d.v2, APPLE, V1));
    assert.deepEqual(await walkAll(d, `${d.v2}/repositories`), []);
  });
}

describe('storage driver: filesystem', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups) await c();
  });
  const fresh: Fresh = async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    return new FsStorage(storageRoot(t.dir), { outputRoot: t.dir, linker: createLinker('auto') });
  };
  conformance('filesystem', fresh);

  test('filesystem: a FIFO where a file should be is reported, never opened; walk skips it; a symbolic link to data is followed', async () => {
    const d = await fresh();
    await mkdir(`${d.v2}/repositories/r/_layers/sha256/x`, { recursive: true });
    execFileSync('mkfifo', [`${d.v2}/repositories/r/_layers/sha256/x/link`]);
    assert.deepEqual(await d.getContent(`${d.v2}/repositories/r/_layers/sha256/x/link`, 200), { notRegular: 'a FIFO' });
    assert.deepEqual(await d.stat(`${d.v2}/repositories/r/_layers/sha256/x/link`), { kind: 'other', what: 'a FIFO', size: 0 });
    await writeFile(`${d.v2}/real`, 'data');
    await symlink(`${d.v2}/real`, `${d.v2}/repositories/r/alias`);
    // A symbolic link to data is followed; the file behind it is named, to be linked or read.
    assert.deepEqual(await d.stat(`${d.v2}/repositories/r/alias`), { kind: 'file', size: 4, real: `${d.v2}/real` });
    assert.deepEqual(await walkAll(d, `${d.v2}/repositories`), [{ path: `${d.v2}/repositories/r/alias`, size: 4 }]);
  });

  test('filesystem: putContent refuses to write through a symbolic link in the output (OUTPUT_SYMLINK)', async () => {
    const d = await fresh();
    const elsewhere = await tempDir();
    cleanups.push(elsewhere.cleanup);
    await mkdir(`${d.v2}/repositories`, { recursive: true });
    await symlink(elsewhere.dir, `${d.v2}/repositories/team`);
    await assert.rejects(d.putContent(tagCurrentLinkPath(d.v2, APP, V1), Buffer.from(D1)), (e) => isRegfsError(e, 'OUTPUT_SYMLINK'));
  });
});

describe('s3:// roots', () => {
  test('parseS3Url: bucket and prefix (the rootdirectory), slashes trimmed; the storage root under it', () => {
    assert.deepEqual(parseS3Url('s3://reg'), { bucket: 'reg', prefix: '' });
    assert.deepEqual(parseS3Url('s3://reg/'), { bucket: 'reg', prefix: '' });
    assert.deepEqual(parseS3Url('s3://my.reg-1/a/b/'), { bucket: 'my.reg-1', prefix: 'a/b' });
    assert.equal(s3StorageRoot(parseS3Url('s3://reg')), 'docker/registry/v2');
    assert.equal(s3StorageRoot(parseS3Url('s3://reg/a/b')), 'a/b/docker/registry/v2');
    assert.equal(formatS3Root(parseS3Url('s3://reg/a/b/')), 's3://reg/a/b');
  });

  test('parseS3Url: what is wrong is said, with S3_URL_INVALID', () => {
    const cases: [string, RegExp][] = [
      ['s3://', /no bucket/],
      ['s3:///x', /no bucket/],
      ['s3://ab', /is not a bucket name/],
      ['s3://Reg', /is not a bucket name/],
      ['s3://a..b', /is not a bucket name/],
      ['s3://reg/a//b', /an empty component/],
      ['s3://reg/a/../b', /a "\.\." component/],
      ['s3://reg/a\nb', /control character/],
      ['/srv/reg', /does not start with s3:\/\//],
    ];
    for (const [url, why] of cases) {
      assert.throws(() => parseS3Url(url), (e) => isRegfsError(e, 'S3_URL_INVALID') && why.test(e.message), url);
    }
  });

  test('checkS3Endpoint: http(s) only; a user or password in it is refused and never printed', () => {
    assert.equal(checkS3Endpoint('http://127.0.0.1:9000'), 'http://127.0.0.1:9000');
    assert.throws(() => checkS3Endpoint('ftp://x'), (e) => isRegfsError(e, 'S3_URL_INVALID'));
    assert.throws(() => checkS3Endpoint('not a url'), (e) => isRegfsError(e, 'S3_URL_INVALID'));
    assert.throws(
      () => checkS3Endpoint('http://AKIA:topsecret@127.0.0.1:9000'),
      (e) => isRegfsError(e, 'S3_URL_INVALID') && !e.message.includes('topsecret') && !e.message.includes('AKIA'),
    );
  });
});

describe('S3 client and test server', () => {
  test('an S3 client made by regfs prints no NodeVersionSupportWarning on Node 20, and leaves the environment as it was', () => {
    const script = (make: string): string =>
      `import { S3Client } from '@aws-sdk/client-s3'; import pLimit from 'p-limit';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3'; import { S3Service } from './src/storage/s3.ts';
       ${make}; process.stdout.write(process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ?? 'unset');`;
    const run = (make: string): { stdout: string; stderr: string } => {
      const env = { ...process.env };
      delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(make)], { cwd: ROOT, env, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return { stdout: r.stdout, stderr: r.stderr };
    };
    const ours = run(`new S3Service({ limit: pLimit(1), endpoint: 'http://127.0.0.1:1' }).destroy()`);
    assert.deepEqual(ours, { stdout: 'unset', stderr: '' });
    // The SDK's own client warns on this Node (the check is real), on Node 22 and later not.
    const plain = run(`new S3Client({ region: 'us-east-1' }).destroy()`);
    assert.equal(plain.stderr.includes('NodeVersionSupportWarning'), Number(process.versions.node.split('.')[0]) < 22, plain.stderr);
  });

  test('the test server: a start that cannot finish in time fails saying which step, and leaves nothing running', async () => {
    await assert.rejects(startS3Server({ timeoutMs: 1 }), /^Error: S3 test server in \S+ \(removed\): ceph-authtool did not finish before the start timeout/);
    // Given up with the mon (and maybe more) running: each is stopped, the state removed.
    const err = await startS3Server({ timeoutMs: 1500 }).then(
      (s) => s.stop().then(() => assert.fail('started in 1.5 s: no timeout to test')),
      (e: unknown) => e as Error,
    );
    const dir = /^S3 test server in (\S+) \(removed\): .*(did not finish before the start timeout|did not answer on)/.exec(err.message)?.[1];
    assert.ok(dir !== undefined, err.message);
    assert.equal(existsSync(dir), false);
    const running = readdirSync('/proc').filter((p) => /^\d+$/.test(p) && cmdline(p).includes(dir));
    assert.deepEqual(running, []);
  });
});

describe('storage driver: S3 (radosgw)', () => {
  let s3: S3Server;
  let service: S3Service;
  let n = 0;
  const cleanups: (() => Promise<void>)[] = [];
  const saved = { ...process.env };
  before(async () => {
    // A user's Ceph settings do not reach the test cluster (the server clears them).
    process.env.CEPH_ARGS = '--no-such-option';
    try {
      s3 = await startS3Server({ buckets: ['conf', 'other', 'reg'] });
    } finally {
      if (saved.CEPH_ARGS === undefined) delete process.env.CEPH_ARGS;
      else process.env.CEPH_ARGS = saved.CEPH_ARGS;
    }
    // Credentials as a user gives them: the SDK's standard chain reads the environment.
    process.env.AWS_ACCESS_KEY_ID = s3.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.secretAccessKey;
    // Small parts, so that a multipart upload and a multipart copy are cheap to test.
    service = new S3Service({ limit: pLimit(8), endpoint: s3.endpoint, region: s3.region, partSize: MIN_PART_SIZE, copyThreshold: MIN_PART_SIZE, copyPartSize: MIN_PART_SIZE });
  });
  after(async () => {
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    service?.destroy();
    for (const c of cleanups) await c();
    if (s3 === undefined) return;
    await s3.stop();
    // Every daemon stopped by its PID and reaped: none is left, not even as a zombie.
    assert.equal(s3.pids.length, 3);
    for (const pid of s3.pids) assert.throws(() => process.kill(pid, 0), (e) => (e as NodeJS.ErrnoException).code === 'ESRCH', `daemon ${pid} still there`);
    assert.equal(existsSync(s3.dir), false);
  });
  const fresh = async (): Promise<S3Storage> => service.root(`s3://conf/t${n++}`);
  conformance('s3', fresh);

  test("s3: a directory marker (a key ending in /, as consoles' \"Create folder\" make) is a directory, listed or prefetched, as the registry lists it (a tag with no current/link)", async () => {
    const d = await fresh();
    const tags = `${d.v2}/repositories/r/_manifests/tags`;
    await d.putContent(tagCurrentLinkPath(d.v2, R, parseTag('v1')), Buffer.from(D1));
    await service.client.send(new PutObjectCommand({ Bucket: d.bucket, Key: `${tags}/ghost/`, Body: new Uint8Array() }));
    const want = [
      { name: 'ghost', dir: true },
      { name: 'v1', dir: true },
    ];
    assert.deepEqual(await d.list(tags), want, 'listed by delimiter');
    const p = service.root(d.root);
    await p.prefetch(`${d.v2}/repositories/r`);
    assert.deepEqual(await p.list(tags), want, 'from a prefetched listing');
    assert.deepEqual(await p.stat(`${tags}/ghost`), { kind: 'directory' });
    assert.deepEqual(await p.list(`${tags}/ghost`), []);
    assert.equal(await p.stat(`${tags}/none`), undefined);
  });

  test('s3: one request per small operation; walk and list one ListObjectsV2 per page of keys; placeBlob a HEAD then one CopyObject; delete a listing and one DeleteObjects', async () => {
    const d = await fresh();
    const link = layerLinkPath(d.v2, R, D1);
    service.resetRequestCounts();
    await d.putContent(link, Buffer.from(D1));
    await d.getContent(link, 200);
    await d.stat(link);
    assert.deepEqual(service.requestCounts(), { GetObject: 1, HeadObject: 1, PutObject: 1 });
    await Promise.all(Array.from({ length: 25 }, (_, i) => d.putContent(`${d.v2}/many/${String(i).padStart(4, '0')}`, Buffer.from('x'))));
    // Pages of 10 keys here (1,000, S3's most, by default): 25 keys are 3 pages.
    const paged = new S3Service({ limit: pLimit(2), endpoint: s3.endpoint, region: s3.region, listPage: 10 });
    try {
      const root = paged.root(d.root);
      assert.equal((await walkAll(root, `${d.v2}/many`)).length, 25);
      assert.equal((await root.list(`${d.v2}/many`)).length, 25);
      assert.deepEqual(paged.requestCounts(), { ListObjectsV2: 6 });
    } finally {
      paged.destroy();
    }
    const dest = await fresh();
    await d.putContent(blobDataPath(d.v2, D1), Buffer.from('blob'));
    service.resetRequestCounts();
    assert.equal(await dest.placeBlob(d, blobDataPath(d.v2, D1), blobDataPath(dest.v2, D1), 4), 'copied');
    assert.deepEqual(service.requestCounts(), { CopyObject: 1, HeadObject: 1, ListObjectsV2: 1 });
    service.resetRequestCounts();
    assert.equal(await dest.placeBlob(d, blobDataPath(d.v2, D1), blobDataPath(dest.v2, D1), 4), 'exists');
    assert.deepEqual(service.requestCounts(), { HeadObject: 1 });
    service.resetRequestCounts();
    await dest.placeBlob(d, blobDataPath(d.v2, D1), blobDataPath(dest.v2, D2), 4, { absent: true });
    assert.deepEqual(service.requestCounts(), { CopyObject: 1 });
    service.resetRequestCounts();
    await dest.delete(`${dest.v2}/blobs`);
    assert.deepEqual(service.requestCounts(), { DeleteObjects: 1, ListObjectsV2: 1 });
    assert.deepEqual(await walkAll(dest, dest.v2), []);
  });

  test('s3: endpoint and region from the environment (AWS_ENDPOINT_URL, AWS_REGION), path-style; AWS_ENDPOINT_URL_S3 before AWS_ENDPOINT_URL', async () => {
    const fromEnv = new S3Service({ limit: pLimit(2), env: s3.env });
    const s3First = new S3Service({ limit: pLimit(2), env: { ...s3.env, AWS_ENDPOINT_URL: 'http://127.0.0.1:1', AWS_ENDPOINT_URL_S3: s3.endpoint } });
    try {
      assert.equal(fromEnv.endpoint, s3.endpoint);
      assert.equal(s3First.endpoint, s3.endpoint);
      for (const svc of [fromEnv, s3First]) {
        const d = svc.root(`s3://conf/env${n++}`);
        await d.putContent(`${d.v2}/f`, Buffer.from('x'));
        assert.deepEqual(await d.getContent(`${d.v2}/f`, 10), Buffer.from('x'));
      }
    } finally {
      fromEnv.destroy();
      s3First.destroy();
    }
  });

  test('s3: the caller\'s limit bounds the requests in flight, a multipart upload\'s parts included', async () => {
    const inner = pLimit(2);
    let active = 0;
    let most = 0;
    const counting = ((fn: () => Promise<unknown>) =>
      inner(async () => {
        most = Math.max(most, ++active);
        try {
          return await fn();
        } finally {
          active--;
        }
      })) as unknown as LimitFunction;
    const bounded = new S3Service({ limit: counting, endpoint: s3.endpoint, region: s3.region, partSize: MIN_PART_SIZE, partsInFlight: 4 });
    try {
      const d = bounded.root(`s3://conf/limit${n++}`);
      await Promise.all(Array.from({ length: 20 }, (_, i) => d.putContent(`${d.v2}/f${i}`, Buffer.from('x'))));
      const disk = await tempDir();
      cleanups.push(disk.cleanup);
      const fs = new FsStorage(storageRoot(disk.dir), { outputRoot: disk.dir });
      const big = randomBytes(3 * MIN_PART_SIZE);
      await fs.putContent(blobDataPath(fs.v2, D1), big);
      await d.placeBlob(fs, blobDataPath(fs.v2, D1), blobDataPath(d.v2, D1), big.length, { absent: true });
      assert.equal(most, 2);
      assert.equal(bounded.requestCounts().PutObject, 20);
      assert.equal(bounded.requestCounts().UploadPart, 3);
    } finally {
      bounded.destroy();
    }
  });

  test('s3: blobs above the thresholds move in parts: UploadPartCopy between two buckets of one service, a bounded multipart upload from disk, a stream back to disk', async () => {
    const disk = await tempDir();
    cleanups.push(disk.cleanup);
    const fs = new FsStorage(storageRoot(disk.dir), { outputRoot: disk.dir });
    const big = randomBytes(2 * MIN_PART_SIZE + 12345);
    const digest = digestOf(big);
    await fs.putContent(blobDataPath(fs.v2, digest), big);
    const a = await fresh();
    const b = service.root(`s3://other/copy${n++}`);
    service.resetRequestCounts();
    assert.equal(await a.placeBlob(fs, blobDataPath(fs.v2, digest), blobDataPath(a.v2, digest), big.length), 'copied');
    assert.deepEqual(service.requestCounts(), { CompleteMultipartUpload: 1, CreateMultipartUpload: 1, HeadObject: 1, ListObjectsV2: 1, UploadPart: 3 });
    service.resetRequestCounts();
    assert.equal(await b.placeBlob(a, blobDataPath(a.v2, digest), blobDataPath(b.v2, digest), big.length, { absent: true }), 'copied');
    assert.deepEqual(service.requestCounts(), { CompleteMultipartUpload: 1, CreateMultipartUpload: 1, UploadPartCopy: 3 });
    assert.deepEqual(await bytesOf(await b.reader(blobDataPath(b.v2, digest))), big);
    const back = await tempDir();
    cleanups.push(back.cleanup);
    const fs2 = new FsStorage(storageRoot(back.dir), { outputRoot: back.dir });
    assert.equal(await fs2.placeBlob(b, blobDataPath(b.v2, digest), blobDataPath(fs2.v2, digest), big.length), 'copied');
    assert.deepEqual(await readFile(blobDataPath(fs2.v2, digest)), big);
    assert.equal(await fs2.placeBlob(b, blobDataPath(b.v2, digest), blobDataPath(fs2.v2, digest), big.length), 'exists');
    // A source shorter than its descriptor says: refused, and nothing is left on either side.
    await assert.rejects(a.placeBlob(fs, blobDataPath(fs.v2, digest), blobDataPath(a.v2, D2), big.length + 1), (e) => isRegfsError(e, 'SIZE_INVALID'));
    assert.equal(await a.stat(blobDataPath(a.v2, D2)), undefined);
    // Nor an in-progress multipart upload, which a listing would not show: it was aborted.
    const uploads = await service.client.send(new ListMultipartUploadsCommand({ Bucket: a.bucket, Prefix: a.v2 }));
    assert.deepEqual(uploads.Uploads ?? [], []);
    await assert.rejects(fs2.placeBlob(b, blobDataPath(b.v2, digest), blobDataPath(fs2.v2, D2), 5), (e) => isRegfsError(e, 'SIZE_INVALID'));
    assert.equal(await fs2.stat(blobDataPath(fs2.v2, D2)), undefined);
  });

  test('s3: a missing bucket, bad credentials, an endpoint nobody listens on: each a stable code, no secret in the message', async () => {
    const missing = service.root('s3://no-such-bucket/x');
    await assert.rejects(missing.getContent(`${missing.v2}/a`, 10), (e) => isRegfsError(e, 'S3_BUCKET_UNKNOWN') && e.message.includes('no-such-bucket'));
    const secret = 'wrong-secret-1234567890';
    const bad = new S3Service({ limit: pLimit(1), endpoint: s3.endpoint, region: s3.region, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: secret }, maxAttempts: 1 });
    try {
      const root = bad.root('s3://conf/x');
      await assert.rejects(
        root.list(`${root.v2}/a`),
        (e) => isRegfsError(e, 'S3_CREDENTIALS') && !e.message.includes(secret) && !e.message.includes(s3.secretAccessKey) && e.message.includes('s3://conf/x/'),
      );
    } finally {
      bad.destroy();
    }
    const closed = new S3Service({ limit: pLimit(1), endpoint: 'http://127.0.0.1:1', region: s3.region, maxAttempts: 2 });
    try {
      const root = closed.root('s3://conf/x');
      await assert.rejects(root.stat(`${root.v2}/a`), (e) => isRegfsError(e, 'S3_UNREACHABLE') && e.message.includes('s3://conf/x/'));
      // Each attempt is a request: the SDK tried twice.
      assert.deepEqual(closed.requestCounts(), { HeadObject: 2 });
    } finally {
      closed.destroy();
    }
  });

  test('the registry on S3: pushes give, key for key and byte for byte, the tree the same pushes give on disk', async () => {
    const manifest = await readFixtureManifest();
    // A single-platform image, an image sharing a layer with it, and an index pushed whole.
    const refs = ['team/platform/base/alpine:3.19', 'team/platform/base/alpine:3.20'];
    const index = manifest.refs.find((r) => r.kind === 'oci-index' && r.overwritten !== true);
    assert.ok(index !== undefined, 'the fixture has an index');
    const pushes = [...refs.map((ref) => ({ ref, all: false })), { ref: index.ref, all: true }];
    const disk = await tempDir();
    cleanups.push(disk.cleanup);
    const source = await startRegistry({ root: FIXTURE_ROOT, readOnly: true });
    const onDisk = await startRegistry({ root: disk.dir });
    const s3Storage = { endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, bucket: 'reg' };
    const onS3 = await startRegistry({ s3: { ...s3Storage, rootdirectory: '/parity' } });
    try {
      for (const p of pushes) {
        for (const dest of [onDisk, onS3]) {
          await withRetry(() => skopeoCopy(`docker://${source.host}/${p.ref}`, `docker://${dest.host}/${p.ref}`, { all: p.all }));
        }
        const want = manifest.refs.find((r) => r.ref === p.ref)!.digest;
        assert.equal(await skopeoManifestDigestOf(`docker://${onS3.host}/${p.ref}`), want, p.ref);
      }
    } finally {
      await Promise.all([source.stop(), onDisk.stop(), onS3.stop()]);
    }
    const fsTree = await treeOf(new FsStorage(storageRoot(disk.dir)), storageRoot(disk.dir));
    const s3Root = service.root('s3://reg/parity');
    assert.equal(s3Root.v2, 'parity/docker/registry/v2');
    service.resetRequestCounts();
    const s3Tree = await treeOf(s3Root, s3Root.v2);
    assert.ok(fsTree.size > 10, `${fsTree.size} files`);
    assert.deepEqual(s3Tree, fsTree);
    // One listing (fewer than 1,000 keys), then one GET per file.
    assert.deepEqual(service.requestCounts(), { GetObject: fsTree.size, ListObjectsV2: 1 });
    // The registry's own garbage collector finds the same on both.
    const gcDisk = await registryGarbageCollectDryRun(disk.dir, { deleteUntagged: true });
    const gcS3 = await registryGarbageCollectDryRun({ s3: { ...s3Storage, rootdirectory: '/parity' } }, { deleteUntagged: true });
    // (It prints what is eligible in Go's map order, which varies from run to run: compared as sets of lines.)
    const lines = (o: string): string[] => o.split('\n').sort();
    assert.deepEqual(lines(gcS3.output), lines(gcDisk.output));
    assert.ok(/marking manifest/.test(gcDisk.output), gcDisk.output);
  });
  test('the committed fixture uploaded verbatim through the S3 driver (one request per file) is served by the registry on S3 with identical digests', async () => {
    const fs = new FsStorage(storageRoot(FIXTURE_ROOT));
    const dest = service.root('s3://reg/verbatim');
    const files = await walkAll(fs, fs.v2);
    service.resetRequestCounts();
    const limit = pLimit(8);
    await Promise.all(
      files.map((f) =>
        limit(async () => {
          const to = `${dest.v2}${f.path.slice(fs.v2.length)}`;
          if (f.path.endsWith('/data')) return dest.placeBlob(fs, f.path, to, f.size, { absent: true });
          const bytes = await fs.getContent(f.path, f.size + 1);
          assert.ok(Buffer.isBuffer(bytes), f.path);
          return dest.putContent(to, bytes);
        }),
      ),
    );
    const blobs = files.filter((f) => f.path.endsWith('/data')).length;
    assert.deepEqual(service.requestCounts(), { PutObject: files.length }, `${blobs} blobs and ${files.length - blobs} other files`);
    assert.deepEqual(await treeOf(dest, dest.v2), await treeOf(fs, fs.v2));
    const manifest = await readFixtureManifest();
    const reg = await startRegistry({ readOnly: true, schema1: true, s3: { endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, bucket: 'reg', rootdirectory: '/verbatim', redirect: true } });
    try {
      const current = manifest.refs.filter((r) => !r.overwritten);
      assert.ok(current.length >= 10, `${current.length} refs`);
      for (const r of current) assert.equal(await skopeoManifestDigestOf(`docker://${reg.host}/${r.ref}`), r.digest, r.ref);
      // Blob bytes too, through the registry's 307 to a presigned URL on the S3 server.
      const scratch = await tempDir();
      cleanups.push(scratch.cleanup);
      const image = current.find((r) => r.kind === 'oci-index')!;
      await skopeoCopy(`docker://${reg.host}/${image.ref}`, `dir:${scratch.dir}/copy`, { all: true });
    } finally {
      await reg.stop();
    }
  });
});
