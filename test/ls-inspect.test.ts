/**
 * ls and inspect against the registry-written fixture and damaged copies of it. Expectations
 * come from the fixture's own description (fixtures/registry.json, scripts/lib/fixture-spec.ts)
 * and from stat'ing blob files by hand, never from the code under test; the real
 * docker-registry 2.8 judges what the catalog lists and what each tag serves. The command
 * handlers run in-process with fake streams, through yargs as src/cli/app.ts wires them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { listImages, compileGlob, parseListPattern, type ListResult, type TagListing } from '../src/ops/ls.js';
import { prng } from './helpers/crash.js';
import { compareRepoNames } from '../src/registry/read.js';
import { inspectImage } from '../src/ops/inspect.js';
import { main } from '../src/cli/app.js';
import type { Io } from '../src/cli/output.js';
import { isRegfsError, RegfsError, type RegfsErrorCode } from '../src/errors.js';
import { digestOf } from '../src/digest.js';
import { MediaTypes } from '../src/manifest.js';
import { FIXTURE_PUSHES, type FixtureRef } from '../scripts/lib/fixture-spec.js';
import { blobsOf, manifestsOf, type Manifest as FixtureImage } from '../scripts/lib/images.js';
import { REGISTRY_BIN, startRegistry } from '../scripts/lib/registry-server.js';
import { FIXTURE_ROOT, currentPush, readFixtureManifest } from './helpers/fixture.js';
import { copyTree, snapshotTree, tempDir } from './helpers/tree.js';

const V2 = join(FIXTURE_ROOT, 'docker/registry/v2');
const COSIGN_SIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';

// ---- helpers ------------------------------------------------------------------------------

/** `<v2>/blobs/sha256/<xx>/<hex>/data`, spelled out by hand. */
function blobFile(v2: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(v2, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

function repoPath(v2: string, repo: string, ...rest: string[]): string {
  return join(v2, 'repositories', ...repo.split('/'), ...rest);
}

async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

/** The refs the fixture's tags point at now (the last push to each repo:tag). */
async function currentRefs(): Promise<FixtureRef[]> {
  return (await readFixtureManifest()).refs.filter((r) => !r.overwritten);
}

/** What ls should call the size of a ref: its manifest and every blob it needs, each once, by stat. */
async function statSize(v2: string, ref: FixtureRef): Promise<number> {
  let n = await fileSize(blobFile(v2, ref.digest));
  for (const b of new Set(ref.blobs)) n += await fileSize(blobFile(v2, b));
  return n;
}

/** The same from the generator's bytes alone (not for schema1, whose stored manifest the registry made). */
function specSize(m: FixtureImage): number {
  return manifestsOf(m).reduce((a, x) => a + x.size, 0) + blobsOf(m).reduce((a, b) => a + b.size, 0);
}

/** Platforms as the generator set them: an image's own, an index's children's (nested indexes followed). */
function specPlatforms(m: FixtureImage): string[] {
  const fmt = (p: { os: string; architecture: string; variant?: string }): string => `${p.os}/${p.architecture}${p.variant === undefined ? '' : `/${p.variant}`}`;
  if (m.kind === 'index') return [...new Set(m.children.flatMap((c) => (c.kind === 'image' && c.platform !== undefined ? [fmt(c.platform)] : specPlatforms(c))))];
  if (m.artifactType !== undefined || m.platform === undefined) return [];
  return [fmt(m.platform)];
}

const KIND_MEDIA_TYPE: Record<string, string> = {
  docker: MediaTypes.dockerManifest,
  oci: MediaTypes.ociManifest,
  artifact: MediaTypes.ociManifest,
  'docker-list': MediaTypes.dockerManifestList,
  'oci-index': MediaTypes.ociIndex,
  schema1: MediaTypes.schema1,
};

function findTag(r: ListResult, repo: string, tag: string): TagListing {
  const t = r.repositories.find((x) => x.name === repo)?.tags.find((x) => x.tag === tag);
  assert.ok(t !== undefined, `${repo}:${tag} listed`);
  return t;
}

async function withCopy(fn: (root: string, v2: string) => Promise<void>): Promise<void> {
  const t = await tempDir();
  try {
    const root = join(t.dir, 'registry');
    await copyTree(FIXTURE_ROOT, root);
    await fn(root, join(root, 'docker/registry/v2'));
  } finally {
    await t.cleanup();
  }
}

async function rejectsWith(p: Promise<unknown>, code: RegfsErrorCode, check?: (e: RegfsError) => void): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isRegfsError(err, code), `want ${code}, got ${String(err)} ${(err as RegfsError).code ?? ''}`);
    check?.(err);
    return true;
  });
}

/** Streams that keep every byte written to them. */
function fakeIo(): { io: Io; stdout: () => Buffer; stderr: () => string } {
  const sink = (chunks: Buffer[]): Writable =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(Buffer.from(chunk));
        cb();
      },
    });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  return { io: { stdout: sink(out), stderr: sink(err) }, stdout: () => Buffer.concat(out), stderr: () => Buffer.concat(err).toString('utf8') };
}

/** Run the CLI in-process (src/cli/app.ts main) with fake streams. */
async function runCommand(argv: string[]): Promise<{ code: number; stdout: Buffer; out: string; stderr: string }> {
  const f = fakeIo();
  const code = await main(argv, f.io);
  return { code, stdout: f.stdout(), out: f.stdout().toString('utf8'), stderr: f.stderr() };
}

// ---- ls ---------------------------------------------------------------------------------------

