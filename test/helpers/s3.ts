/**
 * An S3 world for a test file: a one-node Ceph RADOS Gateway (scripts/lib/s3-server.ts) with
 * buckets, a source written by docker-registry 2.8.2 on its `s3` driver from skopeo pushes of
 * the committed fixture (`s3://src/reg`), the fixture uploaded key for key
 * (`s3://src/verbatim`: it holds what skopeo 1.9.3 cannot push, an index of indexes and a
 * schema1 image), a client, and judges: a registry on an S3 prefix serves what it should.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';
import pLimit from 'p-limit';
import { startRegistry, type RegistryS3Storage } from '../../scripts/lib/registry-server.js';
import { startS3Server, type S3Server } from '../../scripts/lib/s3-server.js';
import { skopeoCopy, withRetry } from '../../scripts/lib/skopeo.js';
import { storageRoot } from '../../src/registry/layout.js';
import { FsStorage } from '../../src/storage/fs.js';
import { S3Service } from '../../src/storage/s3.js';
import { runCli, type CliResult } from './cli.js';
import { FIXTURE_ROOT, readFixtureManifest } from './fixture.js';
import { assertServing, type Served } from './judge.js';
import { tempDir } from './tree.js';

/** skopeo 1.9.3 cannot copy an index of indexes: those the fixture holds (written by pushing their parts) are uploaded verbatim. */
const NOT_BY_SKOPEO = new Set(['multiarch/tool:nested']);

export interface S3World {
  s3: S3Server;
  /** A client of the server, for tests to look at buckets (its requests are not regfs's). */
  service: S3Service;
  /** Credentials and endpoint as a user gives them: AWS_ACCESS_KEY_ID, …, AWS_ENDPOINT_URL. */
  env: Record<string, string>;
  /** A temp directory, removed by stop. */
  scratch: string;
  /** The fixture's current refs and their digests. */
  digests: Map<string, string>;
  /** `regfs ARGS` with the world's credentials (and `extraEnv`). */
  regfs(args: string[], opts?: { stdin?: string; env?: Record<string, string>; timeoutMs?: number }): Promise<CliResult>;
  /** Registry storage options for `bucket/prefix`, for startRegistry. */
  storage(bucket: string, prefix: string): RegistryS3Storage;
  /** Each name with the fixture's digest for it. */
  served(names: string[]): Served[];
  /** A read-only registry on `bucket/prefix` serves `expected` (digest, and skopeo copies it in full) and none of `absent`. */
  assertServedOnS3(bucket: string, prefix: string, expected: Served[], absent: string[]): Promise<void>;
  /** Every key below `bucket/prefix`'s storage root with its size and the sha256 of its bytes. */
  keysOf(bucket: string, prefix: string): Promise<Map<string, string>>;
  stop(): Promise<void>;
}

/**
 * Start the world: the server with `buckets` (which must include `src`), the source pushed
 * into `s3://src/reg` by skopeo through a registry on S3, the fixture uploaded to
 * `s3://src/verbatim`. About 15 s.
 */
export async function startS3World(buckets: string[]): Promise<S3World> {
  if (!buckets.includes('src')) throw new Error('startS3World: the buckets must include src');
  const s3 = await startS3Server({ buckets });
  const service = new S3Service({ limit: pLimit(16), endpoint: s3.endpoint, region: s3.region, credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  const tmp = await tempDir();
  const env = { ...s3.env };
  const manifest = await readFixtureManifest();
  const digests = new Map(manifest.refs.filter((r) => r.overwritten !== true).map((r) => [r.ref, r.digest]));
  const storage = (bucket: string, prefix: string): RegistryS3Storage => ({
    endpoint: s3.endpoint,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    bucket,
    rootdirectory: prefix === '' ? '' : `/${prefix}`,
  });
  const stop = async (): Promise<void> => {
    service.destroy();
    await s3.stop();
    await tmp.cleanup();
  };
  try {
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
    const disk = new FsStorage(storageRoot(FIXTURE_ROOT));
    const verbatim = service.root('s3://src/verbatim');
    for await (const page of disk.walk(disk.v2)) {
      await Promise.all(page.map((f) => verbatim.placeBlob(disk, f.path, `${verbatim.v2}/${relative(disk.v2, f.path)}`, f.size, { absent: true })));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const served = (names: string[]): Served[] =>
    names.map((name) => {
      const digest = digests.get(name);
      assert.ok(digest !== undefined, `the fixture has no ${name}`);
      return { name, digest };
    });
  return {
    s3,
    service,
    env,
    scratch: tmp.dir,
    digests,
    storage,
    served,
    regfs: (args, opts = {}) => runCli(args, { stdin: opts.stdin, env: { ...env, ...opts.env }, timeoutMs: opts.timeoutMs ?? 180_000 }),
    async assertServedOnS3(bucket, prefix, expected, absent) {
      const reg = await startRegistry({ readOnly: true, s3: storage(bucket, prefix) });
      try {
        await assertServing(reg.host, expected, absent, join(tmp.dir, `judge-${bucket}-${prefix.replaceAll('/', '_')}-${Date.now()}`));
      } finally {
        await reg.stop();
      }
    },
    async keysOf(bucket, prefix) {
      const root = service.root(`s3://${bucket}/${prefix}`);
      const out = new Map<string, string>();
      for await (const page of root.walk(root.v2)) for (const f of page) out.set(f.path, String(f.size));
      await Promise.all(
        [...out.keys()].map(async (k) => {
          const h = createHash('sha256');
          for await (const c of (await root.reader(k)) as AsyncIterable<Buffer>) h.update(c);
          out.set(k, `${out.get(k)} ${h.digest('hex')}`);
        }),
      );
      return out;
    },
    stop,
  };
}

/** Assert a CLI run succeeded (exit 0), showing its stderr if not. */
export function ok(r: CliResult): CliResult {
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}`);
  return r;
}
