/**
 * `to-oci`: registry storage to one OCI image layout. Judged by the real tools: skopeo 1.9.3
 * reads the layout and pushes each OCI-typed image into a fresh docker-registry 2.8.2 with
 * its digest unchanged; umoci, an independent reader, lists and stats the layout after every
 * export; every blob's bytes hash to its name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { checkJsonDocument } from '../scripts/lib/json-schemas.js';
import { startRegistry } from '../scripts/lib/registry-server.js';
import { skopeoCopy, skopeoManifestDigestOf } from '../scripts/lib/skopeo.js';
import { runCli } from './helpers/cli.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { copyTree, snapshotTree, withTempDir, writeListFile } from './helpers/tree.js';
import { deadPid, MY_TAG } from './helpers/owner.js';

const exec = promisify(execFile);
const V2 = 'docker/registry/v2';
const REF_NAME = 'org.opencontainers.image.ref.name';

/** The fixture's images, by kind: OCI-typed ones skopeo can read from a layout, Docker-typed ones it cannot (§3.5b). */
const OCI_REFS = ['library/busybox:1.36', 'team/app/worker:1.1', 'multiarch/tool:1.0-oci', 'multiarch/tool:nested'];
const DOCKER_REFS = ['team/app:v1', 'multiarch/tool:1.0', 'legacy/app:1.0'];
const ARTIFACT = 'team/app:sha256-6d1ddbb23e53cfd97b606fd78932a91c65f116c02fa690a4db6750d4793e35ac.sig';

