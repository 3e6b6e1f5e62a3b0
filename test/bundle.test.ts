/**
 * `bundle`: the listed images as one tar, judged by the real tools. skopeo 1.9.3 reads the
 * bundle as `oci-archive:` and pushes every listed image (an index with children, a single
 * manifest, a digest-only line, a referrer) into a real docker-registry 2.8.2 with its digest
 * unchanged. The bytes are deterministic; `--have` leaves out exactly the blobs an inventory
 * lists; volumes concatenated are the whole; bad inventories, hostile outputs, pipes and a
 * second run at once are refused or handled.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync } from 'node:fs';
import { mkdir, readdir, readFile, symlink, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../scripts/lib/registry-server.js';
import { skopeoCopy, skopeoManifestDigestOf } from '../scripts/lib/skopeo.js';
import { blobsOf, makeArtifact, makeImage, makeIndex, makeLayer, manifestsOf, type Manifest } from '../scripts/lib/images.js';
import { writeStorage, type StoragePush } from '../scripts/lib/write-storage.js';
import { REGFS_BIN, runCli } from './helpers/cli.js';
import { snapshotTree, tempDir, writeListFile } from './helpers/tree.js';
import { deadPid, MY_TAG, ownerTag, PID_NAMESPACE } from './helpers/owner.js';

const MiB = 1 << 20;

/** Release 1: a shared base layer, an OCI index of two platforms, a single image, one pushed by digest only, a signature of the single image. */
const base = makeLayer('base', 3 * MiB);
const amd = makeImage({ format: 'oci', layers: [base, makeLayer('multi-amd64', 2 * MiB)], platform: { os: 'linux', architecture: 'amd64' } });
const arm = makeImage({ format: 'oci', layers: [base, makeLayer('multi-arm64', 2 * MiB)], platform: { os: 'linux', architecture: 'arm64' } });
const multi = makeIndex({ format: 'oci', children: [amd, arm] });
const app = makeImage({ format: 'oci', layers: [base, makeLayer('app-1', 2 * MiB)] });
const pinned = makeImage({ format: 'oci', layers: [makeLayer('pinned', MiB)] });
const sig = makeArtifact({ subject: app, artifactType: 'application/vnd.example.signature', layerMediaType: 'application/vnd.example.sig.v1', payload: 'signed app 1' });
/** Release 2: the app again with a new top layer, and a new image on the same base. */
const app2 = makeImage({ format: 'oci', layers: [base, makeLayer('app-2', 2 * MiB)] });
const tool = makeImage({ format: 'oci', layers: [base, makeLayer('tool', 2 * MiB)] });

const RELEASE1 = ['team/multi:1.0', 'team/app:1', `team/pinned@${pinned.digest}`];
const RELEASE2 = ['team/app:2', 'team/tool:1'];
const SIG_TAG = `team/app:sha256-${app.digest.slice(7)}.sig`;

let dir: string;
let cleanup: () => Promise<void>;
let src: string;
let list1: string;
let list2: string;

before(async () => {
  ({ dir, cleanup } = await tempDir('regfs-bundle-'));
  src = join(dir, 'src');
  const pushes: StoragePush[] = [
    { repo: 'team/multi', tag: '1.0', image: multi },
    { repo: 'team/app', tag: '1', image: app },
    { repo: 'team/pinned', image: pinned },
    { repo: 'team/app', tag: `sha256-${app.digest.slice(7)}.sig`, image: sig },
    { repo: 'team/app', tag: '2', image: app2 },
    { repo: 'team/tool', tag: '1', image: tool },
  ];
  await writeStorage(src, pushes);
  list1 = await writeListFile(dir, RELEASE1);
  list2 = await writeListFile(dir, RELEASE2);
});

after(async () => cleanup());

/** Run regfs with binary stdout. */
function runRaw(args: string[], stdin = ''): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [REGFS_BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    child.stdin.end(stdin);
  });
}

