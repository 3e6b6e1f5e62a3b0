/**
 * regfs on registries whose storage is on S3 (issue: registries on object storage), judged by
 * the real programs: a one-node Ceph RADOS Gateway started for this file, docker-registry
 * 2.8.2 on its `s3` driver, skopeo. The source is written by the registry itself, from skopeo
 * pushes of the committed fixture; every output is judged by a second registry on it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pLimit from 'p-limit';
import { startRegistry, type RegistryS3Storage } from '../scripts/lib/registry-server.js';
import { startS3Server, type S3Server } from '../scripts/lib/s3-server.js';
import { skopeoCopy, withRetry } from '../scripts/lib/skopeo.js';
import { S3Service } from '../src/storage/s3.js';
import { FsStorage } from '../src/storage/fs.js';
import { storageRoot } from '../src/registry/layout.js';
import { runCli, type CliResult } from './helpers/cli.js';
import { FIXTURE_ROOT, readFixtureManifest } from './helpers/fixture.js';
import { assertServed, assertServing, type Served } from './helpers/judge.js';
import { tempDir } from './helpers/tree.js';

/** The images of the lists below, and their digests (the fixture's). */
const LISTED = ['team/platform/base/alpine:3.20', 'team/app:v1', 'multiarch/tool:1.0', 'multiarch/tool:1.0-oci', 'library/busybox:1.36'];
/** skopeo 1.9.3 cannot copy an index of indexes: those the fixture holds (written by pushing their parts) are uploaded verbatim. */
const NOT_BY_SKOPEO = new Set(['multiarch/tool:nested']);
const UNLISTED = ['team/app:v2', 'team/platform/base/alpine:3.19', 'tools/nomediatype:1.0'];

let s3: S3Server;
let service: S3Service;
let env: Record<string, string>;
let scratch: string;
const cleanups: Array<() => Promise<void>> = [];
let digests: Map<string, string>;

function storage(bucket: string, prefix: string): RegistryS3Storage {
  return { endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, bucket, rootdirectory: prefix === '' ? '' : `/${prefix}` };
}

function regfs(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return runCli(args, { stdin: opts.stdin, env: { ...env, ...opts.env }, timeoutMs: 120_000 });
}

function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}`);
  return r;
}

function served(names: string[]): Served[] {
  return names.map((name) => ({ name, digest: digests.get(name)! }));
}

/** Every key below a prefix with its ETag and size: what "unchanged" means for a source on S3. */
async function keysOf(bucket: string, prefix: string): Promise<Map<string, string>> {
  const root = service.root(`s3://${bucket}/${prefix}`);
  const out = new Map<string, string>();
  for await (const page of root.walk(root.v2)) for (const f of page) out.set(f.path, String(f.size));
  // Content too: a GET of each key, hashed.
  await Promise.all(
    [...out.keys()].map(async (k) => {
      const body = await root.reader(k);
      const h = createHash('sha256');
      for await (const c of body as AsyncIterable<Buffer>) h.update(c);
      out.set(k, `${out.get(k)} ${h.digest('hex')}`);
    }),
  );
  return out;
}

/** The registry on S3 `bucket/prefix` serves `expected` and none of `absent`. */
async function assertServedOnS3(bucket: string, prefix: string, expected: Served[], absent: string[]): Promise<void> {
  const reg = await startRegistry({ readOnly: true, s3: storage(bucket, prefix) });
  try {
    await assertServing(reg.host, expected, absent, join(scratch, `judge-${bucket}-${prefix.replaceAll('/', '_')}`));
  } finally {
    await reg.stop();
  }
}

