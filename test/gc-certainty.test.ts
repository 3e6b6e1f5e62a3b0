/**
 * gc deletes nothing it is not certain of, judged against docker-registry 2.8.2: a name the
 * registry stores (Team/app) is handled by every command; a tag or revision link a crash left
 * empty keeps what it names; a repository directory whose name cannot be parsed stops gc, as
 * it stops the registry's; and on damaged trees regfs never deletes a blob the registry's own
 * garbage collector keeps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Digest } from '../src/digest.js';
import { isRegfsError } from '../src/errors.js';
import { gc } from '../src/ops/gc.js';
import { verify } from '../src/ops/verify.js';
import { rm as regfsRm } from '../src/ops/rm.js';
import { parseRepoName, parseTag } from '../src/reference.js';
import * as layout from '../src/registry/layout.js';
import { registryGarbageCollectDryRun, startRegistry } from '../scripts/lib/registry-server.js';
import { blobsOf, makeImage, makeLayer, manifestsOf, type Image, type Index } from '../scripts/lib/images.js';
import { runCli } from './helpers/cli.js';
import { assertServing } from './helpers/judge.js';
import { FIXTURE_PUSHES } from '../scripts/lib/fixture-spec.js';
import { Pusher } from '../scripts/fuzz/pusher.js';
import { FIXTURE_ROOT, currentPush } from './helpers/fixture.js';
import { copyTree, snapshotTree, tempDir } from './helpers/tree.js';

const V2 = join('docker', 'registry', 'v2');
const v1 = currentPush('team/app', 'v1').image as Image;
const v2img = currentPush('team/app', 'v2').image as Image;
const APP = parseRepoName('team/app');

/** Every blob of an image or index, as digests. */
const digestsOf = (m: Image | Index): Digest[] => blobsOf(m).map((b) => b.digest as Digest);

async function withCopy(fn: (root: string, v2: string, scratch: string) => Promise<void>): Promise<void> {
  const t = await tempDir('regfs-certain-');
  try {
    const root = join(t.dir, 'root');
    await copyTree(FIXTURE_ROOT, root);
    await fn(root, join(root, V2), t.dir);
  } finally {
    await t.cleanup();
  }
}