/** The tar's entries as GNU tar lists them: name and size. */
function tarList(path: string): Array<{ name: string; size: number }> {
  const r = spawnSync('tar', ['-tvf', path], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => {
      const f = l.split(/\s+/);
      return { name: f[5]!, size: Number(f[2]) };
    });
}

function tarFile(path: string, name: string): string {
  const r = spawnSync('tar', ['-xOf', path, name], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** An inventory of what the far side holds after `images`: every blob, as `regfs inventory` lists them. */
function inventoryOf(images: Manifest[], extra: string[] = []): string {
  const blobs = new Map<string, number>();
  for (const m of images) for (const b of [...manifestsOf(m), ...blobsOf(m)]) blobs.set(b.digest, b.size);
  const lines = [...blobs].sort(([a], [b]) => (a < b ? -1 : 1)).map(([d, s]) => `blob ${d} ${s}`);
  return `regfs-inventory 1\n${[...lines, ...extra].join('\n')}\n`;
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

test('bundle: skopeo reads every listed image (index, single, digest-only, referrer) from oci-archive: into docker-registry 2.8.2 with its digest', async () => {
  const out = join(dir, 'full.tar');
  const before = await snapshotTree(src);
  const r = await runCli(['bundle', list1, src, out, '--with-referrers', '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await snapshotTree(src), before, 'the source is unchanged');
  const doc = JSON.parse(r.stdout) as { plan: { size: number; blobsCarried: number; blobsAssumed: number }; inventory: null };
  assert.equal(doc.inventory, null);
  assert.equal(doc.plan.blobsAssumed, 0);
  assert.equal(lstatSync(out).size, doc.plan.size, 'the size planned is the size written');

  // The contract's order: oci-layout, regfs-bundle.json, index.json, blobs/, blobs/sha256/, then the blobs, image by image, manifests first.
  const entries = tarList(out);
  assert.deepEqual(entries.slice(0, 5).map((e) => e.name), ['oci-layout', 'regfs-bundle.json', 'index.json', 'blobs/', 'blobs/sha256/']);
  const want = [...new Set([multi, amd, arm, ...blobsOf(multi), app, ...blobsOf(app), pinned, ...blobsOf(pinned), sig, ...blobsOf(sig)].map((b) => b.digest))];
  assert.deepEqual(entries.slice(5).map((e) => `sha256:${e.name.slice('blobs/sha256/'.length)}`), want);
  assert.equal(tarFile(out, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const meta = JSON.parse(tarFile(out, 'regfs-bundle.json')) as unknown;
  const carriedBytes = entries.slice(5).reduce((n, e) => n + e.size, 0);
  assert.deepEqual(meta, { regfsBundle: 1, inventory: null, carried: { blobs: want.length, bytes: carriedBytes }, assumed: [] });
  assert.equal(doc.plan.blobsCarried, want.length);
  const index = JSON.parse(tarFile(out, 'index.json')) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> };
  assert.deepEqual(
    index.manifests.map((e) => [e.annotations['org.opencontainers.image.ref.name'], e.digest]),
    [
      ['team/multi:1.0', multi.digest],
      ['team/app:1', app.digest],
      [`team/pinned@${pinned.digest}`, pinned.digest],
      [SIG_TAG, sig.digest],
    ],
  );

  const root = join(dir, 'reg');
  await mkdir(root);
  const reg = await startRegistry({ root });
  try {
    for (const [ref, digest, repo] of [
      ['team/multi:1.0', multi.digest, 'team/multi:1.0'],
      ['team/app:1', app.digest, 'team/app:1'],
      [`team/pinned@${pinned.digest}`, pinned.digest, `team/pinned@${pinned.digest}`],
      [SIG_TAG, sig.digest, SIG_TAG],
    ] as const) {
      await skopeoCopy(`oci-archive:${out}:${ref}`, `docker://${reg.host}/${repo}`, { all: true });
      assert.equal(await skopeoManifestDigestOf(`docker://${reg.host}/${repo}`), digest, ref);
    }
    for (const child of [amd, arm]) assert.equal(await skopeoManifestDigestOf(`docker://${reg.host}/team/multi@${child.digest}`), child.digest, 'an index child is served by its digest');
  } finally {
    await reg.stop();
  }
});

test('bundle: the same list, source and inventory give the same bytes, to a file, to standard output (list from standard input), and as a dry run says', async () => {
  const a = join(dir, 'det-a.tar');
  const b = join(dir, 'det-b.tar');
  assert.equal((await runCli(['bundle', list1, src, a, '--with-referrers'])).code, 0);
  assert.equal((await runCli(['bundle', list1, src, b, '--with-referrers'])).code, 0);
  const bytes = await readFile(a);
  assert.ok(bytes.equals(await readFile(b)), 'two runs, the same bytes');
  const piped = await runRaw(['bundle', '-', src, '-', '--with-referrers'], `${RELEASE1.join('\n')}\n`);
  assert.equal(piped.code, 0, piped.stderr);
  assert.ok(piped.stdout.equals(bytes), 'LIST from stdin, BUNDLE to stdout: the same bytes');
  assert.match(piped.stderr, /bundled 3 images \(4 index.json entries\).* to standard output/, 'the summary goes to stderr');
  const dry = await runCli(['bundle', list1, src, join(dir, 'never.tar'), '--with-referrers', '--dry-run', '--json']);
  const plan = (JSON.parse(dry.stdout) as { plan: { size: number } }).plan;
  assert.equal(plan.size, bytes.length, 'a dry run gives the exact size');
  assert.ok(!existsSync(join(dir, 'never.tar')), 'a dry run writes nothing');
  // Usage: --json and --split with standard output.
  assert.equal((await runCli(['bundle', list1, src, '-', '--json'])).code, 2);
  assert.equal((await runCli(['bundle', list1, src, '-', '--split', '1M'])).code, 2);
  for (const bad of ['1023K', '12X', '-5', '0']) {
    const r = await runCli(['bundle', list1, src, join(dir, 'x.tar'), '--split', bad]);
    assert.equal(r.code, 2, `--split ${bad}: ${r.stderr}`);
  }
});

test('bundle --have: exactly the blobs the inventory lists are left out and recorded; the metadata is under 1% of the new bytes', async () => {
  const inv = join(dir, 'far.inv');
  // The far side after release 1; one of its blobs damaged there (another size): that one is carried.
  const damaged = blobsOf(tool).find((b) => b.digest !== base.digest)!;
  const text = inventoryOf([multi, app, pinned], ['repo team/app', `tag team/app 1 ${app.digest}`, `manifest team/app ${app.digest}`]);
  await writeFile(inv, text.replace('regfs-inventory 1\n', `regfs-inventory 1\nblob ${damaged.digest} ${damaged.size + 1}\n`));
  const out = join(dir, 'delta.tar');
  const r = await runCli(['bundle', list2, src, out, '--have', inv, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { inventory: string; plan: { size: number; bytesCarried: number; blobsAssumed: number } };
  assert.equal(doc.inventory, sha256(await readFile(inv)), 'the inventory is the sha256 of its bytes');

  const release2 = new Map([app2, tool].flatMap((m) => [...manifestsOf(m), ...blobsOf(m)]).map((b) => [b.digest, b.size] as const));
  const have = new Set([multi, app, pinned].flatMap((m) => [...manifestsOf(m), ...blobsOf(m)]).map((b) => b.digest));
  const newOnes = [...release2.keys()].filter((d) => !have.has(d));
  const assumed = [...release2.keys()].filter((d) => have.has(d)).sort();
  assert.ok(newOnes.includes(damaged.digest), 'listed with another size: carried');
  const entries = tarList(out).slice(5);
  assert.deepEqual(entries.map((e) => `sha256:${e.name.slice('blobs/sha256/'.length)}`).sort(), [...newOnes].sort(), 'exactly the blobs the far side lacks');
  const meta = JSON.parse(tarFile(out, 'regfs-bundle.json')) as { inventory: string; assumed: Array<{ digest: string; size: number }> };
  assert.equal(meta.inventory, doc.inventory);
  assert.deepEqual(meta.assumed, assumed.map((d) => ({ digest: d, size: release2.get(d)! })), 'every blob left out, sorted by digest, with its size');
  assert.equal(doc.plan.blobsAssumed, assumed.length);
  const overhead = doc.plan.size - doc.plan.bytesCarried;
  assert.ok(overhead < doc.plan.bytesCarried * 0.01, `overhead ${overhead} bytes of ${doc.plan.bytesCarried} new`);
  // The same inventory, the same bundle.
  assert.equal((await runCli(['bundle', list2, src, join(dir, 'delta2.tar'), '--have', inv])).code, 0);
  assert.ok((await readFile(out)).equals(await readFile(join(dir, 'delta2.tar'))));
});

test('bundle --split: volumes of at most SIZE, concatenated byte for byte the bundle; stale volumes of an earlier run are named, not deleted', async () => {
  const whole = join(dir, 'whole.tar');
  assert.equal((await runCli(['bundle', list1, src, whole])).code, 0);
  const stem = join(dir, 'vol', 'rel.tar');
  await mkdir(join(dir, 'vol'));
  await writeFile(`${stem}.099`, 'an earlier run');
  await writeFile(`${stem}.0001`, 'an earlier run of more than 1,000 volumes');
  const r = await runCli(['bundle', list1, src, stem, '--split', '2M', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const names = (await readdir(join(dir, 'vol'))).sort();
  const vols = names.filter((n) => n !== 'rel.tar.099' && n !== 'rel.tar.0001');
  const size = lstatSync(whole).size;
  assert.deepEqual(vols, Array.from({ length: Math.ceil(size / (2 * MiB)) }, (_, i) => `rel.tar.${String(i).padStart(3, '0')}`));
  for (const v of vols.slice(0, -1)) assert.equal(lstatSync(join(dir, 'vol', v)).size, 2 * MiB);
  const cat = Buffer.concat(await Promise.all(vols.map((v) => readFile(join(dir, 'vol', v)))));
  assert.ok(cat.equals(await readFile(whole)), 'cat BUNDLE.* is the bundle');
  assert.equal(await readFile(`${stem}.099`, 'utf8'), 'an earlier run', 'a stale volume is left');
  assert.match(r.stderr, /rel\.tar\.099 is a volume of an earlier run/);
  assert.match(r.stderr, /rel\.tar\.0001 is a volume of an earlier run/, 'another width: cat would read it too');
  assert.ok((JSON.parse(r.stdout) as { warnings: string[] }).warnings.some((w) => w.includes('rel.tar.099')));
});

test('bundle --have: a bad inventory is INVENTORY_INVALID naming the file and the line; nothing is written', async () => {
  const good = `blob ${app.digest} ${app.size}`;
  const cases: Array<[string, string, number]> = [
    ['empty', '', 1],
    ['no header', `${good}\n`, 1],
    ['version 2', 'regfs-inventory 2\n', 1],
    ['a bad digest', `regfs-inventory 1\n${good}\nblob sha256:xyz 12\n`, 3],
    ['a bad size', `regfs-inventory 1\nblob ${app.digest} -1\n`, 2],
    ['an unknown record', `regfs-inventory 1\n${good}\nlayer ${app.digest}\n`, 3],
    ['a tag outside its repo', `regfs-inventory 1\nrepo team/app\ntag team/other 1 ${app.digest}\n`, 3],
    ['CR line ends', `regfs-inventory 1\r\n${good}\r\n`, 1],
    ['no last line end', `regfs-inventory 1\n${good}`, 2],
  ];
  for (const [what, text, line] of cases) {
    const inv = join(dir, `bad-${what.replaceAll(' ', '-')}.inv`);
    await writeFile(inv, text);
    const out = join(dir, 'bad.tar');
    const r = await runCli(['bundle', list2, src, out, '--have', inv]);
    assert.equal(r.code, 1, `${what}: ${r.stderr}`);
    assert.match(r.stderr, /INVENTORY_INVALID/, what);
    assert.ok(r.stderr.includes(`inventory "${inv}", line ${line}:`), `${what}: names line ${line}: ${r.stderr}`);
    assert.ok(!existsSync(out), `${what}: nothing written`);
  }
});

test('bundle: BUNDLE a symbolic link is replaced, never followed; a directory or a path inside SRC is refused; two runs at once give one whole bundle', async () => {
  const h = join(dir, 'hostile');
  await mkdir(h);
  const target = join(h, 'target');
  await writeFile(target, 'not yours');
  await symlink(target, join(h, 'link.tar'));
  assert.equal((await runCli(['bundle', list2, src, join(h, 'link.tar')])).code, 0);
  assert.equal(await readFile(target, 'utf8'), 'not yours', 'the link target is untouched');
  assert.ok(lstatSync(join(h, 'link.tar')).isFile(), 'the link is replaced by the bundle');
  const expected = await readFile(join(h, 'link.tar'));

  await mkdir(join(h, 'adir'));
  const d = await runCli(['bundle', list2, src, join(h, 'adir')]);
  assert.equal(d.code, 1);
  assert.match(d.stderr, /OUTPUT_NOT_FILE/);
  assert.deepEqual(await readdir(join(h, 'adir')), []);

  const missing = await runCli(['bundle', list2, src, join(h, 'nodir', 'b.tar')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /its directory "[^"]*nodir" does not exist \[OUTPUT_UNWRITABLE\]/);

  const before = await snapshotTree(src);
  for (const inside of [join(src, 'b.tar'), join(src, 'docker/registry/v2/blobs/b.tar')]) {
    const r = await runCli(['bundle', list2, src, inside]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /OUTPUT_IN_SOURCE/);
  }
  await symlink(join(src, 'docker'), join(h, 'into-src'));
  assert.match((await runCli(['bundle', list2, src, join(h, 'into-src', 'b.tar')])).stderr, /OUTPUT_IN_SOURCE/);
  assert.deepEqual(await snapshotTree(src), before, 'the source is unchanged');

  // Temp files beside BUNDLE (`.<name>.<pid>-<owner>-<random>-<n>.regfs-tmp`): a dead writer's
  // of this host and PID namespace are removed, the bundle's and its volumes'. A live one's,
  // another host's or namespace's (a container sharing the directory: its pids are not ours to
  // judge), one whose owner could not read its namespace (`u...`), one without an owner, and
  // another file's are left.
  const dead = deadPid();
  const removed = [`.same.tar.${dead}-${MY_TAG}-0a1b2c3d-0.regfs-tmp`, `.same.tar.001.${dead}-${MY_TAG}-0a1b2c3d-1z.regfs-tmp`];
  const left = [
    `.same.tar.000.${process.pid}-${MY_TAG}-0a1b2c3d-0.regfs-tmp`,
    `.same.tar.${dead}-${ownerTag(hostname(), `1${PID_NAMESPACE}`)}-0a1b2c3d-0.regfs-tmp`,
    `.same.tar.${dead}-${ownerTag('elsewhere', PID_NAMESPACE)}-0a1b2c3d-0.regfs-tmp`,
    `.same.tar.${dead}-u0a1b2c3-0a1b2c3d-0.regfs-tmp`,
    `.same.tar.${dead}-0123abcd-0.regfs-tmp`,
    `.same.tarx000.${dead}-${MY_TAG}-0a1b2c3d-0.regfs-tmp`,
  ];
  for (const n of [...removed, ...left]) await writeFile(join(h, n), 'partial');
  const cleaned = await runCli(['bundle', list2, src, join(h, 'same.tar'), '--json']);
  const report = JSON.parse(cleaned.stdout) as { stats: { tempFilesRemoved: number }; warnings: string[] };
  assert.equal(report.stats.tempFilesRemoved, removed.length);
  // The three this run cannot judge (another host, another namespace, no namespace) are named: each may be as large as a bundle.
  const named = report.warnings.filter((w) => w.includes('cannot tell alive or dead'));
  assert.equal(named.length, 1, report.warnings.join('\n'));
  assert.match(named[0]!, /^3 temp files beside the bundle were left by a bundle run of another host or PID namespace/);
  for (const n of left.slice(1, 4)) assert.ok(named[0]!.includes(join(h, n)), n);
  assert.deepEqual((await readdir(h)).filter((n) => n.endsWith('.regfs-tmp')).sort(), left.sort());
  for (const n of left) await unlink(join(h, n));
  assert.equal((await runCli(['bundle', list2, src, join(h, 'x.tar'), '--have', '-'])).code, 2, '--have - is a usage error');

  const both = await Promise.all([runCli(['bundle', list2, src, join(h, 'same.tar')]), runCli(['bundle', list2, src, join(h, 'same.tar')])]);
  for (const r of both) assert.equal(r.code, 0, r.stderr);
  assert.ok((await readFile(join(h, 'same.tar'))).equals(expected), 'one whole bundle');
  assert.deepEqual((await readdir(h)).filter((n) => n.endsWith('.regfs-tmp')), [], 'no temp file left');
});

test('bundle to standard output: a reader that goes early ends the run with a clear error, no hang, no stack trace', async () => {
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [REGFS_BIN, 'bundle', list1, src, '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.stdout.once('data', () => child.stdout.destroy());
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /EPIPE.*\[IO_ERROR\]/s);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
});

test('bundle --platform: one image of an index, named as the index is; its other platforms left out', async () => {
  const out = join(dir, 'arm.tar');
  const r = await runCli(['bundle', list1, src, out, '--platform', 'linux/arm64']);
  assert.equal(r.code, 0, r.stderr);
  const index = JSON.parse(tarFile(out, 'index.json')) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> };
  assert.deepEqual(index.manifests[0], { mediaType: arm.mediaType, digest: arm.digest, size: arm.size, annotations: { 'org.opencontainers.image.ref.name': 'team/multi:1.0' } });
  const names = new Set(tarList(out).map((e) => e.name));
  assert.ok(!names.has(`blobs/sha256/${multi.digest.slice(7)}`) && !names.has(`blobs/sha256/${amd.digest.slice(7)}`), 'neither the index nor the other platform');
  assert.ok(names.has(`blobs/sha256/${arm.digest.slice(7)}`));
});

test('ustar: a name longer than ustar holds goes in a pax record, a size of 8 GiB or more in base-256; GNU tar reads both', async () => {
  const { entryHeader, headerSize, END_OF_ARCHIVE, paddedSize } = await import('../src/oci/ustar.js');
  const name = `blobs/sha512/${'ab'.repeat(64)}`;
  const data = Buffer.from('payload');
  const head = entryHeader(name, 'file', data.length);
  assert.equal(head.length, headerSize(name));
  const path = join(dir, 'long.tar');
  await writeFile(path, Buffer.concat([head, data, Buffer.alloc(paddedSize(data.length) - data.length), END_OF_ARCHIVE]));
  assert.deepEqual(tarList(path), [{ name, size: data.length }]);
  assert.equal(tarFile(path, name), 'payload');
  // A header alone: tar lists the entry with its size, then finds the archive short of its data.
  const big = 8 * 1024 ** 3 + 5;
  const bigPath = join(dir, 'big.tar');
  await writeFile(bigPath, entryHeader('blobs/sha256/big', 'file', big));
  const r = spawnSync('tar', ['-tvf', bigPath], { encoding: 'utf8' });
  assert.match(r.stdout, new RegExp(`\\s${big}\\s.*blobs/sha256/big`));
});