test('ls: every repository and tag of the fixture, with digest, kind, media type, platforms and size', async () => {
  const r = await listImages({ root: FIXTURE_ROOT });
  const refs = await currentRefs();
  assert.equal(r.storage, V2);
  assert.deepEqual(
    r.repositories.map((x) => x.name),
    [
      'legacy/app',
      'library/busybox',
      'mirror.example.com/library/busybox',
      'multiarch/tool',
      'team/app',
      'team/app/worker',
      'team/platform/base/alpine',
      'tools/nomediatype',
    ],
  );
  assert.deepEqual(new Set(r.repositories.map((x) => x.name)), new Set(FIXTURE_PUSHES.map((p) => p.repo)));
  for (const repo of r.repositories) {
    assert.deepEqual(repo.tags.map((t) => t.tag), refs.filter((x) => x.repo === repo.name).map((x) => x.tag).sort(), repo.name);
  }
  for (const ref of refs) {
    const t = findTag(r, ref.repo, ref.tag);
    const push = currentPush(ref.repo, ref.tag);
    assert.equal(t.error, undefined, ref.ref);
    assert.equal(t.digest, ref.digest, ref.ref);
    assert.equal(t.kind, ref.kind === 'artifact' ? 'oci' : ref.kind, ref.ref);
    assert.equal(t.mediaType, KIND_MEDIA_TYPE[ref.kind], ref.ref);
    assert.equal(t.artifactType, ref.kind === 'artifact' ? COSIGN_SIG : undefined, ref.ref);
    assert.deepEqual(t.platforms, specPlatforms(push.image), ref.ref);
    assert.equal(t.size, await statSize(V2, ref), ref.ref);
    if (ref.kind !== 'schema1') assert.equal(t.size, specSize(push.image), ref.ref);
    // Schema1 has no config blob: its blobs are its layers.
    assert.equal(t.blobs, ref.kind === 'schema1' ? new Set(ref.blobs).size : blobsOf(push.image).length, ref.ref);
    assert.equal(t.missing, 0, ref.ref);
  }
  assert.deepEqual(findTag(r, 'multiarch/tool', '1.0').platforms, ['linux/amd64', 'linux/arm64', 'linux/arm/v7']);
  assert.deepEqual(findTag(r, 'multiarch/tool', 'nested').platforms, ['linux/amd64', 'linux/arm64', 'linux/ppc64le']);
  assert.deepEqual(findTag(r, 'legacy/app', '1.0').platforms, ['linux/amd64']);
  assert.deepEqual(findTag(r, 'team/app/worker', '1.1').platforms, ['linux/amd64']);
  // Shared layers are counted once per image, not once per reference to them.
  const worker11 = currentPush('team/app/worker', '1.1').image;
  assert.equal(findTag(r, 'team/app/worker', '1.1').blobs, 4, `${worker11.digest}: config and 3 layers`);
});

test('ls: what the real docker-registry 2.8 catalog lists, tags list and serves', { skip: !existsSync(REGISTRY_BIN) && `${REGISTRY_BIN} not installed` }, async () => {
  await withCopy(async (root, v2) => {
    // A repository whose tags are gone (with a repository nested in it), one holding only _layers
    // (an interrupted push: 2.8's catalog keys on _layers), and a tag with a malformed link.
    await rm(repoPath(v2, 'team/app', '_manifests', 'tags'), { recursive: true });
    await mkdir(repoPath(v2, 'team/app-x', '_layers'), { recursive: true });
    const busybox = (await currentRefs()).find((x) => x.ref === 'library/busybox:1.36')!;
    await writeFile(repoPath(v2, 'library/busybox', '_manifests/tags/1.36/current/link'), `${busybox.digest}\n`);
    // Tag directories whose names no request can name: the tag list names them all the same.
    const misnamed = ['-latest', 'v'.repeat(129)];
    for (const t of misnamed) {
      await mkdir(repoPath(v2, 'library/busybox', `_manifests/tags/${t}/current`), { recursive: true });
      await writeFile(repoPath(v2, 'library/busybox', `_manifests/tags/${t}/current/link`), busybox.digest);
    }
    const r = await listImages({ root });
    const reg = await startRegistry({ root, readOnly: true });
    try {
      const base = `http://${reg.host}/v2`;
      const catalog = (await (await fetch(`${base}/_catalog?n=1000`)).json()) as { repositories: string[] };
      assert.deepEqual(r.repositories.map((x) => x.name), catalog.repositories, 'same repositories, same order');
      assert.ok(catalog.repositories.includes('team/app') && catalog.repositories.includes('team/app-x'));
      const accept = [MediaTypes.dockerManifest, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.ociIndex, MediaTypes.schema1Signed].join(', ');
      for (const repo of r.repositories) {
        const res = await fetch(`${base}/${repo.name}/tags/list`);
        const body = (await res.json()) as { tags?: string[] | null };
        if (res.status === 404) assert.deepEqual(repo.tags, [], `${repo.name}: the registry knows no tags`);
        else assert.deepEqual(repo.tags.map((t) => t.tag), [...(body.tags ?? [])].sort(), repo.name);
        for (const t of repo.tags) {
          const m = await fetch(`${base}/${repo.name}/manifests/${t.tag}`, { method: 'HEAD', headers: { accept } });
          if (t.error !== undefined) {
            assert.notEqual(m.status, 200, `${repo.name}:${t.tag} is broken, the registry cannot serve it`);
            continue;
          }
          assert.equal(m.status, 200, `${repo.name}:${t.tag}`);
          assert.equal(m.headers.get('docker-content-digest'), t.digest, `${repo.name}:${t.tag}`);
          // 2.8 signs stored schema1 anew on GET, so it answers with the signed type.
          if (t.kind !== 'schema1') assert.equal(m.headers.get('content-type'), t.mediaType, `${repo.name}:${t.tag}`);
        }
      }
    } finally {
      await reg.stop();
    }
    assert.deepEqual(findTag(r, 'library/busybox', '1.36').error?.code, 'LINK_INVALID');
    for (const t of misnamed) assert.equal(findTag(r, 'library/busybox', t).error?.code, 'TAG_INVALID', t);
  });
});

