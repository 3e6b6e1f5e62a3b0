/** verify finds each kind of damage planted in a copy of the registry-written fixture. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, rm, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { verify, type Finding } from '../src/ops/verify.js';
import { parseRepoName, parseTag } from '../src/reference.js';
import * as layout from '../src/registry/layout.js';
import { LOCK_FILE } from '../src/fs/lock.js';
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
    // Blob data: bytes altered (same size), truncated, empty, a symlink.
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
      await writeFile(join(t.dir, 'outside'), await readFile(linked));
      await unlink(linked);
      await symlink(join(t.dir, 'outside'), linked);
    });
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
    assert.match(cli.stdout, /\/evil\\nLINK_INVALID  forged finding" is not a valid tag name$/m);
    assert.match(cli.stdout, /\/x\\u001b\[2J\\u001b\[H" is not a valid tag name$/m);
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
