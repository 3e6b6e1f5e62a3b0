/**
 * `dir:` images both ways, judged by the real tools (skopeo 1.9.3, docker-registry 2.8.2):
 *
 *   1. directories skopeo wrote (`copy` with and without `--all`, schema1, a nested index put
 *      together from skopeo's pieces, `sync --scoped --src docker --dest dir`) are imported
 *      with from-dir and served by the registry with the fixture's digests;
 *   2. to-dir output is pushed by `skopeo copy dir:` and `skopeo sync --src dir --scoped`
 *      with the fixture's digests;
 *   3. fixture → to-dir → from-dir → registry keeps every digest and leaves nothing for the
 *      garbage collector, with plain and with portable directory names;
 *   4. damaged input is refused with the right code, naming the file, and nothing is written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, mkdir, readdir, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import { toDir, type ToDirResult } from '../src/ops/to-dir.js';
import { fromDir, type FromDirResult } from '../src/ops/from-dir.js';
import { RegfsError, type RegfsErrorCode } from '../src/errors.js';
import { digestFile, digestHex, digestOf, parseDigest } from '../src/digest.js';
import { isIndexKind, parseManifestContent } from '../src/manifest.js';
import { startRegistry } from '../scripts/lib/registry-server.js';
import { skopeoCopy, skopeoInspectRaw, skopeoManifestDigestOf, withRetry } from '../scripts/lib/skopeo.js';
import type { FixtureRef } from '../scripts/lib/fixture-spec.js';
import { FIXTURE_ROOT, readFixtureManifest } from './helpers/fixture.js';
import { copyTree, listFiles, snapshotTree, tempDir } from './helpers/tree.js';
import { assertServed, assertServing, type Served } from './helpers/judge.js';


const refs = (await readFixtureManifest()).refs;
const current = refs.filter((r) => !r.overwritten);
const fixtureRef = (ref: string): FixtureRef => {
  const r = current.find((x) => x.ref === ref);
  if (r === undefined) throw new Error(`no current fixture ref ${ref}`);
  return r;
};
const served = (r: FixtureRef): Served => ({ name: r.ref, digest: r.digest });

/** The overwritten `team/app:edge`: reachable only by digest. */
const OLD_EDGE = refs.find((r) => r.overwritten)!;
const NESTED = fixtureRef('multiarch/tool:nested');
const SCHEMA1 = fixtureRef('legacy/app:1.0');

/**
 * Every kind the fixture has: docker, a digest line (the overwritten tag), an artifact, OCI,
 * OCI without mediaType, a Docker list, an OCI index, schema1, one image in two repositories,
 * two tags on one manifest. The nested index is added where the tool under test can take it.
 */
const KINDS: string[] = [
  'team/app:v1',
  `team/app@${OLD_EDGE.digest}`,
  'team/app:sha256-6d1ddbb23e53cfd97b606fd78932a91c65f116c02fa690a4db6750d4793e35ac.sig',
  'team/app/worker:1.1',
  'tools/nomediatype:1.0',
  'multiarch/tool:1.0',
  'multiarch/tool:1.0-oci',
  'legacy/app:1.0',
  'library/busybox:1.36',
  'mirror.example.com/library/busybox:1.36',
  'team/platform/base/alpine:3.20',
  'team/platform/base/alpine:latest',
];
const expectedOf = (list: string[]): Served[] =>
  list.map((l) => (l.includes('@') ? { name: l, digest: l.slice(l.indexOf('@') + 1) } : served(fixtureRef(l))));
/** Current fixture tags that KINDS does not list: a round trip of KINDS must not serve them. */
const NOT_IN_KINDS = ['team/app:v2', 'team/app:edge', 'library/busybox:latest', 'team/platform/base/alpine:3.19', 'team/app/worker:1.0'];

// ---------------------------------------------------------------------------------------------
// 1. skopeo writes, from-dir imports, the registry serves