test('ls: catalog order puts nested repositories right after their parent; a _manifests-only directory (v3) is listed too', async () => {
  assert.ok(compareRepoNames('a', 'a/b') < 0);
  assert.ok(compareRepoNames('a/b', 'a-b') < 0);
  assert.ok(compareRepoNames('a-b', 'a.b') < 0);
  assert.deepEqual(['a-b', 'a/b', 'a', 'a/b/c', 'a0'].sort(compareRepoNames), ['a', 'a/b', 'a/b/c', 'a-b', 'a0']);
  await withCopy(async (root, v2) => {
    await mkdir(repoPath(v2, 'team/app-x', '_layers'), { recursive: true });
    await mkdir(repoPath(v2, 'only/manifests', '_manifests'), { recursive: true });
    await mkdir(repoPath(v2, 'Bad/Name', '_manifests'), { recursive: true });
    await mkdir(repoPath(v2, 'team/_uploads/x', '_manifests'), { recursive: true });
    const names = (await listImages({ root })).repositories.map((x) => x.name);
    assert.deepEqual(names.filter((n) => n.startsWith('team/') || n.startsWith('only/')), [
      'only/manifests',
      'team/app',
      'team/app/worker',
      'team/app-x',
      'team/platform/base/alpine',
    ]);
    assert.ok(!names.some((n) => n.includes('Bad') || n.includes('_uploads')));
  });
});

test('ls: PATTERN globs over repository names, and after ":" over tags', async () => {
  const names = async (pattern: string): Promise<string[]> =>
    (await listImages({ root: FIXTURE_ROOT, pattern })).repositories.flatMap((r) => r.tags.map((t) => `${r.name}:${t.tag}`));
  const repos = async (pattern: string): Promise<string[]> => (await listImages({ root: FIXTURE_ROOT, pattern })).repositories.map((r) => r.name);
  assert.deepEqual(await repos('team/**'), ['team/app', 'team/app/worker', 'team/platform/base/alpine']);
  assert.deepEqual(await repos('team/*'), ['team/app']);
  assert.deepEqual(await repos('team/ap?'), ['team/app']);
  assert.deepEqual(await repos('team/app'), ['team/app'], 'a literal name is that repository only, not the nested ones');
  assert.deepEqual(await repos('*/busybox'), ['library/busybox']);
  assert.deepEqual(await repos('**/busybox'), ['library/busybox', 'mirror.example.com/library/busybox']);
  assert.deepEqual(await repos('mirror.example.com/**'), ['mirror.example.com/library/busybox']);
  assert.deepEqual(await repos('team/**/worker'), ['team/app/worker']);
  assert.deepEqual(await repos('team/app/**'), ['team/app/worker'], "'team/app/**' is below team/app, not team/app itself");
  assert.deepEqual(await repos('team**'), ['team/app', 'team/app/worker', 'team/platform/base/alpine'], "'**' crosses '/' inside a component too");
  assert.deepEqual(await repos('mirror?example.com/*/busybox'), ['mirror.example.com/library/busybox']);
  assert.deepEqual(await repos('**'), (await listImages({ root: FIXTURE_ROOT })).repositories.map((r) => r.name));
  assert.deepEqual(await repos('nothing/**'), []);
  assert.deepEqual(await names('team/**:v1*'), ['team/app:v1'], 'repositories with no matching tag are left out');
  assert.deepEqual(await names(':latest'), ['library/busybox:latest', 'team/platform/base/alpine:latest']);
  assert.deepEqual(await names('multiarch/tool:1.?'), ['multiarch/tool:1.0']);
  assert.deepEqual(await names('multiarch/tool:1.0*'), ['multiarch/tool:1.0', 'multiarch/tool:1.0-oci']);
  await rejectsWith(listImages({ root: FIXTURE_ROOT, pattern: 'team/app:' }), 'USAGE');
  await rejectsWith(listImages({ root: FIXTURE_ROOT, jobs: 0 }), 'USAGE');
  await rejectsWith(listImages({ root: '/nonexistent-root' }), 'NOT_REGISTRY');

  // The glob itself: anchored; * and ? stay within a component; ** crosses; **/ may match nothing.
  const g = (glob: string, s: string): boolean => compileGlob(glob).test(s);
  assert.ok(g('a/*', 'a/b') && !g('a/*', 'a/b/c') && !g('a/*', 'xa/b') && !g('a/*', 'a/b/'));
  assert.ok(g('a/**', 'a/b/c') && !g('a/**', 'a'));
  assert.ok(g('**/c', 'c') && g('**/c', 'a/b/c') && !g('**/c', 'ac'));
  assert.ok(g('a/**/c', 'a/c') && g('a/**/c', 'a/b/x/c') && !g('a/**/c', 'ab/c'));
  assert.ok(g('a?c', 'abc') && !g('a?c', 'a/c'));
  assert.ok(g('a.b', 'a.b') && !g('a.b', 'axb'), 'regex metacharacters are literal');
  assert.ok(g('x+y(z)', 'x+y(z)'));
  // What the characters of valid names mean: '.', '-', '_' and a host's ':' are literal.
  assert.ok(g('mirror.example.com:5000/a_b-c', 'mirror.example.com:5000/a_b-c') && !g('mirror.example.com/x', 'mirrorXexample.com/x'));
  // '**' crosses '/' wherever it stands, not only as a whole component; 'a/**' is below 'a', never 'a' itself.
  assert.ok(g('a**', 'a/b/c') && g('**c', 'a/b/c') && g('a/**c', 'a/b/c') && !g('a/**/', 'a/b'));
  // Brackets, braces and a leading '!' are not glob syntax here: themselves (no valid name holds them).
  assert.ok(g('{a,b}', '{a,b}') && !g('{a,b}', 'a') && g('[ab]', '[ab]') && !g('[ab]', 'a') && g('!a', '!a') && !g('!a', 'b'));
  // A ':' followed by '/' belongs to a registry host, not to a tag glob.
  assert.equal(parseListPattern('localhost:5000/app').tag, undefined);
  assert.ok(parseListPattern('localhost:5000/app:v*').repo.test('localhost:5000/app'));
  assert.ok(parseListPattern('localhost:5000/app:v*').tag?.test('v2'));
});