interface Entry {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

async function readIndex(layout: string): Promise<{ schemaVersion: number; manifests: Entry[] }> {
  return JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { schemaVersion: number; manifests: Entry[] };
}

/** The digest regfs's ls gives each reference in the source. */
async function sourceDigests(root: string): Promise<Map<string, { digest: string; mediaType: string }>> {
  const ls = JSON.parse((await runCli(['ls', root, '--json'])).stdout) as { repositories: Array<{ name: string; tags: Array<{ tag: string; digest: string; mediaType: string }> }> };
  return new Map(ls.repositories.flatMap((r) => r.tags.map((t) => [`${r.name}:${t.tag}`, { digest: t.digest, mediaType: t.mediaType }] as const)));
}

/** Every blob's bytes hash to its name; umoci lists every named entry and stats every OCI image. */
async function assertValidLayout(layout: string): Promise<void> {
  assert.equal(await readFile(join(layout, 'oci-layout'), 'utf8'), '{"imageLayoutVersion":"1.0.0"}');
  for (const hex of await readdir(join(layout, 'blobs/sha256'))) {
    assert.equal(createHash('sha256').update(await readFile(join(layout, 'blobs/sha256', hex))).digest('hex'), hex, `blobs/sha256/${hex}`);
  }
  const index = await readIndex(layout);
  for (const e of index.manifests) assert.ok(existsSync(join(layout, 'blobs/sha256', e.digest.slice(7))), `${e.digest} is there`);
  const names = index.manifests.flatMap((e) => (e.annotations?.[REF_NAME] === undefined ? [] : [e.annotations[REF_NAME]]));
  const listed = (await exec('umoci', ['ls', '--layout', layout])).stdout.trim().split('\n').filter((l) => l !== '');
  assert.deepEqual([...listed].sort(), [...names].sort(), 'umoci lists every named entry');
  for (const e of index.manifests) {
    const name = e.annotations?.[REF_NAME];
    if (name === undefined || e.mediaType !== 'application/vnd.oci.image.manifest.v1+json') continue;
    // umoci stats images (an artifact's config is not an image config: it says so and stops).
    const m = JSON.parse(await readFile(join(layout, 'blobs/sha256', e.digest.slice(7)), 'utf8')) as { config: { mediaType: string } };
    if (m.config.mediaType === 'application/vnd.oci.image.config.v1+json') await exec('umoci', ['stat', '--image', `${layout}:${name}`]);
  }
}

test('to-oci: every listed image byte for byte, each blob once, named repo:tag; skopeo pushes the OCI ones with their digests; umoci reads it', async () => {
  await withTempDir(async (dir) => {
    const layout = join(dir, 'oci');
    const refs = [...OCI_REFS, ...DOCKER_REFS, ARTIFACT];
    const list = await writeListFile(dir, [...refs, `library/busybox@sha256:3271c4fec4a89f06c12edeadbb942bb5aba4b9d57b3671bb5a1f6d149778b82c`]);
    const before = await snapshotTree(FIXTURE_ROOT);
    const r = await runCli(['to-oci', list, FIXTURE_ROOT, layout, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = checkJsonDocument('to-oci', r.stdout, 0) as { images: unknown[]; stats: { entriesAdded: number; blobsLinked: number } };
    assert.equal(doc.images.length, refs.length + 1);
    assert.equal(doc.stats.entriesAdded, refs.length + 1);
    assert.deepEqual(await snapshotTree(FIXTURE_ROOT), before, 'the source is unchanged');

    const src = await sourceDigests(FIXTURE_ROOT);
    const index = await readIndex(layout);
    assert.equal(index.schemaVersion, 2);
    for (const ref of refs) {
      const e = index.manifests.find((x) => x.annotations?.[REF_NAME] === ref);
      assert.ok(e !== undefined, `${ref} has an entry`);
      assert.equal(e.digest, src.get(ref)!.digest, ref);
      assert.equal(e.mediaType, src.get(ref)!.mediaType, `${ref}: its own media type, Docker ones included`);
    }
    const busybox = 'sha256:3271c4fec4a89f06c12edeadbb942bb5aba4b9d57b3671bb5a1f6d149778b82c';
    const byDigest = index.manifests.filter((x) => x.annotations?.[REF_NAME] === `library/busybox@${busybox}`);
    assert.deepEqual(byDigest.map((x) => x.digest), [busybox], 'a digest-only line: an entry named repo@digest, no tag');
    await assertValidLayout(layout);

    // skopeo reads each OCI-typed image from the layout and pushes it; the registry serves it with the source's digest.
    const root = join(dir, 'reg');
    await mkdir(root);
    const reg = await startRegistry({ root });
    try {
      for (const ref of OCI_REFS) {
        const nested = ref.endsWith(':nested');
        if (nested) continue; // skopeo 1.9 cannot copy a nested index with --all (copied by children below)
        await skopeoCopy(`oci:${layout}:${ref}`, `docker://${reg.host}/${ref}`, { all: true });
        assert.equal(await skopeoManifestDigestOf(`docker://${reg.host}/${ref}`), src.get(ref)!.digest, ref);
      }
      // The Docker-typed ones skopeo 1.9.3 does not find in a layout (storage-formats §3.5b).
      await assert.rejects(skopeoCopy(`oci:${layout}:team/app:v1`, `docker://${reg.host}/team/app:v1`), /no descriptor found/);
    } finally {
      await reg.stop();
    }
  });
});

test('to-oci: a second export adds and replaces its own entries and leaves every other entry alone', async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, 'src');
    await copyTree(FIXTURE_ROOT, src);
    const layout = join(dir, 'oci');
    assert.equal((await runCli(['to-oci', await writeListFile(dir, ['library/busybox:1.36', 'team/app:v1']), src, layout])).code, 0);
    // Someone else's entries: one skopeo wrote (a name regfs also writes, given as a bare tag), and one without a name.
    await skopeoCopy(`oci:${layout}:library/busybox:1.36`, `oci:${layout}:stable`);
    const foreign = await readIndex(layout);
    foreign.manifests.push({ ...foreign.manifests[0]!, annotations: { 'com.example.note': 'kept' } });
    await writeFile(join(layout, 'index.json'), JSON.stringify({ ...foreign, annotations: { 'com.example.top': 'kept' } }));
    const others = (await readIndex(layout)).manifests.filter((e) => e.annotations?.[REF_NAME] !== 'team/app:v1');

    // team/app:v1 moves to v2's manifest in the source; export it again with one new image.
    const tagLink = join(src, V2, 'repositories/team/app/_manifests/tags/v1/current/link');
    const v2Digest = (await readFile(join(src, V2, 'repositories/team/app/_manifests/tags/v2/current/link'), 'utf8')).trim();
    await writeFile(tagLink, v2Digest);
    const r = await runCli(['to-oci', await writeListFile(dir, ['team/app:v1', 'team/app/worker:1.0', 'library/busybox:1.36']), src, layout, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const stats = (checkJsonDocument('to-oci', r.stdout, 0) as { stats: Record<string, number> }).stats;
    assert.deepEqual([stats['entriesAdded'], stats['entriesReplaced'], stats['entriesUnchanged']], [1, 1, 1]);
    const after = await readIndex(layout);
    assert.equal((after as unknown as { annotations: Record<string, string> }).annotations['com.example.top'], 'kept', 'fields of index.json kept');
    assert.equal(after.manifests.find((e) => e.annotations?.[REF_NAME] === 'team/app:v1')!.digest, v2Digest, 'replaced');
    assert.equal(after.manifests.findIndex((e) => e.annotations?.[REF_NAME] === 'team/app:v1'), 1, 'where it stood');
    for (const o of others) assert.ok(after.manifests.some((e) => JSON.stringify(e) === JSON.stringify(o)), `kept: ${JSON.stringify(o.annotations)}`);
    assert.ok(after.manifests.some((e) => e.annotations?.[REF_NAME] === 'team/app/worker:1.0'), 'added');
    await assertValidLayout(layout);
    // skopeo still reads its own entry.
    assert.equal(await skopeoManifestDigestOf(`oci:${layout}:stable`), after.manifests[0]!.digest);
  });
});

test('to-oci: --platform exports one image of an index; a dry run writes nothing', async () => {
  await withTempDir(async (dir) => {
    const layout = join(dir, 'oci');
    const list = await writeListFile(dir, ['multiarch/tool:1.0-oci', 'multiarch/tool:nested']);
    const dry = await runCli(['to-oci', list, FIXTURE_ROOT, layout, '--platform', 'linux/arm64', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal((checkJsonDocument('to-oci', dry.stdout, 0) as { plan: { entriesAdded: number } }).plan.entriesAdded, 2);
    assert.equal(existsSync(layout), false, 'a dry run writes nothing');
    assert.equal((await runCli(['to-oci', list, FIXTURE_ROOT, layout, '--platform', 'linux/arm64'])).code, 0);
    const index = await readIndex(layout);
    for (const e of index.manifests) {
      assert.equal(e.mediaType, 'application/vnd.oci.image.manifest.v1+json', 'the arm64 image, not the index');
      const config = JSON.parse(await readFile(join(layout, 'blobs/sha256', e.digest.slice(7)), 'utf8')) as { config: { digest: string } };
      const platform = JSON.parse(await readFile(join(layout, 'blobs/sha256', config.config.digest.slice(7)), 'utf8')) as { architecture: string };
      assert.equal(platform.architecture, 'arm64');
    }
    await assertValidLayout(layout);
    const none = await runCli(['to-oci', list, FIXTURE_ROOT, join(dir, 'other'), '--platform', 'linux/s390x']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /\[PLATFORM_UNKNOWN\]/);
    assert.equal(existsSync(join(dir, 'other', 'index.json')), false);
  });
});

test('to-oci: a missing image, a bad output: clear errors, nothing written; --keep-going exports the rest', async () => {
  await withTempDir(async (dir) => {
    const mixed = await writeListFile(dir, ['library/busybox:1.36', 'nosuch/app:1']);
    const failed = await runCli(['to-oci', mixed, FIXTURE_ROOT, join(dir, 'a')]);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /nosuch\/app.*\[NAME_UNKNOWN\]/);
    assert.equal(existsSync(join(dir, 'a')), false, 'nothing written');
    const partial = await runCli(['to-oci', mixed, FIXTURE_ROOT, join(dir, 'b'), '--keep-going', '--json']);
    assert.equal(partial.code, 3);
    checkJsonDocument('to-oci', partial.stdout, 3);
    assert.equal((await readIndex(join(dir, 'b'))).manifests.length, 1);

    const good = await writeListFile(dir, ['library/busybox:1.36']);
    const file = join(dir, 'file');
    await writeFile(file, 'x');
    const notLayout = join(dir, 'notlayout');
    await mkdir(notLayout);
    await writeFile(join(notLayout, 'photo.jpg'), 'x');
    const badIndex = join(dir, 'badindex');
    await mkdir(badIndex);
    await writeFile(join(badIndex, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(badIndex, 'index.json'), '{"schemaVersion":2,"manifests":{}}');
    const linkedIndex = join(dir, 'linkedindex');
    await mkdir(linkedIndex);
    await symlink(join(badIndex, 'index.json'), join(linkedIndex, 'index.json'));
    for (const out of [file, notLayout, badIndex, linkedIndex]) {
      const before = await snapshotTree(dir);
      const r = await runCli(['to-oci', good, FIXTURE_ROOT, out]);
      assert.equal(r.code, 1, out);
      assert.match(r.stderr, /\[NOT_OCI_LAYOUT\]/, out);
      assert.doesNotMatch(r.stderr, /^\s+at /m);
      assert.deepEqual(await snapshotTree(dir), before, `${out}: nothing written`);
    }
    // A symbolic link where the layout's blobs go is refused, never written through.
    const linked = join(dir, 'linked');
    await mkdir(join(dir, 'elsewhere'));
    await mkdir(linked);
    await symlink(join(dir, 'elsewhere'), join(linked, 'blobs'));
    const r = await runCli(['to-oci', good, FIXTURE_ROOT, linked]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[OUTPUT_SYMLINK\]/);
    assert.deepEqual(await readdir(join(dir, 'elsewhere')), []);
    assert.equal(existsSync(join(linked, 'index.json')), false);
    // The source as output: refused.
    const inSource = await runCli(['to-oci', good, FIXTURE_ROOT, join(FIXTURE_ROOT, 'oci')]);
    assert.equal(inSource.code, 1);
    assert.match(inSource.stderr, /\[OUTPUT_IN_SOURCE\]/);
    await rm(join(FIXTURE_ROOT, 'oci'), { recursive: true, force: true });
  });
});

test('to-oci and apply: LAYOUT a symbolic link to a directory is written through, as an extract OUT is (the path as named is the user\'s choice); a link to nothing is OUTPUT_UNWRITABLE', async () => {
  await withTempDir(async (dir) => {
    const list = await writeListFile(dir, ['library/busybox:1.36']);
    const bundle = join(dir, 'b.tar');
    assert.equal((await runCli(['bundle', list, FIXTURE_ROOT, bundle])).code, 0);
    for (const [cmd, args] of [['to-oci', [list, FIXTURE_ROOT]], ['apply', [bundle]]] as const) {
      const real = join(dir, `${cmd}-real`);
      const link = join(dir, `${cmd}-link`);
      // apply merges into a layout that is there (into an empty directory it writes registry storage).
      if (cmd === 'apply') assert.equal((await runCli(['to-oci', list, FIXTURE_ROOT, real])).code, 0);
      else await mkdir(real);
      await symlink(real, link);
      for (const pass of ['new', 'again']) {
        const r = await runCli([cmd, ...args, link]);
        assert.equal(r.code, 0, `${cmd} ${pass}: ${r.stderr}`);
      }
      assert.deepEqual((await readdir(real)).sort(), ['blobs', 'index.json', 'oci-layout'], `${cmd}: the layout is in the link's target`);
      const index = JSON.parse(await readFile(join(real, 'index.json'), 'utf8')) as { manifests: unknown[] };
      assert.equal(index.manifests.length, 1, `${cmd}: one entry after two runs`);
      const dangling = join(dir, `${cmd}-dangling`);
      await symlink(join(dir, 'nowhere'), dangling);
      const d = await runCli([cmd, ...args, dangling]);
      assert.equal(d.code, 1, d.stderr);
      assert.match(d.stderr, /symbolic link to nothing \[OUTPUT_UNWRITABLE\]/, cmd);
      assert.equal(existsSync(join(dir, 'nowhere')), false);
    }
  });
});

test('to-oci: a FIFO where index.json or oci-layout goes is refused at once, named as what it is; two runs at once leave one entry', async () => {
  await withTempDir(async (dir) => {
    const good = await writeListFile(dir, ['library/busybox:1.36']);
    for (const name of ['index.json', 'oci-layout']) {
      const out = join(dir, `fifo-${name}`);
      await mkdir(out);
      assert.equal(spawnSync('mkfifo', [join(out, name)]).status, 0);
      const r = await runCli(['to-oci', good, FIXTURE_ROOT, out], { timeoutMs: 20_000 });
      assert.equal(r.killed, false, `${name}: no hang`);
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`"${join(out, name).replaceAll('/', '\\/')}" is a FIFO, not a regular file \\[NOT_OCI_LAYOUT\\]`));
      assert.deepEqual((await readdir(out)).sort(), [name], 'nothing written');
    }
    // Two runs at once: one writes; the other is refused by the lock (LOCKED) or finds the entry
    // there. One entry, and what a run reports is what it did under the lock.
    const out = join(dir, 'twice');
    const runs = await Promise.all([runCli(['to-oci', good, FIXTURE_ROOT, out, '--json']), runCli(['to-oci', good, FIXTURE_ROOT, out, '--json'])]);
    const docs = runs.map((r) => JSON.parse(r.stdout) as { exitCode: number; error?: { code: string }; stats?: { entriesAdded: number }; plan?: { entriesAdded: number } });
    assert.equal((await readIndex(out)).manifests.length, 1);
    const done = docs.filter((d) => d.exitCode === 0);
    for (const d of docs) if (d.exitCode !== 0) assert.equal(d.error?.code, 'LOCKED');
    assert.equal(done.map((d) => d.stats!.entriesAdded).reduce((x, y) => x + y, 0), 1, 'added once');
    for (const d of done) assert.equal(d.plan!.entriesAdded, d.stats!.entriesAdded, 'the plan reports what the run did');
  });
});

test("to-oci: a live run's temp file of the lock is not a killed run's leftover: the run that holds the lock leaves it (the other run fails LOCKED, not IO_ERROR)", async () => {
  await withTempDir(async (dir) => {
    const layout = join(dir, 'oci');
    const list = await writeListFile(dir, ['library/busybox:1.36']);
    assert.equal((await runCli(['to-oci', list, FIXTURE_ROOT, layout])).code, 0);
    // What another run, alive (this process), has between writing its lock's temp file and linking it into place.
    const live = join(layout, `.regfs.lock.${process.pid}-${MY_TAG}.0a1b2c3d4e5f.regfs-tmp`);
    await writeFile(live, JSON.stringify({ pid: process.pid }));
    const dead = join(layout, `.index.json.${deadPid()}-${MY_TAG}-0a1b2c3d-0.regfs-tmp`);
    await writeFile(dead, '{');
    const r = await runCli(['to-oci', list, FIXTURE_ROOT, layout, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(live), "the live run's lock temp file stays");
    assert.ok(!existsSync(dead), "a killed run's temp file goes");
    assert.equal((JSON.parse(r.stdout) as { stats: { tempFilesRemoved: number } }).stats.tempFilesRemoved, 1);
  });
});

test('to-oci: an index.json holding what a rewrite would change (an integer past 2^53, a number past a double, a key twice) is refused, untouched', async () => {
  await withTempDir(async (dir) => {
    const list = await writeListFile(dir, ['library/busybox:1.36']);
    const foreign = '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:' + 'a'.repeat(64) + '","size":SIZE,"annotations":{"org.opencontainers.image.ref.name":"other/big:v1"}}';
    const cases: Array<[string, string]> = [
      ['a size past 2^53', `{"schemaVersion":2,"manifests":[${foreign.replace('SIZE', '9007199254740993')}]}`],
      ['a number past a double', `{"schemaVersion":2,"manifests":[${foreign.replace('SIZE', '1')}],"com.example.weight":1e400}`],
      ['a key twice', `{"schemaVersion":2,"manifests":[${foreign.replace('SIZE', '1')}],"annotations":{"com.example.note":"first","com.example.note":"second"}}`],
      ['a number below a double', `{"schemaVersion":2,"manifests":[${foreign.replace('SIZE', '1')}],"com.example.tiny":1e-400}`],
      ['more digits than a double', `{"schemaVersion":2,"manifests":[${foreign.replace('SIZE', '1')}],"com.example.w":0.10000000000000000000001}`],
      ['a byte that is no UTF-8', `{"schemaVersion":2,"manifests":[${foreign.replace('SIZE', '1')}],"com.example.s":"\xff"}`],
      // Go matches a struct's keys case-insensitively: "Manifests" is manifests (the later wins).
      ['a field in another case', `{"schemaVersion":2,"manifests":[],"Manifests":[${foreign.replace('SIZE', '1')}]}`],
      ['a field in another case alone', `{"SchemaVersion":2,"manifests":[${foreign.replace('SIZE', '1')}]}`],
      ['a descriptor field in another case', `{"schemaVersion":2,"manifests":[${foreign.replace('SIZE', '1').replace('"size"', '"Size":2,"size"')}]}`],
    ];
    for (const [label, text] of cases) {
      const layout = join(dir, label.replaceAll(' ', '-'));
      await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
      await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
      await writeFile(join(layout, 'index.json'), Buffer.from(text, 'latin1'));
      const before = await snapshotTree(layout);
      const r = await runCli(['to-oci', list, FIXTURE_ROOT, layout]);
      assert.equal(r.code, 1, `${label}: ${r.stderr}`);
      assert.match(r.stderr, /\[NOT_OCI_LAYOUT\]/, label);
      assert.deepEqual(await snapshotTree(layout), before, `${label}: untouched`);
    }
    // An index with no manifests (none, or null) is an empty one, as Go and from-oci read it: the entry is added.
    for (const [label, text] of [['none', '{"schemaVersion":2,"annotations":{"k":"v"}}'], ['null', '{"schemaVersion":2,"manifests":null}']] as const) {
      const empty = join(dir, `no-manifests-${label}`);
      await mkdir(join(empty, 'blobs', 'sha256'), { recursive: true });
      await writeFile(join(empty, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
      await writeFile(join(empty, 'index.json'), text);
      const r = await runCli(['to-oci', list, FIXTURE_ROOT, empty]);
      assert.equal(r.code, 0, `${label}: ${r.stderr}`);
      const index = JSON.parse(await readFile(join(empty, 'index.json'), 'utf8')) as { manifests: unknown[]; annotations?: unknown };
      assert.equal(index.manifests.length, 1, label);
      if (label === 'none') assert.deepEqual(index.annotations, { k: 'v' }, 'every other field kept');
    }
    // Another spelling of the same value is no change: 1.0, 1e21 written out, 1.5E+2.
    const same = join(dir, 'same-values');
    await mkdir(join(same, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(same, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(same, 'index.json'), `{"schemaVersion":2,"manifests":[${foreign.replace('SIZE', '1.0')}],"com.example.n":[1000000000000000000000,1.5E+2,-0.250]}`);
    const r = await runCli(['to-oci', list, FIXTURE_ROOT, same]);
    assert.equal(r.code, 0, r.stderr);
  });
});