test('e2e dir: skopeo-written dir: images (copy with and without --all, schema1, nested, sync --scoped) import with their digests', async () => {
  const t = await tempDir('regfs-e2e-dir-');
  try {
    const singles = join(t.dir, 'singles');
    const synced = join(t.dir, 'synced');
    await mkdir(singles);
    const src = await startRegistry({ root: FIXTURE_ROOT, readOnly: true });
    const srcHost = src.host;
    const list = fixtureRef('multiarch/tool:1.0');
    let amd64 = '';
    try {
      const pull = (ref: string, dir: string, opts: { all?: boolean; indexOnly?: boolean } = {}): Promise<void> =>
        skopeoCopy(`docker://${src.host}/${ref}`, `dir:${join(singles, dir)}`, opts);

      // Without --all skopeo saves only the host's platform child (linux/amd64) as manifest.json.
      const listManifest = parseManifestContent(await skopeoInspectRaw(`docker://${src.host}/${list.ref}`), parseDigest(list.digest), list.ref);
      amd64 = listManifest.manifests.find((c) => c.platform?.os === 'linux' && c.platform.architecture === 'amd64')!.digest;
      await pull(list.ref, 'tool-amd64');
      assert.equal(digestOf(await readFile(join(singles, 'tool-amd64', 'manifest.json'))), amd64, 'skopeo without --all saves the amd64 child');
      await pull(list.ref, 'tool-list', { all: true });
      await pull('multiarch/tool:1.0-oci', 'tool-oci-index', { all: true });
      await pull('team/app:v1', 'app-v1');
      // schema1: skopeo saves the body the registry signed on the fly, whose own sha256 is not the digest.
      await pull(SCHEMA1.ref, 'legacy');
      const signed = await readFile(join(singles, 'legacy', 'manifest.json'));
      assert.ok('signatures' in (JSON.parse(signed.toString('utf8')) as object), 'skopeo saved a signed schema1 manifest');
      assert.notEqual(digestOf(signed), SCHEMA1.digest);
      // A nested index: skopeo 1.9 cannot copy it with --all, so it is assembled from skopeo's
      // pieces in the layout to-dir writes: the index alone, then each child by digest, its
      // manifest.json renamed to <hex>.manifest.json, its other files beside it.
      await pull(NESTED.ref, 'nested', { indexOnly: true });
      const nested = parseManifestContent(await readFile(join(singles, 'nested', 'manifest.json')), parseDigest(NESTED.digest), NESTED.ref);
      for (const c of nested.manifests) {
        const piece = join(t.dir, `piece-${digestHex(c.digest)}`);
        await skopeoCopy(`docker://${src.host}/${NESTED.repo}@${c.digest}`, `dir:${piece}`, { all: c.mediaType?.includes('index') === true });
        for (const f of await readdir(piece)) {
          if (f === 'version') continue;
          const to = join(singles, 'nested', f === 'manifest.json' ? `${digestHex(c.digest)}.manifest.json` : f);
          if (!(await exists(to))) await rename(join(piece, f), to);
        }
      }

      // A scoped sync of several repositories (two hold the same image) and of two tagged
      // lists; the nested index is left out, skopeo 1.9 cannot sync it ("Unexpectedly received
      // a manifest list").
      const repos = ['team/app', 'team/app/worker', 'tools/nomediatype', 'legacy/app', 'library/busybox', 'mirror.example.com/library/busybox', 'team/platform/base/alpine'];
      for (const source of [...repos, 'multiarch/tool:1.0', 'multiarch/tool:1.0-oci']) {
        await skopeoRun(['sync', '--src-tls-verify=false', '--scoped', '--all', '--preserve-digests', '--src', 'docker', '--dest', 'dir', `${src.host}/${source}`, synced]);
      }
    } finally {
      await src.stop();
    }

    // What sync wrote: <dest>/<host:port>/<repo path>:<tag>, one image directory each.
    const syncedDirs = (await listFiles(synced)).filter((f) => f.endsWith(`${sep}manifest.json`)).map((f) => f.slice(0, -`${sep}manifest.json`.length).split(sep).join('/'));
    const syncedRefs = current.filter((r) => r.ref !== NESTED.ref);
    assert.deepEqual(syncedDirs.sort(), syncedRefs.map((r) => `${srcHost}/${r.ref}`).sort());

    // Single directories, each named with --name, into one fresh root.
    const rootA = join(t.dir, 'root-singles');
    const imports: Array<[dir: string, name: string, digest: string, kind: string]> = [
      ['tool-amd64', 'copied/tool:amd64', amd64, 'docker'],
      ['tool-list', 'copied/tool:1.0', list.digest, 'docker-list'],
      ['tool-oci-index', 'copied/tool:1.0-oci', fixtureRef('multiarch/tool:1.0-oci').digest, 'oci-index'],
      ['nested', 'copied/tool:nested', NESTED.digest, 'oci-index'],
      ['app-v1', 'copied/app:v1', fixtureRef('team/app:v1').digest, 'docker'],
      ['legacy', SCHEMA1.ref, SCHEMA1.digest, 'schema1'],
    ];
    for (const [dir, name, digest, kind] of imports) {
      const r = await fromDir({ input: join(singles, dir), output: rootA, name });
      assert.deepEqual(
        r.images.map((i) => [i.ref, i.digest, i.kind]),
        [[name, digest, kind]],
        dir,
      );
    }

    // The sync tree, with the registry host dropped from the directory names.
    const rootB = join(t.dir, 'root-synced');
    const r = await fromDir({ input: synced, output: rootB, stripRegistry: true });
    assert.deepEqual(refDigests(r), syncedRefs.map((x) => `${x.ref} ${x.digest}`).sort());

    await assertServed(
      rootA,
      imports.map(([, name, digest]) => ({ name, digest })),
      ['copied/tool:latest'],
      join(t.dir, 'check-a'),
    );
    await assertServed(rootB, syncedRefs.map(served), [NESTED.ref], join(t.dir, 'check-b'));
  } finally {
    await t.cleanup();
  }
});