test('ls: a repository without tags is listed with none; plain output says "(no tags)"', async () => {
  await withCopy(async (root, v2) => {
    await rm(repoPath(v2, 'team/app', '_manifests', 'tags'), { recursive: true });
    const r = await listImages({ root });
    assert.deepEqual(r.repositories.find((x) => x.name === 'team/app')?.tags, []);
    assert.equal(r.repositories.find((x) => x.name === 'team/app/worker')?.tags.length, 2, 'the nested repository is still there');
    const plain = await runCommand(['ls', root]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.out, /^team\/app +\(no tags\)$/m);
    assert.match(plain.out, /^team\/app\/worker:1\.0 +sha256:[0-9a-f]{64} +oci +linux\/amd64 +\d/m);
    assert.equal(plain.stderr, '');
    const json = await runCommand(['ls', root, 'team/**', '--json']);
    const parsed = JSON.parse(json.out) as { repositories: Array<{ name: string; tags: unknown[] }> };
    assert.deepEqual(parsed.repositories.map((x) => [x.name, x.tags.length]), [
      ['team/app', 0],
      ['team/app/worker', 2],
      ['team/platform/base/alpine', 3],
    ]);
  });
});

test('ls: a broken tag is listed with its error and the rest is listed as usual', async () => {
  await withCopy(async (root, v2) => {
    const refs = await currentRefs();
    const ref = (s: string): FixtureRef => refs.find((x) => x.ref === s)!;
    // v1: a link with a trailing newline (the registry answers 500).
    await writeFile(repoPath(v2, 'team/app', '_manifests/tags/v1/current/link'), `${ref('team/app:v1').digest}\n`);
    // v2: the repository lost the revision link of what the tag points at.
    await rm(repoPath(v2, 'team/app', '_manifests/revisions/sha256', ref('team/app:v2').digest.slice(7)), { recursive: true });
    // edge: the tag directory lost current/.
    await rm(repoPath(v2, 'team/app', '_manifests/tags/edge/current'), { recursive: true });
    // alpine 3.19: the manifest bytes are damaged.
    await writeFile(blobFile(v2, ref('team/platform/base/alpine:3.19').digest), '{"schemaVersion":2}');
    // The busybox layer is gone: images that use it are listed, with it counted missing.
    const busyboxLayer = (currentPush('library/busybox', '1.36').image as { layers: Array<{ digest: string; size: number }> }).layers[0]!;
    await unlink(blobFile(v2, busyboxLayer.digest));

    const r = await listImages({ root, jobs: 3 });
    const err = (repo: string, tag: string): RegfsError | undefined => findTag(r, repo, tag).error;
    assert.equal(err('team/app', 'v1')?.code, 'LINK_INVALID');
    assert.match(err('team/app', 'v1')?.path ?? '', /team\/app\/_manifests\/tags\/v1\/current\/link$/);
    assert.equal(findTag(r, 'team/app', 'v1').digest, undefined);
    assert.equal(err('team/app', 'v2')?.code, 'MANIFEST_UNKNOWN');
    assert.equal(findTag(r, 'team/app', 'v2').digest, ref('team/app:v2').digest, 'the digest the link names is still shown');
    assert.equal(err('team/app', 'edge')?.code, 'TAG_UNKNOWN');
    assert.equal(err('team/platform/base/alpine', '3.19')?.code, 'DIGEST_MISMATCH');
    for (const t of ['v1', 'v2', 'edge']) assert.equal(findTag(r, 'team/app', t).size, undefined);
    // The rest is untouched.
    for (const x of refs) {
      const t = findTag(r, x.repo, x.tag);
      if (['team/app:v1', 'team/app:v2', 'team/app:edge', 'team/platform/base/alpine:3.19'].includes(x.ref)) continue;
      assert.equal(t.error, undefined, x.ref);
      assert.equal(t.digest, x.digest, x.ref);
      const usesLayer = x.blobs.includes(busyboxLayer.digest);
      assert.equal(t.missing, usesLayer ? 1 : 0, x.ref);
      assert.equal(t.size, (await statSize(FIXTURE_ROOT + '/docker/registry/v2', x)) - (usesLayer ? busyboxLayer.size : 0), x.ref);
    }

    const plain = await runCommand(['ls', root]);
    assert.equal(plain.code, 0, 'the listing itself succeeded');
    assert.match(plain.out, /^team\/app:v1 +- +error +malformed link ".*\/tags\/v1\/current\/link": .* \[LINK_INVALID\]$/m);
    assert.match(plain.out, /^team\/app:v2 +sha256:[0-9a-f]{64} +error +.*\[MANIFEST_UNKNOWN\]$/m);
    assert.match(plain.out, /^library\/busybox:1\.36 +sha256:[0-9a-f]{64} +oci +linux\/amd64 +\d+ B \(1 missing\)$/m);
    assert.match(plain.out, /^team\/app\/worker:1\.1 +sha256:[0-9a-f]{64} +oci +linux\/amd64 +[\d.]+ KiB$/m);
    assert.match(plain.stderr, /warning: 4 tags could not be read/);
    const json = await runCommand(['ls', root, 'team/app', '--json']);
    const tags = (JSON.parse(json.out) as { repositories: Array<{ tags: Array<Record<string, unknown>> }> }).repositories[0]!.tags;
    const v1 = tags.find((t) => t['tag'] === 'v1')!;
    assert.equal((v1['error'] as { code: string }).code, 'LINK_INVALID');
    assert.match((v1['error'] as { path: string }).path, /current\/link$/);
    assert.equal(v1['digest'], undefined);
    const sig = tags.find((t) => String(t['tag']).endsWith('.sig'))!;
    assert.equal(sig['artifactType'], COSIGN_SIG);
    assert.equal(sig['error'], undefined);
  });
});

