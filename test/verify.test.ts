/** verify finds each kind of damage planted in a copy of the registry-written fixture. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, rm, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { verify, type Finding } from '../src/ops/verify.js';
import { parseRepoName, parseTag, type RepoName } from '../src/reference.js';
import type { Digest } from '../src/digest.js';
import { RegistryReader } from '../src/registry/read.js';
import { writeStore } from '../scripts/bench/store.js';
import * as layout from '../src/registry/layout.js';
import { acquireLock, LOCK_FILE } from '../src/fs/lock.js';
import { checkJsonDocument } from '../scripts/lib/json-schemas.js';
import { manifestsOf, type Image } from '../scripts/lib/images.js';
import { runCli } from './helpers/cli.js';
import { FIXTURE_ROOT, currentPush } from './helpers/fixture.js';
import { copyTree, snapshotTree, tempDir } from './helpers/tree.js';

const V2 = 'docker/registry/v2';

async function replace(path: string, data: Buffer | string): Promise<void> {
  await unlink(path);
  await writeFile(path, data);
}

test('verify: the registry-written fixture is clean, and verify changes nothing', async () => {
  const before = await snapshotTree(FIXTURE_ROOT);
  const r = await verify({ root: FIXTURE_ROOT });
  assert.deepEqual(r.findings, []);
  assert.equal(r.counts.repositories, 8);
  assert.equal(r.counts.blobs, 52);
  assert.ok(r.counts.bytesHashed > 0);
  assert.deepEqual(await snapshotTree(FIXTURE_ROOT), before);
});

test('verify: every kind of damage, each with its path and code, past every bad entry', async () => {
  const t = await tempDir();
  try {
    const root = join(t.dir, 'r');
    await copyTree(FIXTURE_ROOT, root);
    const v2 = join(root, V2);
    const app = parseRepoName('team/app');
    const v1 = currentPush('team/app', 'v1').image as Image;
    const v2img = currentPush('team/app', 'v2').image as Image;
    const worker = parseRepoName('team/app/worker');
    const w10 = currentPush('team/app/worker', '1.0').image as Image;
    const tool = parseRepoName('multiarch/tool');
    const list = currentPush('multiarch/tool', '1.0').image;
    const armChild = manifestsOf(list)[2]!;
    const busybox = currentPush('library/busybox', '1.36').image as Image;
    const alpine = parseRepoName('team/platform/base/alpine');
    const a319 = currentPush('team/platform/base/alpine', '3.19').image as Image;
    const nomt = currentPush('tools/nomediatype', '1.0').image as Image;
    const expect: Array<[Finding['code'], string]> = [];
    const plant = async (code: Finding['code'], path: string, damage: () => Promise<unknown>): Promise<void> => {
      await damage();
      expect.push([code, path]);
    };

    // Link syntax.
    const l1 = layout.layerLinkPath(v2, app, v1.config.digest);
    await plant('LINK_INVALID', l1, () => writeFile(l1, `${v1.config.digest}\n`));
    const l2 = layout.revisionLinkPath(v2, worker, w10.digest);
    await plant('LINK_INVALID', l2, () => writeFile(l2, ''));
    const l3 = layout.tagCurrentLinkPath(v2, alpine, parseTag('latest'));
    await plant('LINK_INVALID', l3, () => writeFile(l3, 'garbage'));
    // A link whose blob is gone (and the manifest that references it).
    const gone = busybox.layers[0]!.digest;
    await plant('LINK_DANGLING', layout.layerLinkPath(v2, parseRepoName('library/busybox'), gone), () => rm(layout.blobDir(v2, gone), { recursive: true }));
    // The layer is shared: every repository that links it, and every manifest that needs it, is reported.
    for (const repo of ['library/busybox', 'mirror.example.com/library/busybox', 'tools/nomediatype']) {
      const m = repo === 'tools/nomediatype' ? nomt : busybox;
      if (repo !== 'library/busybox') expect.push(['LINK_DANGLING', layout.layerLinkPath(v2, parseRepoName(repo), gone)]);
      expect.push(['BLOB_UNKNOWN', layout.revisionLinkPath(v2, parseRepoName(repo), m.digest)]);
    }
    // A tag whose revision link is missing; a tag without current/link.
    const t1 = layout.tagCurrentLinkPath(v2, app, parseTag('v2'));
    await plant('TAG_DANGLING', t1, () => rm(join(layout.revisionLinkPath(v2, app, v2img.digest), '..'), { recursive: true }));
    const t2 = layout.tagDir(v2, alpine, parseTag('3.19'));
    await plant('TAG_DANGLING', t2, () => rm(join(t2, 'current'), { recursive: true }));
    // An index child whose manifest data is gone.
    await plant('CHILD_MISSING', layout.revisionLinkPath(v2, tool, list.digest), () => rm(layout.blobDir(v2, armChild.digest), { recursive: true }));
    expect.push(['LINK_DANGLING', layout.revisionLinkPath(v2, tool, armChild.digest)]);
    // A layer without its _layers link in the repository.
    await plant('LAYER_UNLINKED', layout.revisionLinkPath(v2, alpine, a319.digest), () => rm(join(layout.layerLinkPath(v2, alpine, a319.layers[0]!.digest), '..'), { recursive: true }));
    // Blob data: bytes altered (same size), truncated, empty, a symlink to a FIFO (a symlink
    // to a regular file is served by the registry, and is fine).
    const flipped = layout.blobDataPath(v2, nomt.layers[1]!.digest);
    await plant('DIGEST_MISMATCH', flipped, async () => {
      const b = await readFile(flipped);
      b[b.length - 10] = b[b.length - 10]! ^ 1;
      await replace(flipped, b);
    });
    const a320 = currentPush('team/platform/base/alpine', '3.20').image as Image;
    const config = layout.blobDataPath(v2, a320.config.digest);
    await plant('DIGEST_MISMATCH', config, async () => replace(config, (await readFile(config, 'utf8')).replace('3.20', '3.2X')));
    const short = layout.blobDataPath(v2, v1.layers[1]!.digest);
    await plant('SIZE_INVALID', short, async () => replace(short, (await readFile(short)).subarray(0, 100)));
    expect.push(['DIGEST_MISMATCH', short]);
    const empty = layout.blobDataPath(v2, v2img.layers[1]!.digest);
    await plant('EMPTY_FILE', empty, () => replace(empty, ''));
    const linked = layout.blobDataPath(v2, w10.layers[1]!.digest);
    await plant('BLOB_INVALID', linked, async () => {
      spawnSync('mkfifo', [join(t.dir, 'outside')]);
      await unlink(linked);
      await symlink(join(t.dir, 'outside'), linked);
    });
    // Stray entries under blobs/ that no blob is: a file, a directory of no digest algorithm,
    // an entry beside a blob's data. The registry ignores them; gc leaves them.
    const strayFile = join(v2, 'blobs', 'stray');
    await plant('BLOB_INVALID', strayFile, () => writeFile(strayFile, 'hi'));
    const noAlg = join(v2, 'blobs', 'md5');
    await plant('BLOB_INVALID', noAlg, () => mkdir(noAlg));
    const beside = join(layout.blobDir(v2, a320.layers[0]!.digest), 'extra');
    await plant('BLOB_INVALID', beside, () => writeFile(beside, 'x'));
    const besideLink = join(layout.layerLinkPath(v2, alpine, a320.layers[0]!.digest), '..', 'notes');
    await plant('LINK_INVALID', besideLink, () => writeFile(besideLink, 'x'));
    // Leftovers: temp files of interrupted writes (regfs's and distribution v3.1's), trash, a stale upload, a stale lock.
    const tmp1 = join(layout.blobDir(v2, v1.config.digest), '.data.123.abc.regfs-tmp');
    await plant('TEMP_FILE', tmp1, () => writeFile(tmp1, 'x'));
    const tmp2 = join(layout.revisionLinkPath(v2, app, v1.digest), '..', 'link.0b3c7d2e-1111-2222-3333-444455556666.tmp');
    await plant('TEMP_FILE', tmp2, () => writeFile(tmp2, 'x'));
    const trash = join(layout.repoDir(v2, app), `${layout.TRASH_PREFIX}9-dead`);
    await plant('TEMP_FILE', trash, () => mkdir(trash));
    const upload = join(layout.uploadsDir(v2, app), '5b0b2b7e-1111-2222-3333-444455556666');
    await plant('STALE_UPLOAD', upload, async () => {
      await mkdir(upload, { recursive: true });
      await writeFile(join(upload, 'startedat'), '2024-01-01T00:00:00Z');
      await writeFile(join(upload, 'data'), 'partial');
    });
    const lock = join(v2, LOCK_FILE);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    await plant('STALE_LOCK', lock, () => writeFile(lock, JSON.stringify({ pid: dead, host: hostname(), command: 'extract', started: '2026-01-01T00:00:00Z' })));

    const before = await snapshotTree(root);
    const r = await verify({ root });
    const found = r.findings.map((f) => `${f.code} ${f.path}`);
    for (const [code, path] of expect) assert.ok(found.includes(`${code} ${path}`), `missing ${code} ${path}\nfound:\n${found.join('\n')}`);
    assert.equal(r.findings.length, expect.length, `unexpected findings:\n${found.filter((f) => !expect.some(([c, p]) => f === `${c} ${p}`)).join('\n')}`);
    assert.deepEqual(await snapshotTree(root), before, 'verify changes nothing');

    // --fast: sizes, not hashes. The altered bytes pass; the truncated file does not.
    const fast = await verify({ root, fast: true });
    assert.ok(!fast.findings.some((f) => f.code === 'DIGEST_MISMATCH'));
    assert.ok(fast.findings.some((f) => f.code === 'SIZE_INVALID' && f.path === short));
    assert.equal(fast.counts.bytesHashed, 0);

    // --list: only what the listed images need.
    const listFile = join(t.dir, 'l.list');
    await writeFile(listFile, 'team/platform/base/alpine:3.20\ntools/nomediatype:1.0\n');
    const listed = await verify({ root, list: listFile });
    assert.deepEqual(
      listed.findings.map((f) => `${f.code} ${f.path}`).sort(),
      [`DIGEST_MISMATCH ${config}`, `STALE_LOCK ${lock}`, `BLOB_UNKNOWN ${layout.blobDataPath(v2, gone)}`].sort(),
    );
    await writeFile(listFile, 'team/platform/base/alpine:3.19\n');
    assert.deepEqual((await verify({ root, list: listFile })).findings.map((f) => f.code).sort(), ['STALE_LOCK', 'TAG_UNKNOWN']);

    // The CLI: one line a finding, exit 4; JSON.
    const cli = await runCli(['verify', root]);
    assert.equal(cli.code, 4);
    assert.match(cli.stdout, /^LINK_INVALID  /m);
    assert.match(cli.stdout, new RegExp(`${expect.length} problems`));
    const json = JSON.parse((await runCli(['verify', root, '--json', '--fast'])).stdout) as { ok: boolean; findings: Finding[] };
    assert.equal(json.ok, false);
    assert.equal((await runCli(['verify', FIXTURE_ROOT])).code, 0);
    await truncate(short, 0);
  } finally {
    await t.cleanup();
  }
});

test('verify: names in the tree with a newline, an escape sequence or a great length give one bounded, escaped line each', async () => {
  const t = await tempDir();
  try {
    const root = join(t.dir, 'r');
    await copyTree(FIXTURE_ROOT, root);
    const v2 = join(root, V2);
    const tags = layout.tagsDir(v2, parseRepoName('team/app'));
    // A tag directory whose name would forge a finding of its own, and one that would clear the screen.
    await mkdir(join(tags, 'evil\nLINK_INVALID  forged finding'));
    await mkdir(join(tags, 'x\x1b[2J\x1b[H'));
    // A repository directory nested five names of 250 characters deep: its path is longer than a message quotes.
    const deep = join(v2, 'repositories', ...Array.from({ length: 5 }, (_, i) => String(i).repeat(250)));
    await mkdir(join(deep, '_manifests'), { recursive: true });

    const cli = await runCli(['verify', root, '--fast']);
    assert.equal(cli.code, 4);
    const lines = cli.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 4, cli.stdout);
    assert.deepEqual(lines.slice(0, 3).map((l) => l.split('  ')[0]).sort(), ['NAME_INVALID', 'TAG_INVALID', 'TAG_INVALID']);
    assert.match(cli.stdout, /\/evil\\nLINK_INVALID  forged finding" is not a valid tag name; the registry lists it as a tag all the same$/m);
    assert.match(cli.stdout, /\/x\\u001b\[2J\\u001b\[H" is not a valid tag name; the registry lists it as a tag all the same$/m);
    assert.doesNotMatch(cli.stdout, /\x1b/);
    const long = lines.find((l) => l.startsWith('NAME_INVALID'))!;
    assert.match(long, /…" \(\d,\d{3} characters\) holds _manifests/);
    assert.ok(long.length < 1200, `${long.length} characters`);
    // JSON keeps the path whole (JSON.stringify escapes it).
    const json = JSON.parse((await runCli(['verify', root, '--fast', '--json'])).stdout) as { findings: Finding[] };
    assert.ok(json.findings.some((f) => f.path === deep));
    assert.ok(json.findings.some((f) => f.path === join(tags, 'evil\nLINK_INVALID  forged finding')));
  } finally {
    await t.cleanup();
  }
});

test('verify --target v3: each thing a v3 registry would not serve, on a tree built to hold it; a clean tree gives nothing', async () => {
  const t = await tempDir();
  try {
    // A clean store (OCI and Docker images, indexes), and the registry-written fixture, which holds a schema1 image.
    const clean = join(t.dir, 'clean');
    await writeStore(clean, { repositories: 2, tagsPerRepo: 3, baseLayers: 2, indexEvery: 1 });
    assert.deepEqual((await verify({ root: clean, target: 'v3' })).findings, []);
    const fixture = await verify({ root: FIXTURE_ROOT, target: 'v3' });
    const legacy = parseRepoName('legacy/app');
    const schema1 = (await (await RegistryReader.open(FIXTURE_ROOT)).tagDigest(legacy, parseTag('1.0')))!;
    assert.deepEqual(
      fixture.findings.map((f) => `${f.code} ${f.path}`),
      [`V3_SCHEMA1 ${layout.revisionLinkPath(join(FIXTURE_ROOT, V2), legacy, schema1)}`],
    );
    assert.deepEqual((await verify({ root: FIXTURE_ROOT })).findings, [], 'the 2.x checks find nothing there');

    const root = join(t.dir, 'r');
    await copyTree(clean, root);
    const v2 = join(root, V2);
    const reader = await RegistryReader.open(root);
    const app0 = parseRepoName('team0/svc0/app0');
    const app1 = parseRepoName('team1/svc0/app1');
    const move = async (repo: RepoName, d: Digest): Promise<void> => {
      await rm(join(layout.revisionLinkPath(v2, repo, d), '..'), { recursive: true });
      await mkdir(join(layout.layerLinkPath(v2, repo, d), '..'), { recursive: true });
      await writeFile(layout.layerLinkPath(v2, repo, d), d);
    };
    // An index child and a tagged manifest linked only in _layers (2.x's fallback finds them).
    const index0 = await reader.manifest((await reader.tagDigest(app0, parseTag('multi')))!);
    const child = index0.manifests[0]!.digest;
    await move(app0, child);
    const v1 = (await reader.tagDigest(app0, parseTag('v1')))!;
    await move(app0, v1);
    // A sparse index: one child's manifest data gone.
    const index1 = await reader.manifest((await reader.tagDigest(app1, parseTag('multi')))!);
    await rm(layout.blobDir(v2, index1.manifests[1]!.digest), { recursive: true });
    // A revision link with a newline, and a leftover of v3.1's atomic writes.
    const v2tag = (await reader.tagDigest(app1, parseTag('v2')))!;
    await replace(layout.revisionLinkPath(v2, app1, v2tag), `${v2tag}\n`);
    const tmp = join(layout.revisionLinkPath(v2, app1, v2tag), '..', 'link.0192f0a4-7d3c-7000-8000-000000000000.tmp');
    await writeFile(tmp, v2tag);

    const r = await verify({ root, target: 'v3' });
    const v3 = r.findings.filter((f) => f.code.startsWith('V3_')).map((f) => `${f.code} ${f.digest}`);
    assert.deepEqual(v3.sort(), [`V3_LAYERS_FALLBACK ${child}`, `V3_LAYERS_FALLBACK ${v1}`, `V3_SPARSE_INDEX ${index1.digest}`].sort());
    const codes = new Set(r.findings.map((f) => f.code));
    for (const c of ['LINK_INVALID', 'TEMP_FILE', 'CHILD_MISSING']) assert.ok(codes.has(c as Finding['code']), `${c} with --target v3`);
    const v2only = await verify({ root });
    assert.ok(!v2only.findings.some((f) => f.code.startsWith('V3_')), 'no v3 finding without --target v3');
    assert.ok(!v2only.findings.some((f) => f.digest === child), '2.x serves the child through _layers');

    // The CLI: --target v3, one line per finding; a target it does not know is a usage error.
    const cli = await runCli(['verify', root, '--target', 'v3', '--fast']);
    assert.equal(cli.code, 4);
    assert.match(cli.stdout, /^V3_SPARSE_INDEX  index sha256:[0-9a-f]{64} in team1\/svc0\/app1 is sparse: 1 of its 2 children are absent/m);
    assert.equal((await runCli(['verify', root, '--target', 'v4'])).code, 2);
    // --list: what the listed images need, for v3.
    const list = join(t.dir, 'l.list');
    await writeFile(list, 'team0/svc0/app0:multi\n');
    assert.deepEqual((await verify({ root, list, target: 'v3' })).findings.map((f) => `${f.code} ${f.digest}`), [`V3_LAYERS_FALLBACK ${child}`]);
    await writeFile(list, 'legacy/app:1.0\n');
    assert.deepEqual((await verify({ root: FIXTURE_ROOT, list, target: 'v3' })).findings.map((f) => f.code), ['V3_SCHEMA1']);
  } finally {
    await t.cleanup();
  }
});

test('verify --list: counts what the listed images hold, each repository, manifest, link and blob once', async () => {
  const t = await tempDir();
  try {
    // Two tags of one image, and an image of another repository sharing nothing with it.
    const list = join(t.dir, 'l.list');
    await writeFile(list, 'library/busybox:1.36\nlibrary/busybox:latest\nteam/app:v1\n');
    const r = await verify({ root: FIXTURE_ROOT, list, fast: true });
    assert.deepEqual(r.findings, []);
    const busybox = JSON.parse(await readFile(join(FIXTURE_ROOT, 'docker/registry/v2/blobs/sha256/32/3271c4fec4a89f06c12edeadbb942bb5aba4b9d57b3671bb5a1f6d149778b82c/data'), 'utf8')) as { layers: unknown[] };
    const app = await RegistryReader.open(FIXTURE_ROOT);
    const appManifest = await app.manifest((await app.tagDigest(parseRepoName('team/app'), parseTag('v1')))!);
    const appBlobs = 1 + appManifest.layers.length;
    assert.deepEqual(
      { repositories: r.counts.repositories, tags: r.counts.tags, manifests: r.counts.manifests, links: r.counts.links, blobs: r.counts.blobs },
      { repositories: 2, tags: 3, manifests: 2, links: 1 + busybox.layers.length + appBlobs, blobs: 1 + busybox.layers.length + appBlobs },
    );
  } finally {
    await t.cleanup();
  }
});

test('verify and gc: --upload-age must be a number of hours, 0 or more (abc, -1, Infinity are USAGE, not a silent "no stale uploads")', async () => {
  for (const cmd of ['verify', 'gc']) {
    for (const age of ['abc', '-1', 'Infinity']) {
      const r = await runCli([cmd, FIXTURE_ROOT, `--upload-age=${age}`, '--json']);
      assert.equal(r.code, 2, `${cmd} --upload-age ${age}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /--upload-age .*\[USAGE\]/);
    }
    assert.equal((await runCli([cmd, FIXTURE_ROOT, '--upload-age', '0'])).code, 0, `${cmd} --upload-age 0`);
  }
});

test('verify --json while a regfs run holds the lock: liveLock is the owner as the schema gives it (no token), and a warning says so', async () => {
  const t = await tempDir('regfs-verify-');
  try {
    const root = join(t.dir, 'r');
    await copyTree(FIXTURE_ROOT, root);
    const held = await acquireLock(join(root, 'docker', 'registry', 'v2', LOCK_FILE), 'extract');
    try {
      const r = await runCli(['verify', root, '--fast', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const doc = checkJsonDocument('verify', r.stdout, 0) as { liveLock: Record<string, unknown> };
      assert.equal(doc.liveLock['pid'], process.pid);
      assert.equal(doc.liveLock['command'], 'extract');
      assert.ok(!('token' in doc.liveLock), 'the lock token is not printed');
      assert.match(r.stderr, /regfs extract \(pid \d+ on .*\) is writing this storage now/);
    } finally {
      await held.release();
    }
  } finally {
    await t.cleanup();
  }
});