// ---------------------------------------------------------------------------------------------
// 2. to-dir writes, skopeo pushes

test('e2e dir: to-dir output pushed by skopeo copy dir: and skopeo sync --src dir --scoped keeps every digest', async () => {
  const t = await tempDir('regfs-e2e-dir-');
  try {
    const out = join(t.dir, 'export');
    const exported = await exportList(t.dir, out, KINDS);
    // The nested index and its two children by digest: skopeo 1.9 pushes it only child first,
    // then `--multi-arch index-only`.
    const outNested = join(t.dir, 'export-nested');
    const nestedChildren = parseManifestContent(await readFile(join(FIXTURE_ROOT, blobDataRel(NESTED.digest))), parseDigest(NESTED.digest), NESTED.ref).manifests;
    const exportedNested = await exportList(t.dir, outNested, [NESTED.ref, ...nestedChildren.map((c) => `${NESTED.repo}@${c.digest}`)]);

    // skopeo copy, one image at a time, into a fresh registry.
    await mkdir(join(t.dir, 'root-copy'));
    const regCopy = await startRegistry({ root: join(t.dir, 'root-copy'), schema1: true });
    try {
      const push = (from: string, img: ToDirResult['images'][number], opts: { all?: boolean; indexOnly?: boolean }): Promise<void> =>
        withRetry(() => skopeoCopy(`dir:${join(from, img.dir)}`, `docker://${regCopy.host}/${img.ref}`, opts));
      for (const img of exported.images) {
        if (img.kind === 'schema1') {
          // to-dir writes schema1 unsigned (the stored payload), which registry 2.8 refuses as
          // it is; skopeo then signs it, which --preserve-digests forbids (docs/dir.md). The payload, and so the digest, stays the same: checked below.
          await withRetry(() => skopeoRun(['copy', '--quiet', '--dest-tls-verify=false', `dir:${join(out, img.dir)}`, `docker://${regCopy.host}/${img.ref}`]));
        } else await push(out, img, { all: isIndexKind(img.kind) });
      }
      for (const img of exportedNested.images.filter((i) => i.digest !== NESTED.digest)) await push(outNested, img, { all: isIndexKind(img.kind) });
      await push(outNested, exportedNested.images.find((i) => i.digest === NESTED.digest)!, { indexOnly: true });
      await assertServing(regCopy.host, [...expectedOf(KINDS), served(NESTED)], [], join(t.dir, 'check-copy'));

      // schema1 under another name: skopeo rewrites name and tag, so the digest cannot be kept;
      // --preserve-digests refuses, and without it the registry stores another digest.
      const schema1Dir = `dir:${join(out, 'legacy/app:1.0')}`;
      const renamed = `docker://${regCopy.host}/legacy/renamed:1.0`;
      await assert.rejects(skopeoCopy(schema1Dir, renamed), /would change the manifest/);
      await skopeoRun(['copy', '--quiet', '--dest-tls-verify=false', schema1Dir, renamed]);
      assert.notEqual(await skopeoManifestDigestOf(renamed), SCHEMA1.digest);
    } finally {
      await regCopy.stop();
    }

    // skopeo sync of the whole to-dir tree (digests.txt beside the images is ignored).
    await mkdir(join(t.dir, 'root-sync'));
    const regSync = await startRegistry({ root: join(t.dir, 'root-sync'), schema1: true });
    try {
      // Without --scoped sync keeps only each directory's basename: nested names are lost and
      // the two busybox repositories collide. With --scoped the path below the tree is the name.
      const plain = await skopeoRun(['sync', '--dry-run', '--dest-tls-verify=false', '--all', '--src', 'dir', '--dest', 'docker', out, regSync.host]);
      const plainTargets = syncTargets(plain.stderr, regSync.host);
      assert.deepEqual(plainTargets, exported.images.map((i) => i.ref.slice(i.ref.replace(/[:@].*$/, '').lastIndexOf('/') + 1)).sort());
      assert.equal(plainTargets.filter((n) => n === 'busybox:1.36').length, 2);

      // No --preserve-digests: it would stop the unsigned schema1 image (see above). Every
      // digest is checked after the sync instead.
      const scoped = await withRetry(() => skopeoRun(['sync', '--dest-tls-verify=false', '--scoped', '--all', '--src', 'dir', '--dest', 'docker', out, regSync.host]));
      assert.deepEqual(syncTargets(scoped.stderr, regSync.host), exported.images.map((i) => i.ref).sort());
      await assertServing(regSync.host, expectedOf(KINDS), [NESTED.ref], join(t.dir, 'check-sync'));

      // Why the nested index is not in the synced tree.
      await assert.rejects(
        skopeoRun(['sync', '--dest-tls-verify=false', '--scoped', '--all', '--src', 'dir', '--dest', 'docker', join(outNested, 'multiarch/tool:nested'), `${regSync.host}/probe`]),
        /Unexpectedly received a manifest list/,
      );
    } finally {
      await regSync.stop();
    }
  } finally {
    await t.cleanup();
  }
});