test('ls: plain output is one aligned line per tag; artifacts show their type; --jobs 1 lists the same', async () => {
  const plain = await runCommand(['ls', FIXTURE_ROOT]);
  assert.equal(plain.code, 0);
  const lines = plain.out.trimEnd().split('\n');
  assert.equal(lines.length, (await currentRefs()).length);
  const digestColumn = new Set(lines.map((l) => l.indexOf('sha256:')));
  assert.equal(digestColumn.size, 1, 'digests start in one column');
  const tool = lines.find((l) => l.startsWith('multiarch/tool:1.0 '))!;
  assert.deepEqual(tool.split(/ {2,}/).slice(1, 4), ['sha256:c8ca6737ec979458ebe682b3dcf8ec6da62be17472a128fdd1f6efe3255a241a', 'docker-list', 'linux/amd64,linux/arm64,linux/arm/v7']);
  assert.match(lines.find((l) => l.includes('.sig '))!, / oci +application\/vnd\.dev\.cosign\.artifact\.sig\.v1\+json +\d+ B$/);
  assert.match(lines.find((l) => l.startsWith('legacy/app:1.0 '))!, / schema1 +linux\/amd64 +[\d.]+ KiB$/);
  const serial = await runCommand(['ls', FIXTURE_ROOT, '--jobs', '1']);
  assert.equal(serial.out, plain.out);
  const none = await runCommand(['ls', FIXTURE_ROOT, 'nothing/*']);
  assert.equal(none.code, 0);
  assert.equal(none.out, '');
  assert.match(none.stderr, /no repository matches "nothing\/\*"/);
  assert.equal((await runCommand(['ls'])).code, 2);
  assert.equal((await runCommand(['ls', FIXTURE_ROOT, '--jobs', '0'])).code, 2);
  const bad = await runCommand(['ls', '/nonexistent-root']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /\[NOT_REGISTRY\]/);
});

test('ls: 1500 tags in one repository, each with the digest and size of what it points at', async () => {
  await withCopy(async (root, v2) => {
    const refs = await currentRefs();
    const targets = refs.filter((x) => x.repo === 'team/app');
    const n = 1500;
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const target = targets[i % targets.length]!;
        const dir = repoPath(v2, 'team/app', '_manifests/tags', `bulk-${String(i).padStart(4, '0')}`, 'current');
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'link'), target.digest);
      }),
    );
    const sizes = new Map<string, number>();
    for (const t of targets) sizes.set(t.digest, await statSize(V2, t));
    const r = await listImages({ root, pattern: 'team/app:bulk-*' });
    const tags = r.repositories[0]!.tags;
    assert.equal(tags.length, n);
    for (const [i, t] of tags.entries()) {
      const target = targets[i % targets.length]!;
      assert.equal(t.tag, `bulk-${String(i).padStart(4, '0')}`);
      assert.equal(t.digest, target.digest);
      assert.equal(t.size, sizes.get(target.digest));
    }
  });
});

// ---- inspect ----------------------------------------------------------------------------------

test('inspect --raw: exactly the stored manifest bytes, for every kind', async () => {
  for (const ref of await currentRefs()) {
    const r = await runCommand(['inspect', FIXTURE_ROOT, ref.ref, '--raw']);
    assert.equal(r.code, 0, `${ref.ref}: ${r.stderr}`);
    const stored = await readFile(blobFile(V2, ref.digest));
    assert.ok(r.stdout.equals(stored), `${ref.ref}: stdout is the blob, no newline added`);
    assert.equal(digestOf(r.stdout), ref.digest);
  }
  const both = await runCommand(['inspect', FIXTURE_ROOT, 'team/app:v1', '--raw', '--json']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /\[USAGE\]/);
});