test('Team/app, pushed to 2.8.2 over HTTP, is listed, inspected, extracted, exported, verified and kept by gc', async () => {
  const t = await tempDir('regfs-upper-');
  try {
    const root = join(t.dir, 'root');
    const img = makeImage({ format: 'docker', layers: [makeLayer('upper-case')] });
    const reg = await startRegistry({ root });
    try {
      // Through the API (skopeo refuses the name): 2.8.2 takes it.
      await new Pusher(reg.host).pushManifest('Team/app', img, 'v1', () => 1);
    } finally {
      await reg.stop();
    }
    const ls = await runCli(['ls', root]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /Team\/app/);
    const inspect = await runCli(['inspect', root, 'Team/app:v1', '--json']);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.ok(inspect.stdout.includes(img.digest));
    const verify = await runCli(['verify', root]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);

    const out = join(t.dir, 'out');
    const ex = await runCli(['extract', '-', root, out], { stdin: 'Team/app:v1\n' });
    assert.equal(ex.code, 0, ex.stderr);
    const served = await startRegistry({ root: out, readOnly: true });
    try {
      const m = await fetch(`http://${served.host}/v2/Team/app/manifests/v1`, { headers: { accept: img.mediaType } });
      assert.equal(m.status, 200);
      assert.equal(m.headers.get('docker-content-digest'), img.digest);
      for (const b of [img.config, ...img.layers]) assert.equal((await fetch(`http://${served.host}/v2/Team/app/blobs/${b.digest}`)).status, 200);
    } finally {
      await served.stop();
    }
    const dirs = join(t.dir, 'dirs');
    const td = await runCli(['to-dir', '--image', 'Team/app:v1', root, join(dirs, 'app')]);
    assert.equal(td.code, 0, td.stderr);
    assert.ok((await readFile(join(dirs, 'app', 'manifest.json'))).equals(img.bytes));

    for (const args of [['gc', root, '--apply'], ['gc', root, '--apply', '--delete-untagged']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    for (const b of [img, img.config, ...img.layers]) assert.ok(existsSync(layout.blobDataPath(join(root, V2), b.digest)), `gc deleted ${b.digest}`);
  } finally {
    await t.cleanup();
  }
});

test('gc: an empty or malformed tag or revision link (what a 2.8 crash leaves) keeps what it names', async () => {
  // The edge tag was pushed twice: its first image is untagged, kept only by its revision link.
  const oldEdge = FIXTURE_PUSHES.find((p) => p.repo === 'team/app' && p.tag === 'edge')!.image as Image;
  for (const [what, path, content, image] of [
    ['empty revision link', (v2: string) => layout.revisionLinkPath(v2, APP, v1.digest), '', v1],
    ['revision link with a newline', (v2: string) => layout.revisionLinkPath(v2, APP, v1.digest), `${v1.digest}\n`, v1],
    ['empty current link', (v2: string) => layout.tagCurrentLinkPath(v2, APP, parseTag('v1')), '', v1],
    ['empty revision link of an untagged manifest', (v2: string) => layout.revisionLinkPath(v2, APP, oldEdge.digest), '', oldEdge],
  ] as const) {
    await withCopy(async (root, v2) => {
      await writeFile(path(v2), content);
      for (const deleteUntagged of [false, true]) {
        const before = await snapshotTree(root);
        try {
          await gc({ root, apply: true, deleteUntagged });
        } catch (err) {
          // Refusing is certain too: nothing may have been deleted.
          assert.ok(isRegfsError(err, 'UNSAFE'), `${what}: ${String(err)}`);
          const after = await snapshotTree(root);
          for (const snap of [before, after]) snap.delete(V2);
          assert.deepEqual(after, before, what);
        }
        for (const d of digestsOf(image)) assert.ok(existsSync(layout.blobDataPath(v2, d)), `${what}, deleteUntagged ${deleteUntagged}: deleted ${d}`);
      }
    });
  }
});

test('gc: a tag whose revision link holds another digest than its path keeps what the registry serves through it, the manifest in the link', async () => {
  // The edge tag was pushed twice: its first image is untagged. Its revision link is moved to
  // a digest with no data, which a new tag names: 2.8 reads the digest in the link and serves
  // the old edge image for team/app:moved.
  const oldEdge = FIXTURE_PUSHES.find((p) => p.repo === 'team/app' && p.tag === 'edge')!.image as Image;
  const named = `sha256:${'0f'.repeat(32)}` as Digest;
  for (const deleteUntagged of [false, true]) {
    await withCopy(async (root, v2, scratch) => {
      await rm(dirname(layout.revisionLinkPath(v2, APP, oldEdge.digest)), { recursive: true });
      const link = layout.revisionLinkPath(v2, APP, named);
      await mkdir(dirname(link), { recursive: true });
      await writeFile(link, oldEdge.digest);
      const current = layout.tagCurrentLinkPath(v2, APP, parseTag('moved'));
      await mkdir(dirname(current), { recursive: true });
      await writeFile(current, named);
      const served = [{ name: 'team/app:moved', digest: oldEdge.digest }];
      const before = await startRegistry({ root, readOnly: true });
      try {
        await assertServing(before.host, served, [], join(scratch, 'before'));
      } finally {
        await before.stop();
      }
      const r = await runCli(['gc', root, '--apply', ...(deleteUntagged ? ['--delete-untagged'] : [])]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      for (const d of digestsOf(oldEdge)) assert.ok(existsSync(layout.blobDataPath(v2, d)), `deleteUntagged ${deleteUntagged}: deleted ${d}`);
      const after = await startRegistry({ root, readOnly: true });
      try {
        await assertServing(after.host, served, [], join(scratch, 'after'));
      } finally {
        await after.stop();
      }
    });
  }
});

test('a repository stored under a name with a :port: 2.8.2 answers 500 for it; verify says NAME_INVALID, extract and inspect refuse it, gc refuses --apply', async () => {
  await withCopy(async (root, v2, scratch) => {
    const port = join(v2, 'repositories', 'localhost:5000', 'app');
    await cp(join(v2, 'repositories', 'team', 'app'), port, { recursive: true });
    // The premise, from the registry: its storage driver refuses a path with a colon.
    const reg = await startRegistry({ root, readOnly: true });
    try {
      for (const path of ['manifests/v1', 'tags/list']) {
        const r = await fetch(`http://${reg.host}/v2/localhost:5000/app/${path}`, { headers: { accept: v1.mediaType } });
        await r.arrayBuffer();
        assert.equal(r.status, 500, path);
      }
    } finally {
      await reg.stop();
    }
    const v = await runCli(['verify', root, '--fast', '--json']);
    assert.equal(v.code, 4, v.stdout + v.stderr);
    const findings = (JSON.parse(v.stdout) as { findings: Array<{ code: string; path: string }> }).findings;
    assert.ok(findings.some((f) => f.code === 'NAME_INVALID' && f.path === port), JSON.stringify(findings));
    const out = join(scratch, 'out');
    const ex = await runCli(['extract', '-', root, out], { stdin: 'localhost:5000/app:v1\n' });
    assert.equal(ex.code, 1, ex.stdout + ex.stderr);
    assert.match(ex.stderr, /localhost:5000\/app.*:port.*\[NAME_INVALID\]/);
    assert.ok(!existsSync(out), 'nothing written');
    const inspect = await runCli(['inspect', root, 'localhost:5000/app:v1']);
    assert.equal(inspect.code, 1, inspect.stdout + inspect.stderr);
    assert.match(inspect.stderr, /\[NAME_INVALID\]/);
    const g = await runCli(['gc', root, '--apply']);
    assert.equal(g.code, 1, g.stdout + g.stderr);
    assert.match(g.stderr, /\[UNSAFE\]/);
    // ls lists it, as the registry's catalog does, each tag with the error; the rest as before.
    const ls = await runCli(['ls', root, '--json']);
    assert.equal(ls.code, 0, ls.stderr);
    const repos = (JSON.parse(ls.stdout) as { repositories: Array<{ name: string; tags: Array<{ tag: string; digest?: string; error?: { code: string } }> }> }).repositories;
    const listed = repos.find((r) => r.name === 'localhost:5000/app')!;
    assert.ok(listed.tags.length > 0 && listed.tags.every((t) => t.error?.code === 'NAME_INVALID'), JSON.stringify(listed));
    assert.equal(repos.find((r) => r.name === 'team/app')!.tags.find((t) => t.tag === 'v1')!.digest, v1.digest);
  });
});

test('gc: a repository directory whose name cannot be parsed makes --apply refuse (UNSAFE), as the registry refuses', async () => {
  await withCopy(async (root, v2) => {
    // team/app's storage under a name neither regfs nor the registry can parse; the blobs only it names.
    const bad = join(layout.repositoriesDir(v2), 'team', 'App_');
    await rename(layout.repoDir(v2, APP), bad);
    await assert.rejects(registryGarbageCollectDryRun(root), /failed/);
    const before = await snapshotTree(root);
    await assert.rejects(gc({ root, apply: true }), (e) => isRegfsError(e, 'UNSAFE') && e.problems.some((p) => p.code === 'NAME_INVALID' && p.path === bad));
    const after = await snapshotTree(root);
    for (const snap of [before, after]) snap.delete(V2);
    assert.deepEqual(after, before);
  });
});

/** Damaged trees on which the registry's garbage collector runs (it stops on others). */
const DAMAGED: Array<[string, (v2: string, scratch: string) => Promise<void>]> = [
  ['undamaged', async () => undefined],
  ['a tag whose manifest has no revision link', (v2) => rm(dirname(layout.revisionLinkPath(v2, APP, v1.digest)), { recursive: true })],
  ['a revision whose manifest data is missing', (v2) => rm(layout.blobDir(v2, v2img.digest), { recursive: true })],
  [
    'an index child without a revision link',
    async (v2) => {
      const tool = currentPush('multiarch/tool', '1.0').image as Index;
      const child = manifestsOf(tool)[1]!;
      await rm(dirname(layout.revisionLinkPath(v2, parseRepoName('multiarch/tool'), child.digest as Digest)), { recursive: true });
    },
  ],
  [
    'storage spread over several disks by symbolic links',
    async (v2, scratch) => {
      const away = async (path: string, to: string): Promise<void> => {
        await mkdir(dirname(to), { recursive: true });
        await rename(path, to);
        await symlink(to, path);
      };
      await away(layout.blobDataPath(v2, v1.layers[0]!.digest), join(scratch, 'disk1', 'data'));
      await away(dirname(layout.blobDir(v2, v1.config.digest)), join(scratch, 'disk2', 'fan'));
      await away(layout.repoDir(v2, parseRepoName('library/busybox')), join(scratch, 'disk3', 'busybox'));
      await away(dirname(layout.revisionLinkPath(v2, APP, v2img.digest)), join(scratch, 'disk4', 'rev'));
    },
  ],
  [
    // The registry lists every directory under tags/ as a tag and keeps what its current/link
    // names, whatever the name (regfs's verify says TAG_INVALID).
    'tag directories whose names are no tags (-v2, 129 characters)',
    async (v2) => {
      const tags = layout.tagsDir(v2, APP);
      await rename(join(tags, 'v2'), join(tags, '-v2'));
      await rename(join(tags, 'v1'), join(tags, 'v'.repeat(129)));
    },
  ],
  [
    'a repository with upper case in its first component',
    async (v2) => {
      await mkdir(join(layout.repositoriesDir(v2), 'Team'));
      await cp(layout.repoDir(v2, APP), join(layout.repositoriesDir(v2), 'Team', 'app'), { recursive: true });
      await rm(layout.repoDir(v2, APP), { recursive: true });
    },
  ],
];

test('gc on damaged trees never deletes a blob docker-registry garbage-collect keeps, with and without --delete-untagged', async () => {
  for (const [name, damage] of DAMAGED) {
    await withCopy(async (root, v2, scratch) => {
      await damage(v2, scratch);
      for (const deleteUntagged of [false, true]) {
        const theirs = new Set((await registryGarbageCollectDryRun(root, { deleteUntagged })).blobsEligible);
        const ours = await gc({ root, deleteUntagged });
        // A revision whose data is missing references what no one knows: --apply refuses.
        const refused = name === 'a revision whose manifest data is missing' ? ['BLOB_UNKNOWN'] : [];
        assert.deepEqual(ours.problems.map((p) => p.code), refused, `${name}: ${JSON.stringify(ours.problems)}`);
        const extra = ours.blobs.filter((b) => !theirs.has(b.digest));
        assert.deepEqual(extra, [], `${name}, deleteUntagged ${deleteUntagged}: regfs would delete what the registry keeps`);
      }
    });
  }
});

test('gc --delete-untagged refuses (UNSAFE) when a file stands where a tag directory should be: the registry lists it as a tag, and its garbage-collect stops there', async () => {
  await withCopy(async (root, v2) => {
    const tag = layout.tagDir(v2, APP, parseTag('v1'));
    await rm(tag, { recursive: true });
    await writeFile(tag, 'junk');
    await assert.rejects(registryGarbageCollectDryRun(root, { deleteUntagged: true }), /not a directory/);
    const before = await snapshotTree(root);
    await assert.rejects(gc({ root, deleteUntagged: true, apply: true }), (e) => isRegfsError(e, 'UNSAFE') && e.problems.some((p) => p.code === 'LINK_INVALID' && p.path === tag));
    const after = await snapshotTree(root);
    // The lock came and went in docker/registry/v2: its time changed, nothing else.
    for (const snap of [before, after]) snap.delete(V2);
    assert.deepEqual(after, before, 'nothing deleted');
    // Without --delete-untagged no tag is a root (every revision is), as for the registry.
    assert.deepEqual((await gc({ root })).problems, []);
    const verify = await runCli(['verify', root, '--json']);
    assert.equal(verify.code, 4, verify.stderr);
    assert.ok((JSON.parse(verify.stdout) as { findings: Array<{ code: string; path: string }> }).findings.some((f) => f.code === 'LINK_INVALID' && f.path === tag), verify.stdout);
  });
});

test("gc: a file where a repository's _manifests, revisions, tags or _layers directory should be: gc deletes nothing the registry's collector keeps, and refuses where that collector stops", async () => {
  for (const part of ['_manifests/tags', '_manifests/revisions', '_layers', '_manifests']) {
    await withCopy(async (root, v2) => {
      const path = join(layout.repoDir(v2, APP), part);
      await rm(path, { recursive: true });
      await writeFile(path, 'junk');
      assert.ok((await verify({ root, fast: true })).findings.some((f) => f.code === 'LINK_INVALID' && f.path === path), `${part}: verify reports it`);
      for (const deleteUntagged of [false, true]) {
        const theirs = await registryGarbageCollectDryRun(root, { deleteUntagged }).catch(() => undefined);
        const ours = await gc({ root, deleteUntagged });
        const what = `${part}, deleteUntagged ${deleteUntagged}`;
        if (theirs === undefined) {
          assert.ok(ours.problems.some((p) => p.path === path), `${what}: the registry's collector stops, so gc --apply must refuse: ${JSON.stringify(ours.problems)}`);
        } else {
          const eligible = new Set(theirs.blobsEligible);
          assert.deepEqual(ours.blobs.filter((b) => !eligible.has(b.digest)), [], `${what}: regfs would delete what the registry keeps`);
        }
      }
    });
  }
});

test('rm of a manifest refuses (UNSAFE) when an index or a tag of the repository cannot be read: either may name it', async () => {
  await withCopy(async (root, v2) => {
    const toolRepo = parseRepoName('multiarch/tool');
    const tool = currentPush('multiarch/tool', '1.0').image as Index;
    const child = manifestsOf(tool)[1]!;
    // The index naming the child cannot be read: whether it names the child is unknown.
    const indexData = layout.blobDataPath(v2, tool.digest as Digest);
    await writeFile(indexData, Buffer.concat([await readFile(indexData), Buffer.from(' ')]));
    const before = await snapshotTree(root);
    await assert.rejects(regfsRm({ root, ref: `multiarch/tool@${child.digest}` }), (e) => isRegfsError(e, 'UNSAFE') && e.message.includes(indexData));
    // A tag whose current link is malformed may point at the manifest (it would dangle after).
    await writeFile(layout.tagCurrentLinkPath(v2, APP, parseTag('v2')), `${v1.digest}\n`);
    const before2 = await snapshotTree(root);
    await assert.rejects(regfsRm({ root, ref: `team/app@${v1.digest}` }), (e) => isRegfsError(e, 'UNSAFE') && e.message.includes(layout.tagCurrentLinkPath(v2, APP, parseTag('v2'))));
    const after = await snapshotTree(root);
    for (const snap of [before, before2, after]) snap.delete(V2);
    assert.deepEqual(after, before2);
    assert.ok(existsSync(layout.revisionLinkPath(v2, toolRepo, child.digest as Digest)));
    // --force deletes anyway.
    await regfsRm({ root, ref: `team/app@${v1.digest}`, force: true });
    assert.ok(!existsSync(layout.revisionLinkPath(v2, APP, v1.digest)));
  });
});

test("gc --apply leaves a directory named like a temp file (x.tmp) where regfs writes only temp files: it is someone's, with what it holds", async () => {
  await withCopy(async (root, v2) => {
    // An orphan blob (gc deletes it) with someone's directories beside its data; a blob
    // directory holding only such a directory; and one in a tag's current/ directory.
    const orphan = Buffer.from('orphan blob\n');
    const d = `sha256:${(await import('node:crypto')).createHash('sha256').update(orphan).digest('hex')}` as Digest;
    const blobDir = layout.blobDir(v2, d);
    await mkdir(blobDir, { recursive: true });
    await writeFile(join(blobDir, 'data'), orphan);
    const lone = join(dirname(dirname(blobDir)), 'ff', 'f'.repeat(64));
    const current = dirname(layout.tagCurrentLinkPath(v2, APP, parseTag('v1')));
    const theirs = [join(blobDir, 'x.tmp', 'notes'), join(blobDir, 'y.regfs-tmp', 'notes'), join(lone, 'z.tmp', 'notes'), join(current, 'w.tmp', 'notes')];
    for (const f of theirs) {
      await mkdir(dirname(f), { recursive: true });
      await writeFile(f, 'mine\n');
    }
    const r = await gc({ root, apply: true });
    assert.ok(r.blobs.some((b) => b.digest === d), 'the orphan blob is garbage');
    // gc says what it leaves that is someone's (here each planted directory), as verify does.
    for (const f of theirs) assert.ok(r.strays.includes(dirname(f)), `gc names ${dirname(f)} among what it leaves: ${JSON.stringify(r.strays)}`);
    const cli = await runCli(['gc', root, '--verbose']);
    assert.equal(cli.code, 0, cli.stderr);
    for (const f of theirs) assert.ok(cli.stdout.includes(`stray     ${dirname(f)}\n`), cli.stdout);
    assert.match(cli.stdout, /^left 4 entries that are no part of the registry layout \(someone's: regfs verify lists them\)$/m);
    assert.ok(!existsSync(join(blobDir, 'data')), 'its data is deleted');
    for (const f of theirs) assert.equal(await readFile(f, 'utf8'), 'mine\n', `${f} stays`);
    // verify names each of them: gc left them, and they are no part of the layout.
    const { findings } = await verify({ root });
    for (const f of theirs) assert.ok(findings.some((x) => x.path === dirname(f)), `verify names ${dirname(f)}: ${JSON.stringify(findings.map((x) => x.path))}`);
  });
});

test('gc --apply refuses (UNSAFE) when a manifest a tag reaches has no blob data (a fan-out directory on a disk not mounted): what it references is unknown, nothing is deleted', async () => {
  for (const dele of [false, true]) {
    await withCopy(async (root, v2) => {
      // team/app:v1's manifest data gone (its directory's fan-out on a disk not mounted).
      await rm(layout.blobDataPath(v2, v1.digest));
      const before = await snapshotTree(root);
      await assert.rejects(gc({ root, apply: true, deleteUntagged: dele }), (err) => {
        assert.ok(isRegfsError(err, 'UNSAFE'), String(err));
        assert.ok(err.problems.some((p) => p.code === 'BLOB_UNKNOWN' && p.path === layout.blobDataPath(v2, v1.digest)), JSON.stringify(err.problems.map((p) => [p.code, p.path])));
        return true;
      });
      const after = await snapshotTree(root);
      for (const snap of [before, after]) snap.delete(V2);
      assert.deepEqual(after, before, `deleteUntagged ${dele}: nothing deleted`);
      for (const d of digestsOf(v1).slice(1)) assert.ok(existsSync(layout.blobDataPath(v2, d)), `v1's ${d} stays`);
    });
  }
});