// ---------------------------------------------------------------------------------------------
// 3. Round trip

for (const portableNames of [false, true]) {
  test(`e2e dir: fixture → to-dir${portableNames ? ' --portable-names' : ''} → from-dir → the registry serves every image with its digest, nothing to collect`, async () => {
    const t = await tempDir('regfs-e2e-dir-');
    try {
      const list = [...KINDS, NESTED.ref];
      const out = join(t.dir, 'export');
      const exported = await exportList(t.dir, out, list, { portableNames });
      const expected = expectedOf(list);
      assert.deepEqual(exported.images.map((i) => `${i.ref} ${i.digest}`).sort(), expected.map((e) => `${e.name} ${e.digest}`).sort());
      if (portableNames) {
        // FAT/exFAT-safe: no ':', and no upper case outside the %XX escapes, in any name.
        for (const f of await listFiles(out)) assert.ok(!/[:A-Z]/.test(f.replaceAll(/%[0-9A-F]{2}/g, '')), f);
        assert.ok(exported.images.some((i) => i.dir.includes('%3A')));
      }

      const root = join(t.dir, 'root');
      const r = await fromDir({ input: out, output: root });
      assert.deepEqual(refDigests(r), expected.map((e) => `${e.name} ${e.digest}`).sort());
      assert.ok(r.bytesVerified > 0);
      await assertServed(root, expected, NOT_IN_KINDS, join(t.dir, 'check'));
    } finally {
      await t.cleanup();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// 4. Damaged input

test('e2e dir: damaged dir: input is refused with its code and path, and nothing is written', async () => {
  const t = await tempDir('regfs-e2e-dir-');
  try {
    const image = fixtureRef('team/app:v1');
    const base = join(t.dir, 'base');
    // Copies, not hard links: the damage below must never reach the fixture.
    await toDir({ image: image.ref, source: FIXTURE_ROOT, output: base, link: 'copy' });
    const top = parseManifestContent(await readFile(join(base, 'manifest.json')), parseDigest(image.digest), image.ref);
    const layer = top.layers.at(-1)!.digest;
    const layerFile = (dir: string): string => join(dir, digestHex(layer));

    // An existing root that must come out unchanged.
    const existing = join(t.dir, 'existing');
    await fromDir({ input: base, output: existing, name: 'other/app:v1' });
    const before = await snapshotTree(existing);

    let n = 0;
    const damaged = async (damage: (dir: string) => Promise<void>): Promise<string> => {
      const dir = join(t.dir, `damaged-${n++}`);
      await copyTree(base, dir);
      await damage(dir);
      return dir;
    };
    /** Both into a new root and into the existing one: the single problem, and nothing written. */
    const refused = async (input: string, opts: { name?: string; noVerify?: boolean }, code: RegfsErrorCode, names: string[], wrapped = true): Promise<void> => {
      for (const output of [join(t.dir, `fresh-${n++}`), existing]) {
        const err = await fromDir({ input, output, ...opts }).then(
          () => assert.fail(`${input}: expected ${code}`),
          (e: unknown) => e,
        );
        assert.ok(err instanceof RegfsError, String(err));
        let problem = err;
        if (wrapped) {
          assert.equal(err.code, 'INCOMPLETE', err.message);
          assert.equal(err.problems.length, 1, err.problems.map((p) => p.message).join('\n'));
          problem = err.problems[0]!;
        }
        assert.equal(problem.code, code, problem.message);
        for (const s of names) assert.ok(problem.message.includes(s), `"${problem.message}" should name "${s}"`);
        if (output === existing) assert.deepEqual(await snapshotTree(existing), before, 'the existing root is unchanged');
        else assert.equal(await exists(output), false, 'no output root is created');
      }
    };
    const name = image.ref;

    const flipped = await damaged(async (dir) => {
      const bytes = await readFile(layerFile(dir));
      bytes[bytes.length >> 1]! ^= 0x01;
      await rm(layerFile(dir));
      await writeFile(layerFile(dir), bytes);
    });
    await refused(flipped, { name }, 'DIGEST_MISMATCH', [layerFile(flipped)]);

    const truncated = await damaged(async (dir) => truncate(layerFile(dir), 100));
    await refused(truncated, { name }, 'SIZE_INVALID', [layerFile(truncated)]);

    const missing = await damaged(async (dir) => rm(layerFile(dir)));
    await refused(missing, { name }, 'BLOB_UNKNOWN', [missing, layer]);

    const notJson = await damaged(async (dir) => writeFile(join(dir, 'manifest.json'), '{"schemaVersion": 2, "layers": ['));
    await refused(notJson, { name }, 'MANIFEST_INVALID', [join(notJson, 'manifest.json')]);

    // A directory without manifest.json (as an interrupted skopeo copy leaves it): with --name
    // from-dir calls it a usage error; without, the input holds no image directory at all.
    const noManifest = await damaged(async (dir) => rm(join(dir, 'manifest.json')));
    // An image directory (it has its version file) without manifest.json: a copy cut short.
    await refused(noManifest, { name }, 'MANIFEST_UNKNOWN', [noManifest]);
    // Without --name its basename must name the image, which it does not.
    await refused(noManifest, {}, 'NAME_INVALID', [noManifest]);

    // A tree: one good image and one @digest directory holding another manifest. The good one
    // is not written either.
    const tree = join(t.dir, 'tree');
    const wrongDigest = fixtureRef('team/app:v2').digest;
    await mkdir(join(tree, 'team'), { recursive: true });
    await copyTree(base, join(tree, 'team', 'app:v1'));
    await copyTree(base, join(tree, 'team', `app@${wrongDigest}`));
    await refused(tree, {}, 'DIGEST_MISMATCH', [`team/app@${wrongDigest}`]);

    // --no-verify still checks presence and size, but a flipped byte passes (the blob is not
    // hashed) and lands in the registry as it is: the registry would serve a corrupt layer.
    await refused(truncated, { name, noVerify: true }, 'SIZE_INVALID', [layerFile(truncated)]);
    await refused(missing, { name, noVerify: true }, 'BLOB_UNKNOWN', [missing, layer]);
    const accepted = join(t.dir, 'accepted');
    const r = await fromDir({ input: flipped, output: accepted, name, noVerify: true });
    assert.equal(r.bytesVerified, 0);
    assert.deepEqual(refDigests(r), [`${name} ${image.digest}`]);
    assert.notEqual(await digestFile(join(accepted, blobDataRel(layer))), layer, 'with noVerify the flipped blob is stored unchecked');
  } finally {
    await t.cleanup();
  }
});

// ---------------------------------------------------------------------------------------------
// helpers

/** to-dir for a list of refs. */
async function exportList(work: string, out: string, list: string[], opts: { portableNames?: boolean } = {}): Promise<ToDirResult> {
  const listFile = join(work, `${relative(work, out).replaceAll(sep, '_')}.list`);
  await writeFile(listFile, `${list.join('\n')}\n`);
  const r = await toDir({ list: listFile, source: FIXTURE_ROOT, output: out, ...opts });
  assert.equal(r.images.length, list.length);
  return r;
}

/** `ref digest` of every image from-dir imported, sorted. */
function refDigests(r: FromDirResult): string[] {
  return r.images.map((i) => `${i.ref} ${i.digest}`).sort();
}

/** `docker/registry/v2/blobs/sha256/ab/abcd…/data` */
function blobDataRel(digest: string): string {
  const hex = digestHex(parseDigest(digest));
  return join('docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
}

/** The names (after the host) a `skopeo sync` log says it copied to, sorted. */
function syncTargets(log: string, host: string): string[] {
  return [...log.matchAll(/ to="docker:\/\/([^"]+)"/g)].map((m) => m[1]!.slice(host.length + 1)).sort();
}

/** Run skopeo; a failure's message carries its stderr. */
async function skopeoRun(args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await promisify(execFile)('skopeo', args, { maxBuffer: 64 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`skopeo ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