test('inspect: an image manifest: config summary, layers with sizes, all present', async () => {
  const push = currentPush('team/platform/base/alpine', '3.19');
  const img = push.image;
  assert.equal(img.kind, 'image');
  const r = await inspectImage({ root: FIXTURE_ROOT, ref: 'team/platform/base/alpine:3.19' });
  assert.equal(r.ref, `team/platform/base/alpine:3.19@${img.digest}`);
  assert.equal(r.kind, 'docker');
  assert.equal(r.mediaType, MediaTypes.dockerManifest);
  assert.equal(r.size, img.size);
  assert.equal(r.totalSize, specSize(img));
  assert.deepEqual(r.platforms, ['linux/amd64']);
  assert.deepEqual(r.config, { digest: img.config.digest, mediaType: MediaTypes.dockerConfig, size: img.config.size, present: true, linked: true, urls: undefined });
  assert.deepEqual(
    r.layers.map((l) => [l.digest, l.mediaType, l.size, l.present]),
    img.layers.map((l) => [l.digest, MediaTypes.dockerLayer, l.size, true]),
  );
  const s = r.image!;
  assert.equal(s.os, 'linux');
  assert.equal(s.architecture, 'amd64');
  assert.equal(s.created, '2024-01-01T00:00:00Z');
  assert.deepEqual(s.cmd, ['/bin/sh']);
  assert.equal(s.entrypoint, undefined);
  assert.equal(s.env, 1);
  assert.deepEqual(s.labels, { version: '3.19' });
  assert.equal(s.diffIds, img.layers.length);
  assert.equal(s.history, img.layers.length);
  assert.deepEqual(r.manifests, []);
  assert.equal(r.subject, undefined);
  assert.equal(r.missing, 0);

  const plain = await runCommand(['inspect', FIXTURE_ROOT, 'team/platform/base/alpine:3.19']);
  assert.equal(plain.code, 0);
  assert.match(plain.out, new RegExp(`^config +${img.config.digest} +${MediaTypes.dockerConfig.replaceAll('.', '\\.').replaceAll('+', '\\+')} +\\d+ B$`, 'm'));
  assert.match(plain.out, /^ {2}platform +linux\/amd64$/m);
  assert.match(plain.out, /^ {4}version=3\.19$/m);
  assert.match(plain.out, /^layers +1$/m);
  assert.match(plain.out, new RegExp(`^ {2}${img.layers[0]!.digest} +application/vnd\\.docker\\.image\\.rootfs\\.diff\\.tar\\.gzip +[\\d.]+ KiB$`, 'm'));
  const json = await runCommand(['inspect', FIXTURE_ROOT, 'team/platform/base/alpine:3.19', '--json']);
  const parsed = JSON.parse(json.out) as Record<string, unknown>;
  assert.deepEqual(parsed['manifest'], JSON.parse((await readFile(blobFile(V2, img.digest))).toString('utf8')));
  assert.equal(parsed['raw'], undefined);
  assert.equal(parsed['subject'], null, 'what does not apply is null, not absent');
  assert.equal(parsed['tag'], '3.19');
  assert.equal((parsed['image'] as { labels: Record<string, string> }).labels['version'], '3.19');
  assert.equal(parsed['totalSize'], specSize(img));
});

test('inspect: an index lists each child with media type, platform and size; nested indexes too', async () => {
  for (const [repo, tag] of [
    ['multiarch/tool', '1.0'],
    ['multiarch/tool', '1.0-oci'],
    ['multiarch/tool', 'nested'],
  ] as const) {
    const idx = currentPush(repo, tag).image;
    assert.equal(idx.kind, 'index');
    const r = await inspectImage({ root: FIXTURE_ROOT, ref: `${repo}:${tag}` });
    assert.equal(r.digest, idx.digest);
    assert.deepEqual(
      r.manifests.map((c) => [c.digest, c.mediaType, c.size, c.platform, c.present, c.linked]),
      idx.children.map((c) => [c.digest, c.mediaType, c.size, c.kind === 'image' && c.platform !== undefined ? specPlatforms(c)[0] : undefined, true, true]),
    );
    assert.deepEqual(r.platforms, specPlatforms(idx));
    assert.equal(r.totalSize, specSize(idx));
    assert.deepEqual(r.layers, []);
    assert.equal(r.config, undefined);
  }
  const plain = await runCommand(['inspect', FIXTURE_ROOT, 'multiarch/tool:1.0']);
  assert.match(plain.out, /^platforms +linux\/amd64, linux\/arm64, linux\/arm\/v7$/m);
  assert.match(plain.out, /^manifests +3$/m);
  assert.match(plain.out, /^ {2}sha256:[0-9a-f]{64} +application\/vnd\.docker\.distribution\.manifest\.v2\+json +linux\/arm\/v7 +\d+ B$/m);
});