describe('regfs on S3-backed registry storage', { timeout: 600_000 }, () => {
  before(async () => {
    s3 = await startS3Server({ buckets: ['src', 'dst'] });
    env = { ...s3.env };
    service = new S3Service({ limit: pLimit(16), endpoint: s3.endpoint, region: s3.region, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
    const dir = await tempDir();
    cleanups.push(dir.cleanup);
    scratch = dir.dir;
    const manifest = await readFixtureManifest();
    digests = new Map(manifest.refs.filter((r) => r.overwritten !== true).map((r) => [r.ref, r.digest]));
    // The source: the fixture's current images (schema1 aside) pushed by skopeo into the registry on S3.
    const from = await startRegistry({ root: FIXTURE_ROOT, readOnly: true });
    const into = await startRegistry({ s3: storage('src', 'reg') });
    try {
      for (const r of manifest.refs) {
        if (r.overwritten === true || r.kind === 'schema1' || NOT_BY_SKOPEO.has(r.ref)) continue;
        await withRetry(() => skopeoCopy(`docker://${from.host}/${r.ref}`, `docker://${into.host}/${r.ref}`, { all: true }));
      }
    } finally {
      await from.stop();
      await into.stop();
    }
    await writeFile(join(scratch, 'images.list'), `${LISTED.join('\n')}\n`);
    // The committed fixture, key for key (a registry on S3 serves it: test/storage-driver.test.ts).
    const disk = new FsStorage(storageRoot(FIXTURE_ROOT));
    const verbatim = service.root('s3://src/verbatim');
    for await (const page of disk.walk(disk.v2)) {
      await Promise.all(page.map((f) => verbatim.placeBlob(disk, f.path, `${verbatim.v2}/${relative(disk.v2, f.path)}`, f.size, { absent: true })));
    }
  });

  after(async () => {
    service?.destroy();
    await s3?.stop();
    for (const c of cleanups) await c();
  });

  test('extract S3 to S3 in one bucket: the registry serves every listed image, no other; the source is unchanged', async () => {
    const before = await keysOf('src', 'reg');
    const r = ok(await regfs(['extract', join(scratch, 'images.list'), 's3://src/reg', 's3://src/out', '--json']));
    const result = JSON.parse(r.stdout) as { images: unknown[]; stats: { blobsCopied: number; linksWritten: number } };
    assert.equal(result.images.length, LISTED.length);
    assert.ok(result.stats.blobsCopied > 0);
    await assertServedOnS3('src', 'out', served(LISTED), UNLISTED);
    assert.deepEqual(await keysOf('src', 'reg'), before, 'the source is unchanged');
    // A re-run writes nothing new.
    const again = JSON.parse(ok(await regfs(['extract', join(scratch, 'images.list'), 's3://src/reg', 's3://src/out', '--json'])).stdout) as { stats: { blobsCopied: number; linksWritten: number; blobsExisting: number } };
    assert.equal(again.stats.blobsCopied, 0);
    assert.equal(again.stats.linksWritten, 0);
    assert.equal(again.stats.blobsExisting, result.stats.blobsCopied);
  });

  test('extract S3 to another bucket, with --s3-endpoint instead of AWS_ENDPOINT_URL', async () => {
    ok(await regfs(['extract', join(scratch, 'images.list'), 's3://src/reg', 's3://dst/copy', '--s3-endpoint', s3.endpoint], { env: { AWS_ENDPOINT_URL: '' } }));
    await assertServedOnS3('dst', 'copy', served(LISTED), UNLISTED);
  });

  test('extract S3 to the filesystem and the filesystem to S3', async () => {
    const out = join(scratch, 'from-s3');
    ok(await regfs(['extract', join(scratch, 'images.list'), 's3://src/reg', out]));
    await assertServed(out, served(LISTED), UNLISTED, join(scratch, 'judge-disk'));
    ok(await regfs(['extract', join(scratch, 'images.list'), FIXTURE_ROOT, 's3://dst/from-disk']));
    await assertServedOnS3('dst', 'from-disk', served(LISTED), UNLISTED);
  });

  test('ls and inspect on S3 print what they print for the same tree on disk; extract of an index of indexes and a schema1 image', async () => {
    const disk = join(FIXTURE_ROOT, 'docker/registry/v2');
    for (const args of [['ls'], ['ls', '--json'], ['ls', 'team/**'], ['inspect', 'multiarch/tool:nested'], ['inspect', 'team/app:v1', '--json'], ['inspect', 'legacy/app:1.0']]) {
      const [cmd, ...rest] = args;
      const onS3 = ok(await regfs([cmd!, 's3://src/verbatim', ...rest]));
      const onDisk = ok(await regfs([cmd!, FIXTURE_ROOT, ...rest]));
      assert.equal(onS3.stdout.replaceAll('verbatim/docker/registry/v2', '@'), onDisk.stdout.replaceAll(disk, '@'), args.join(' '));
      assert.equal(onS3.stderr, onDisk.stderr, args.join(' '));
    }
    const list = join(scratch, 'odd.list');
    await writeFile(list, 'multiarch/tool:nested\nlegacy/app:1.0\n');
    ok(await regfs(['extract', list, 's3://src/verbatim', 's3://dst/odd']));
    await assertServedOnS3('dst', 'odd', served(['multiarch/tool:nested', 'legacy/app:1.0']), ['team/app:v1']);
  });

  test('bad S3 roots: clear errors with stable codes, nothing written, no secret printed', async () => {
    const list = join(scratch, 'images.list');
    const cases: Array<[string[], string, Record<string, string>?]> = [
      [['extract', list, 's3://src/reg', 's3://src/reg/docker/registry/v2/repositories/x'], 'OUTPUT_IN_SOURCE'],
      [['extract', list, 's3://src/reg', 's3://src/reg/docker/registry/v2'], 'OUTPUT_IN_SOURCE'],
      [['extract', list, 's3://src/reg/docker/registry/v2', 's3://src/reg/'], 'OUTPUT_IN_SOURCE'],
      [['extract', list, 's3://src/nothing-here', 's3://dst/n'], 'NOT_REGISTRY'],
      [['extract', list, 's3://no-such-bucket/reg', 's3://dst/n'], 'S3_BUCKET_UNKNOWN'],
      [['extract', list, 's3://Bad_Bucket/reg', 's3://dst/n'], 'S3_URL_INVALID'],
      [['ls', 's3://src/reg'], 'S3_CREDENTIALS', { AWS_SECRET_ACCESS_KEY: 'not-the-secret-0123456789' }],
      [['ls', 's3://src/reg', '--s3-endpoint', 'http://user:pw@127.0.0.1:1'], 'S3_URL_INVALID'],
    ];
    for (const [args, code, extra] of cases) {
      const r = await regfs([...args, '--json'], { env: extra });
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, code, `${args.join(' ')}: ${r.stdout}`);
      assert.doesNotMatch(r.stderr, /not-the-secret|    at /, r.stderr);
      assert.ok(!r.stderr.includes(s3.secretAccessKey));
    }
    assert.equal((await keysOf('dst', 'n')).size, 0, 'nothing written');
  });
});
