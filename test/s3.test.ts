/**
 * regfs on registries whose storage is on S3 (issue: registries on object storage), judged by
 * the real programs: a one-node Ceph RADOS Gateway started for this file, docker-registry
 * 2.8.2 on its `s3` driver, skopeo. The source is written by the registry itself, from skopeo
 * pushes of the committed fixture; every output is judged by a second registry on it.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { assertServed, copyInFull } from './helpers/judge.js';
import { startRegistry } from '../scripts/lib/registry-server.js';
import { startFaultProxy } from '../scripts/lib/fault-proxy.js';
import { ok, startS3World, type S3World } from './helpers/s3.js';

/** The images of the lists below (the fixture's). */
const LISTED = ['team/platform/base/alpine:3.20', 'team/app:v1', 'multiarch/tool:1.0', 'multiarch/tool:1.0-oci', 'library/busybox:1.36'];
const UNLISTED = ['team/app:v2', 'team/platform/base/alpine:3.19', 'tools/nomediatype:1.0'];

let w: S3World;
let scratch: string;

describe('regfs on S3-backed registry storage', { timeout: 600_000 }, () => {
  before(async () => {
    w = await startS3World(['src', 'dst']);
    scratch = w.scratch;
    await writeFile(join(scratch, 'images.list'), `${LISTED.join('\n')}\n`);
  });

  after(async () => {
    await w?.stop();
  });

  test('extract S3 to S3 in one bucket: the registry serves every listed image, no other; the source is unchanged', async () => {
    const before = await w.keysOf('src', 'reg');
    const r = ok(await w.regfs(['extract', join(scratch, 'images.list'), 's3://src/reg', 's3://src/out', '--json']));
    const result = JSON.parse(r.stdout) as { images: unknown[]; output: string; stats: { blobsCopied: number; linksWritten: number } };
    assert.equal(result.images.length, LISTED.length);
    assert.equal(result.output, 's3://src/out/docker/registry/v2', 'the output named as users name it');
    assert.ok(result.stats.blobsCopied > 0);
    await w.assertServedOnS3('src', 'out', w.served(LISTED), UNLISTED);
    assert.deepEqual(await w.keysOf('src', 'reg'), before, 'the source is unchanged');
    // A re-run writes nothing new.
    const again = JSON.parse(ok(await w.regfs(['extract', join(scratch, 'images.list'), 's3://src/reg', 's3://src/out', '--json'])).stdout) as { stats: { blobsCopied: number; linksWritten: number; blobsExisting: number } };
    assert.equal(again.stats.blobsCopied, 0);
    assert.equal(again.stats.linksWritten, 0);
    assert.equal(again.stats.blobsExisting, result.stats.blobsCopied);
  });

  test('extract S3 to another bucket, with --s3-endpoint instead of AWS_ENDPOINT_URL', async () => {
    ok(await w.regfs(['extract', join(scratch, 'images.list'), 's3://src/reg', 's3://dst/copy', '--s3-endpoint', w.s3.endpoint], { env: { AWS_ENDPOINT_URL: '' } }));
    await w.assertServedOnS3('dst', 'copy', w.served(LISTED), UNLISTED);
  });

  test('extract S3 to the filesystem and the filesystem to S3', async () => {
    const out = join(scratch, 'from-s3');
    ok(await w.regfs(['extract', join(scratch, 'images.list'), 's3://src/reg', out]));
    await assertServed(out, w.served(LISTED), UNLISTED, join(scratch, 'judge-disk'));
    ok(await w.regfs(['extract', join(scratch, 'images.list'), FIXTURE_ROOT, 's3://dst/from-disk']));
    await w.assertServedOnS3('dst', 'from-disk', w.served(LISTED), UNLISTED);
  });

  test('ls and inspect on S3 print what they print for the same tree on disk; extract of an index of indexes and a schema1 image', async () => {
    const disk = join(FIXTURE_ROOT, 'docker/registry/v2');
    for (const args of [['ls'], ['ls', '--json'], ['ls', 'team/**'], ['inspect', 'multiarch/tool:nested'], ['inspect', 'team/app:v1', '--json'], ['inspect', 'legacy/app:1.0']]) {
      const [cmd, ...rest] = args;
      const onS3 = ok(await w.regfs([cmd!, 's3://src/verbatim', ...rest]));
      const onDisk = ok(await w.regfs([cmd!, FIXTURE_ROOT, ...rest]));
      const plain = (out: string): string => (args.includes('--json') ? JSON.stringify({ ...(JSON.parse(out) as object), s3Requests: undefined, seconds: undefined }) : out);
      assert.equal(plain(onS3.stdout).replaceAll('s3://src/verbatim/docker/registry/v2', '@').replaceAll('verbatim/docker/registry/v2', '@'), plain(onDisk.stdout).replaceAll(disk, '@'), args.join(' '));
      // Without --json the run's requests close stderr; with it they are in the document.
      if (!args.includes('--json')) assert.match(onS3.stderr, /^s3: \d+ requests \(.*\)\n$/m, args.join(' '));
      else assert.ok('s3Requests' in (JSON.parse(onS3.stdout) as object));
      // ls of the whole store stats its manifests and configs from one listing of the blob store, not by HEADs.
      if (args.length === 1 && args[0] === 'ls') assert.doesNotMatch(onS3.stderr, /HeadObject/, onS3.stderr);
      assert.equal(onS3.stderr.replace(/^s3: .*\n/m, ''), onDisk.stderr, args.join(' '));
    }
    const list = join(scratch, 'odd.list');
    await writeFile(list, 'multiarch/tool:nested\nlegacy/app:1.0\n');
    ok(await w.regfs(['extract', list, 's3://src/verbatim', 's3://dst/odd']));
    await w.assertServedOnS3('dst', 'odd', w.served(['multiarch/tool:nested', 'legacy/app:1.0']), ['team/app:v1']);
  });

  test('credentials from a profile (AWS_PROFILE and a shared credentials file), none in the environment', async () => {
    const creds = join(scratch, 'aws-credentials');
    await writeFile(creds, `[regfs-test]\naws_access_key_id = ${w.s3.accessKeyId}\naws_secret_access_key = ${w.s3.secretAccessKey}\n`);
    const noEnv = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SHARED_CREDENTIALS_FILE: creds, AWS_CONFIG_FILE: join(scratch, 'no-aws-config') };
    const r = ok(await w.regfs(['ls', 's3://src/reg', 'team/app'], { env: { ...noEnv, AWS_PROFILE: 'regfs-test' } }));
    assert.match(r.stdout, /team\/app:v1/);
    const other = await w.regfs(['ls', 's3://src/reg', '--json'], { env: { ...noEnv, AWS_PROFILE: 'no-such-profile' } });
    assert.equal(other.code, 1, other.stderr);
    assert.equal((JSON.parse(other.stdout) as { error: { code: string } }).error.code, 'S3_CREDENTIALS', other.stdout);
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
      [['extract', list, 's3://src/reg', join(scratch, 'hard'), '--link', 'hardlink'], 'USAGE'],
    ];
    for (const [args, code, extra] of cases) {
      const r = await w.regfs([...args, '--json'], { env: extra });
      assert.equal(r.code, code === 'USAGE' ? 2 : 1, `${args.join(' ')}: ${r.stderr}`);
      assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, code, `${args.join(' ')}: ${r.stdout}`);
      assert.doesNotMatch(r.stderr, /not-the-secret|    at /, r.stderr);
      assert.ok(!r.stderr.includes(w.s3.secretAccessKey));
    }
    assert.equal((await w.keysOf('dst', 'n')).size, 0, 'nothing written');
  });

  test('a run killed (SIGKILL) at any point leaves every tag the registry lists whole; the re-run gives what one run gives', async () => {
    const list = join(scratch, 'images.list');
    const judge = join(scratch, 'killed-judge');
    // One whole run, timed: the kills fall at fractions of its time.
    const started = Date.now();
    ok(await w.regfs(['extract', list, 's3://src/reg', 's3://dst/whole-once']));
    const took = Date.now() - started;
    let kills = 0;
    for (const ms of [0.3, 0.55, 0.8].map((f) => Math.round(f * took))) {
      const prefix = `killed-${ms}`;
      const killed = await w.regfs(['extract', list, 's3://src/reg', `s3://dst/${prefix}`], { timeoutMs: ms });
      if (killed.killed) kills++;
      else assert.equal(killed.code, 0, killed.stderr);
      const reg = await startRegistry({ readOnly: true, s3: w.storage('dst', prefix) });
      await mkdir(join(judge, prefix), { recursive: true });
      try {
        const catalog = (await (await fetch(`http://${reg.host}/v2/_catalog`)).json()) as { repositories: string[] | null };
        for (const repo of catalog.repositories ?? []) {
          const tags = (await (await fetch(`http://${reg.host}/v2/${repo}/tags/list`)).json()) as { tags: string[] | null };
          for (const tag of tags.tags ?? []) await copyInFull(reg.host, `${repo}:${tag}`, join(judge, prefix));
        }
      } finally {
        await reg.stop();
      }
      ok(await w.regfs(['extract', list, 's3://src/reg', `s3://dst/${prefix}`]));
      const after = await w.keysOf('dst', prefix);
      const once = await w.keysOf('dst', 'whole-once');
      assert.deepEqual([...after.values()].sort(), [...once.values()].sort(), `${prefix}: the same objects as one whole run`);
    }
    assert.ok(kills > 0, 'a run was killed');
  });

  test('faults: throttling (503 SlowDown) is retried; the server gone mid-run fails clearly with no tag visible before its content; a re-run converges', async () => {
    const proxy = await startFaultProxy(w.s3.endpoint);
    try {
      const list = join(scratch, 'images.list');
      const via = (out: string, json = true): Promise<import('./helpers/cli.js').CliResult> =>
        w.regfs(['extract', list, 's3://src/reg', out, '--s3-endpoint', proxy.endpoint, ...(json ? ['--json'] : [])]);
      // Every 7th request answered 503: the SDK's retries (6 attempts) carry the run through.
      proxy.throttleEvery = 7;
      const throttled = JSON.parse(ok(await via('s3://dst/throttled')).stdout) as { s3Requests: Record<string, number> };
      proxy.throttleEvery = 0;
      assert.ok(proxy.throttled > 5, `${proxy.throttled} requests throttled`);
      await w.assertServedOnS3('dst', 'throttled', w.served(LISTED), UNLISTED);
      // The requests of a whole run, then a run cut in its tag phase: the last requests are the
      // tags' current links, then their index entries, one each a tag.
      const before = proxy.requests;
      const whole = JSON.parse(ok(await via('s3://dst/whole')).stdout) as { s3Requests: Record<string, number> };
      const total = proxy.requests - before;
      assert.equal(Object.values(whole.s3Requests).reduce((a, b) => a + b, 0), total, 'every request is counted');
      assert.ok(Object.values(throttled.s3Requests).reduce((a, b) => a + b, 0) > total, 'retries are counted');
      proxy.downAfter = proxy.requests + total - LISTED.length - 3;
      const cut = await via('s3://dst/cut');
      assert.equal(cut.code, 1, cut.stderr);
      assert.equal((JSON.parse(cut.stdout) as { error: { code: string } }).error.code, 'S3_UNREACHABLE', cut.stdout);
      assert.doesNotMatch(cut.stderr, /    at /);
      // What the registry on the output lists, it serves whole.
      const reg = await startRegistry({ readOnly: true, s3: w.storage('dst', 'cut') });
      let visible = 0;
      await mkdir(join(scratch, 'cut-judge'), { recursive: true });
      try {
        const catalog = (await (await fetch(`http://${reg.host}/v2/_catalog`)).json()) as { repositories: string[] | null };
        for (const repo of catalog.repositories ?? []) {
          const tags = (await (await fetch(`http://${reg.host}/v2/${repo}/tags/list`)).json()) as { tags: string[] | null };
          for (const tag of tags.tags ?? []) {
            visible++;
            await copyInFull(reg.host, `${repo}:${tag}`, join(scratch, 'cut-judge'));
          }
        }
      } finally {
        await reg.stop();
      }
      assert.ok(visible > 0 && visible < LISTED.length, `${visible} tags visible after a run cut short`);
      // The server back: the re-run completes the job.
      proxy.down = false;
      proxy.downAfter = Infinity;
      ok(await via('s3://dst/cut', false));
      await w.assertServedOnS3('dst', 'cut', w.served(LISTED), UNLISTED);
      // verify --deep with the server gone after its listing: the run fails (S3_UNREACHABLE),
      // it does not report the storage as damaged (exit 4, a finding per unread link or blob).
      proxy.downAfter = proxy.requests + 3;
      const gone = await w.regfs(['verify', 's3://dst/cut', '--deep', '--json', '--s3-endpoint', proxy.endpoint]);
      assert.equal(gone.code, 1, gone.stdout);
      assert.equal((JSON.parse(gone.stdout) as { error: { code: string } }).error.code, 'S3_UNREACHABLE', gone.stdout);
      proxy.down = false;
      proxy.downAfter = Infinity;
    } finally {
      await proxy.stop();
    }
  });
});