test('inspect: schema1: layers from fsLayers, architecture from the manifest, summary from v1Compatibility', async () => {
  const ref = (await currentRefs()).find((x) => x.ref === 'legacy/app:1.0')!;
  const r = await inspectImage({ root: FIXTURE_ROOT, ref: 'legacy/app:1.0' });
  assert.equal(r.kind, 'schema1');
  assert.equal(r.digest, ref.digest);
  assert.equal(r.config, undefined);
  const stored = JSON.parse((await readFile(blobFile(V2, ref.digest))).toString('utf8')) as { fsLayers: Array<{ blobSum: string }>; architecture: string };
  assert.deepEqual(r.layers.map((l) => l.digest), [...new Set(stored.fsLayers.map((l) => l.blobSum))]);
  for (const l of r.layers) {
    assert.equal(l.present, true);
    assert.equal(l.size, await fileSize(blobFile(V2, l.digest)), 'schema1 gives no sizes: the stored size');
  }
  assert.equal(r.image?.architecture, stored.architecture);
  assert.equal(r.image?.os, 'linux');
  assert.deepEqual(r.image?.cmd, ['/bin/sh']);
  assert.equal(r.image?.diffIds, undefined);
  assert.deepEqual(r.platforms, ['linux/amd64']);
  assert.equal(r.totalSize, await statSize(V2, ref));
  const plain = await runCommand(['inspect', FIXTURE_ROOT, 'legacy/app:1.0']);
  assert.match(plain.out, /^layers +2 \(fsLayers, top layer first\)$/m);
  assert.match(plain.out, /^config +none \(schema1/m);
});

test('inspect: an OCI artifact: artifactType, subject, its non-image config not summarised', async () => {
  const push = FIXTURE_PUSHES.find((p) => p.tag.endsWith('.sig'))!;
  const art = push.image;
  assert.equal(art.kind, 'image');
  const subject = currentPush('team/app', 'v1').image;
  const r = await inspectImage({ root: FIXTURE_ROOT, ref: `${push.repo}:${push.tag}` });
  assert.equal(r.kind, 'oci');
  assert.equal(r.artifactType, COSIGN_SIG);
  assert.deepEqual(r.subject, {
    digest: subject.digest,
    mediaType: MediaTypes.dockerManifest,
    size: subject.size,
    platform: undefined,
    artifactType: undefined,
    present: true,
    linked: true,
  });
  assert.equal(r.config?.mediaType, MediaTypes.ociEmpty);
  assert.equal(r.config?.digest, art.config.digest);
  assert.equal(r.image, undefined);
  assert.match(r.imageNote ?? '', /not an image config/);
  assert.deepEqual(r.layers.map((l) => [l.digest, l.mediaType, l.size, l.present]), [[art.layers[0]!.digest, 'application/vnd.dev.cosign.simplesigning.v1+json', art.layers[0]!.size, true]]);
  assert.deepEqual(r.platforms, []);
  assert.deepEqual(r.annotations, { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' });
  const plain = await runCommand(['inspect', FIXTURE_ROOT, `${push.repo}:${push.tag}`]);
  assert.match(plain.out, /^artifact type +application\/vnd\.dev\.cosign\.artifact\.sig\.v1\+json$/m);
  assert.match(plain.out, new RegExp(`^subject +${subject.digest} `, 'm'));
});

test('inspect: by digest, by tag@digest, an overwritten tag\'s old manifest by digest', async () => {
  const v1 = currentPush('team/app', 'v1').image.digest;
  assert.equal((await inspectImage({ root: FIXTURE_ROOT, ref: `team/app@${v1}` })).ref, `team/app@${v1}`);
  const both = await inspectImage({ root: FIXTURE_ROOT, ref: `team/app:v1@${v1}` });
  assert.equal(both.ref, `team/app:v1@${v1}`);
  assert.equal(both.tag, 'v1');
  const old = (await readFixtureManifest()).refs.find((x) => x.ref === 'team/app:edge' && x.overwritten)!;
  const r = await inspectImage({ root: FIXTURE_ROOT, ref: `team/app@${old.digest}` });
  assert.equal(r.digest, old.digest);
  assert.equal(r.tag, undefined);
  // The storage root's docker/registry/v2 directory is accepted as ROOT too.
  assert.equal((await inspectImage({ root: V2, ref: 'team/app:v1' })).digest, v1);
});

test('inspect: errors carry the registry\'s codes and name the path', async () => {
  const v1 = currentPush('team/app', 'v1').image.digest;
  const busybox = currentPush('library/busybox', '1.36').image.digest;
  await rejectsWith(inspectImage({ root: FIXTURE_ROOT, ref: 'nope/nope:1' }), 'NAME_UNKNOWN', (e) => assert.match(e.path ?? '', /repositories\/nope\/nope$/));
  await rejectsWith(inspectImage({ root: FIXTURE_ROOT, ref: 'team/app:nope' }), 'TAG_UNKNOWN', (e) => assert.match(e.path ?? '', /team\/app\/_manifests\/tags\/nope\/current\/link$/));
  await rejectsWith(inspectImage({ root: FIXTURE_ROOT, ref: `team/app:v2@${v1}` }), 'TAG_DIGEST_MISMATCH');
  await rejectsWith(inspectImage({ root: FIXTURE_ROOT, ref: `team/app@${busybox}` }), 'MANIFEST_UNKNOWN', (e) => {
    assert.match(e.path ?? '', new RegExp(`team/app/_manifests/revisions/sha256/${busybox.slice(7)}/link$`));
    assert.equal(e.digest, busybox);
  });
  await rejectsWith(inspectImage({ root: FIXTURE_ROOT, ref: 'team/app' }), 'USAGE');
  await rejectsWith(inspectImage({ root: FIXTURE_ROOT, ref: 'Team/App:1' }), 'NAME_INVALID');
  await rejectsWith(inspectImage({ root: FIXTURE_ROOT, ref: 'team/app:-bad' }), 'TAG_INVALID');
  await rejectsWith(inspectImage({ root: FIXTURE_ROOT, ref: 'team/app@sha256:abc' }), 'DIGEST_INVALID');
  await rejectsWith(inspectImage({ root: '/nonexistent-root', ref: 'team/app:v1' }), 'NOT_REGISTRY');
  await withCopy(async (root, v2) => {
    await writeFile(repoPath(v2, 'team/app', '_manifests/tags/v1/current/link'), `${v1}\n`);
    await rejectsWith(inspectImage({ root, ref: 'team/app:v1' }), 'LINK_INVALID', (e) => assert.match(e.path ?? '', /tags\/v1\/current\/link$/));
    const v2digest = currentPush('team/app', 'v2').image.digest;
    await rm(repoPath(v2, 'team/app', '_manifests/revisions/sha256', v2digest.slice(7)), { recursive: true });
    await rejectsWith(inspectImage({ root, ref: 'team/app:v2' }), 'MANIFEST_UNKNOWN');
    const alpine = currentPush('team/platform/base/alpine', '3.20').image.digest;
    await unlink(blobFile(v2, alpine));
    await rejectsWith(inspectImage({ root, ref: 'team/platform/base/alpine:latest' }), 'BLOB_UNKNOWN', (e) => assert.match(e.path ?? '', /\/data$/));
    await writeFile(blobFile(v2, currentPush('team/app', 'edge').image.digest), 'not json');
    await rejectsWith(inspectImage({ root, ref: 'team/app:edge' }), 'DIGEST_MISMATCH');
  });
  const cli = await runCommand(['inspect', FIXTURE_ROOT, 'team/app:nope']);
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /error: tag team\/app:nope does not exist .*\[TAG_UNKNOWN\]/);
  assert.equal(cli.out, '');
  assert.doesNotMatch(cli.stderr, /^\s+at /m, 'no stack trace');
  assert.equal((await runCommand(['inspect', FIXTURE_ROOT, 'team/app'])).code, 2);
  assert.equal((await runCommand(['inspect', FIXTURE_ROOT])).code, 2);
});

test('inspect: foreign layers are noted, missing layers shown, neither counted as present', async () => {
  await withCopy(async (root, v2) => {
    const base = currentPush('team/app', 'v1').image;
    assert.equal(base.kind, 'image');
    const foreign = { mediaType: MediaTypes.dockerForeignLayer, digest: `sha256:${'ab'.repeat(32)}`, size: 12345, urls: ['https://example.com/layer.tar.gz'] };
    const lost = { mediaType: MediaTypes.dockerLayer, digest: `sha256:${'cd'.repeat(32)}`, size: 777 };
    const raw = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.dockerManifest,
        config: { mediaType: MediaTypes.dockerConfig, digest: base.config.digest, size: base.config.size },
        layers: [foreign, { mediaType: MediaTypes.dockerLayer, digest: base.layers[0]!.digest, size: base.layers[0]!.size }, lost],
      }),
    );
    const d = digestOf(raw);
    await mkdir(join(blobFile(v2, d), '..'), { recursive: true });
    await writeFile(blobFile(v2, d), raw);
    await mkdir(repoPath(v2, 'team/app', '_manifests/revisions/sha256', d.slice(7)), { recursive: true });
    await writeFile(repoPath(v2, 'team/app', '_manifests/revisions/sha256', d.slice(7), 'link'), d);
    await mkdir(repoPath(v2, 'team/app', '_manifests/tags/win/current'), { recursive: true });
    await writeFile(repoPath(v2, 'team/app', '_manifests/tags/win/current/link'), d);

    const r = await inspectImage({ root, ref: 'team/app:win' });
    assert.deepEqual(r.layers.map((l) => [l.digest, l.present, l.urls]), [
      [foreign.digest, false, foreign.urls],
      [base.layers[0]!.digest, true, undefined],
      [lost.digest, false, undefined],
    ]);
    assert.equal(r.missing, 1, 'the absent foreign layer is not missing; the other absent one is');
    assert.equal(r.totalSize, raw.length + base.config.size + base.layers[0]!.size);
    const plain = await runCommand(['inspect', root, 'team/app:win']);
    assert.match(plain.out, /foreign \(https:\/\/example\.com\/layer\.tar\.gz\) +not in storage$/m);
    assert.match(plain.out, new RegExp(`${lost.digest} .* MISSING from storage$`, 'm'));
    const listed = findTag(await listImages({ root, pattern: 'team/app:win' }), 'team/app', 'win');
    assert.equal(listed.missing, 1);
    assert.equal(listed.size, r.totalSize);
  });
});

test('ls and inspect never change the source', async () => {
  const before = await snapshotTree(FIXTURE_ROOT);
  await listImages({ root: FIXTURE_ROOT });
  for (const ref of await currentRefs()) await inspectImage({ root: FIXTURE_ROOT, ref: ref.ref });
  assert.deepEqual(await snapshotTree(FIXTURE_ROOT), before);
});

test('ls: a pattern of many * over long names matches in time linear in both (no backtracking)', { timeout: 20_000 }, () => {
  const name = 'a'.repeat(255);
  const pattern = `${'*a'.repeat(20)}*b`;
  assert.equal(compileGlob(pattern).test(name), false);
  assert.equal(compileGlob(`${'*a'.repeat(20)}*`).test(name), true);
  assert.equal(parseListPattern(`${name}:${pattern}`).tag?.test(name), false);
});

test('ls: compileGlob means what the regular expression it replaced meant, on 20,000 random short globs and names', () => {
  // The former globToRegExp, as the oracle: exact, and fast enough on inputs this short.
  const oracle = (glob: string): RegExp => {
    let re = '';
    for (let i = 0; i < glob.length; i++) {
      const c = glob[i]!;
      if (c === '*') {
        let j = i;
        while (glob[j] === '*') j++;
        if (j - i === 1) re += '[^/]*';
        else if ((i === 0 || glob[i - 1] === '/') && glob[j] === '/') {
          re += '(?:.*/)?';
          j++;
        } else re += '.*';
        i = j - 1;
      } else if (c === '?') re += '[^/]';
      else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    }
    return new RegExp(`^${re}$`);
  };
  const rand = prng(7);
  const pick = (alphabet: string, max: number): string => Array.from({ length: Math.floor(rand() * (max + 1)) }, () => alphabet[Math.floor(rand() * alphabet.length)]!).join('');
  for (let n = 0; n < 20_000; n++) {
    const glob = pick('ab/*?.', 7);
    const name = pick('ab/.', 8);
    assert.equal(compileGlob(glob).test(name), oracle(glob).test(name), `glob ${JSON.stringify(glob)}, name ${JSON.stringify(name)}`);
  }
});
