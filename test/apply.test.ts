/**
 * apply, judged by the real tools (docker-registry 2.8.2, skopeo 1.9.3), on bundles made as
 * docs/bundle.md gives them (test/helpers/bundle.ts) from the fixture the real registry wrote:
 *
 *   1. a complete bundle into an empty root: the registry serves every image with its source
 *      digest and skopeo copies each in full; the tree is what `extract` of the list writes;
 *      applied again, nothing changes; blobs the output held are not rewritten;
 *   2. a delta: release N applied, then N+1 made against the far side's blobs, carrying only
 *      the new ones (a manifest among those left out, an image new to a repository whose
 *      blobs are all left out): the registry serves both releases;
 *   3. refused, with nothing written: a delta applied to the wrong root (BUNDLE_BASE_MISSING,
 *      naming the blobs and the inventory), a truncated bundle, one flipped byte in a blob,
 *      `regfs-bundle.json` after a blob, a bad `regfs-bundle.json`;
 *   4. volumes (NAME.000, …; a missing one), a pipe with progress against `carried.bytes`,
 *      and streaming: blobs are staged in the output's blob tree as they come, nowhere else;
 *   5. an existing OCI image layout as the output, judged by skopeo `oci:`: complete and
 *      delta bundles merged into it as to-oci merges, a wrong layout refused.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { access, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { apply } from '../src/ops/apply.js';
import { digestHex, digestOf, type Digest } from '../src/digest.js';
import { blobDataPath } from '../src/registry/layout.js';
import type { Progress } from '../src/progress.js';
import { checkJsonDocument } from '../scripts/lib/json-schemas.js';
import { FIXTURE_ROOT, readFixtureManifest } from './helpers/fixture.js';
import { runCli, type CliResult } from './helpers/cli.js';
import { assertServed, type Served } from './helpers/judge.js';
import { startRegistry } from '../scripts/lib/registry-server.js';
import { skopeoCopy, skopeoManifestDigestOf } from '../scripts/lib/skopeo.js';
import { entryOffset, makeBundle, storageBlobs, type TestBundle } from './helpers/bundle.js';
import { listFiles, snapshotTree, tempDir } from './helpers/tree.js';

const V2 = 'docker/registry/v2';
const refs = (await readFixtureManifest()).refs;
const digestOfRef = (ref: string): string => {
  const r = refs.filter((x) => x.ref === ref && x.overwritten !== true).at(-1);
  if (r === undefined) throw new Error(`no fixture ref ${ref}`);
  return r.digest;
};
const SIG = 'team/app:sha256-6d1ddbb23e53cfd97b606fd78932a91c65f116c02fa690a4db6750d4793e35ac.sig';
/** The overwritten team/app:edge, listed by digest alone. */
const UNTAGGED = `team/app@${refs.find((r) => r.ref === 'team/app:edge' && r.overwritten === true)!.digest}`;
/** Release N, and N+1: N's images but one, new tags, an index nested in another. */
const RELEASE_N = ['team/app:v1', 'multiarch/tool:1.0-oci', 'library/busybox:1.36', UNTAGGED];
const RELEASE_N1 = ['team/app:v1', 'team/app:v2', 'multiarch/tool:1.0', 'multiarch/tool:1.0-oci', 'multiarch/tool:nested', 'team/app/worker:1.1', SIG];
const FULL = [...new Set([...RELEASE_N, ...RELEASE_N1])];
const served = (list: string[]): Served[] => list.map((name) => ({ name, digest: name.includes('@') ? name.split('@')[1]! : digestOfRef(name) }));

let t: { dir: string; cleanup: () => Promise<void> };
let full: TestBundle;
let releaseN: TestBundle;
/** What `extract` of FULL writes: what every apply of the complete bundle must write. */
let reference: string;

before(async () => {
  t = await tempDir('regfs-apply-');
  full = await makeBundle({ list: FULL, source: FIXTURE_ROOT, tar: join(t.dir, 'full.tar') });
  releaseN = await makeBundle({ list: RELEASE_N, source: FIXTURE_ROOT, tar: join(t.dir, 'release-n.tar') });
  const listFile = join(t.dir, 'full.list');
  await writeFile(listFile, `${FULL.join('\n')}\n`);
  reference = join(t.dir, 'extracted-full');
  const x = await runCli(['extract', listFile, FIXTURE_ROOT, reference]);
  assert.equal(x.code, 0, x.stderr);
});

after(async () => {
  await t?.cleanup();
});

/** Every file under `root` (the lock aside) and the digest of its bytes. */
async function treeContents(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of await listFiles(root)) if (!f.endsWith('.regfs.lock')) out.set(f, digestOf(await readFile(join(root, f))));
  return out;
}

/**
 * A snapshot of an output root (snapshotTree: every entry's type, mode, size, mtime and
 * content), less the mtimes of `v2` and `v2/blobs` (a layout's `blobs`): a run takes its
 * lock in the one and stages in the other, and both are gone when it ends.
 */
async function destSnapshot(root: string): Promise<Map<string, string>> {
  const snap = await snapshotTree(root);
  for (const d of [V2, `${V2}/blobs`, 'blobs']) {
    const e = snap.get(d);
    if (e !== undefined) snap.set(d, e.replace(/ [\d.]+$/, ''));
  }
  return snap;
}

/** `dev:ino mtime` of every blob data file under a root. */
async function blobInodes(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of await listFiles(join(root, V2, 'blobs'))) {
    const st = await stat(join(root, V2, 'blobs', f));
    out.set(f, `${st.dev}:${st.ino} ${st.mtimeMs}`);
  }
  return out;
}

async function copyRoot(from: string, name: string): Promise<string> {
  const to = join(t.dir, name);
  await rm(to, { recursive: true, force: true });
  execFileSync('cp', ['-a', from, to]);
  return to;
}

/** Run apply; it must fail with `code` (exit 1) naming each of `names`, and leave `dest` as it was (or absent). */
async function refused(args: string[], code: string, dest: string, names: string[]): Promise<CliResult> {
  const existed = await access(dest).then(
    () => true,
    () => false,
  );
  const before = existed ? await destSnapshot(dest) : undefined;
  const r = await runCli(['apply', ...args], { timeoutMs: 30_000 });
  assert.equal(r.killed, false, `apply ${args.join(' ')} hung`);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`\\[${code}\\]`), r.stderr);
  assert.doesNotMatch(r.stderr, /internal error/);
  for (const n of names) assert.ok(r.stderr.includes(n), `the error names ${n}: ${r.stderr}`);
  if (before !== undefined) assert.deepEqual(await destSnapshot(dest), before, `${dest} is unchanged`);
  else await assert.rejects(access(dest), `nothing is created: ${dest}`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// 1. A complete bundle

test('apply: a complete bundle into an empty root is served with the source digests, as extract writes it; applied again it changes nothing', async () => {
  assert.equal(full.inventory, null);
  assert.deepEqual(full.assumed, []);
  const dest = join(t.dir, 'dest-full');
  const r = await runCli(['apply', full.tar, dest, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = checkJsonDocument('apply', r.stdout, 0);
  assert.deepEqual(doc['bundle'], { inventory: null, carried: full.carried, assumed: 0 });
  assert.equal(doc['volumes'], 1);
  assert.equal((doc['images'] as unknown[]).length, FULL.length);
  assert.equal(doc['bytesVerified'], full.carried.bytes);
  assert.deepEqual(await readdir(join(dest, V2, 'blobs')), ['sha256'], 'the staging directory is removed');

  await assertServed(dest, served(FULL), ['team/app:edge', 'team/app/worker:1.0'], join(t.dir, 'judge-full'));

  // What extract of the same list writes, file for file.
  assert.deepEqual(await treeContents(dest), await treeContents(reference));

  // Again: nothing changes, no blob is rewritten (inodes and mtimes kept), no link written.
  const before = await destSnapshot(dest);
  const inodes = await blobInodes(dest);
  const again = await runCli(['apply', full.tar, dest, '--json']);
  assert.equal(again.code, 0, again.stderr);
  const stats = checkJsonDocument('apply', again.stdout, 0)['stats'] as { linksWritten: number; blobsExisting: number; blobsLinked: number; blobsWritten: number };
  assert.equal(stats.linksWritten, 0);
  assert.equal(stats.blobsLinked + stats.blobsWritten, 0);
  assert.deepEqual(await destSnapshot(dest), before);
  assert.deepEqual(await blobInodes(dest), inodes);
});

test('apply: blobs the output already holds are not rewritten; a dry run writes nothing', async () => {
  const dest = join(t.dir, 'dest-partial');
  const listFile = join(t.dir, 'partial.list');
  await writeFile(listFile, 'team/app:v1\nlibrary/busybox:1.36\n');
  const x = await runCli(['extract', listFile, FIXTURE_ROOT, dest]);
  assert.equal(x.code, 0, x.stderr);
  const held = await blobInodes(dest);

  const dry = join(t.dir, 'dest-dry');
  const d = await runCli(['apply', full.tar, dry, '--dry-run', '--json']);
  assert.equal(d.code, 0, d.stderr);
  const plan = checkJsonDocument('apply', d.stdout, 0);
  assert.equal(plan['dryRun'], true);
  assert.equal((plan['plan'] as { blobs: number }).blobs, full.order.length);
  await assert.rejects(access(dry), 'a dry run creates nothing');

  const r = await runCli(['apply', full.tar, dest, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const stats = checkJsonDocument('apply', r.stdout, 0)['stats'] as { blobsExisting: number };
  assert.equal(stats.blobsExisting, held.size);
  const now = await blobInodes(dest);
  for (const [f, id] of held) assert.equal(now.get(f), id, `${f} kept its inode and mtime`);
});

// ---------------------------------------------------------------------------------------------
// 2. Deltas

test('apply: release N, then N+1 made against the far side carries only the new blobs; the registry serves both releases', async () => {
  const far = join(t.dir, 'far');
  const n = await runCli(['apply', releaseN.tar, far]);
  assert.equal(n.code, 0, n.stderr);
  const farBlobs = await storageBlobs(far);

  // N+1, and an image new to its repository whose blobs the far side all holds.
  const team = digestOfRef('team/app:v1');
  const next = await makeBundle({
    list: RELEASE_N1,
    source: FIXTURE_ROOT,
    tar: join(t.dir, 'release-n1.tar'),
    have: far,
    editIndex: (index) => {
      const e = index.manifests.find((m) => m.digest === team)!;
      index.manifests.push({ ...e, annotations: { 'org.opencontainers.image.ref.name': 'mirror/app:v1' } });
    },
  });
  assert.ok(next.inventory !== null);
  for (const d of next.order) assert.ok(!farBlobs.has(d), `${d} is on the far side and not carried`);
  assert.ok(next.assumed.some((a) => a.digest === team), 'a manifest is among the blobs left out');
  assert.ok(next.carried.blobs > 0);

  const r = await runCli(['apply', next.tar, far, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = checkJsonDocument('apply', r.stdout, 0);
  assert.deepEqual(doc['bundle'], { inventory: next.inventory, carried: next.carried, assumed: next.assumed.length });
  assert.equal(doc['bytesVerified'], next.carried.bytes);
  const text = await runCli(['apply', next.tar, far]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`bundle: delta against inventory ${next.inventory}, ${next.carried.blobs} blobs carried .*, ${next.assumed.length} assumed present`));

  await assertServed(far, [...served(RELEASE_N), ...served(RELEASE_N1), { name: 'mirror/app:v1', digest: team }], [], join(t.dir, 'judge-delta'));
});

test('apply: a delta applied to the wrong root is refused before anything is written, naming the missing blobs and the inventory', async () => {
  const far = join(t.dir, 'far-wrong-base');
  const n = await runCli(['apply', releaseN.tar, far]);
  assert.equal(n.code, 0, n.stderr);
  const next = await makeBundle({ list: RELEASE_N1, source: FIXTURE_ROOT, tar: join(t.dir, 'release-n1-wrong.tar'), have: far });

  // Another registry: it lacks them all (more than the message lists).
  const other = join(t.dir, 'other-root');
  const listFile = join(t.dir, 'other.list');
  await writeFile(listFile, 'tools/nomediatype:1.0\n');
  assert.equal((await runCli(['extract', listFile, FIXTURE_ROOT, other])).code, 0);
  const otherBlobs = await storageBlobs(other);
  const lacking = next.assumed.filter((a) => otherBlobs.get(a.digest) !== a.size);
  assert.ok(lacking.length > 5);
  const r = await refused([next.tar, other], 'BUNDLE_BASE_MISSING', other, [next.inventory!, lacking[0]!.digest, `lacks ${lacking.length} of them`, `and ${lacking.length - 5} more`]);
  assert.doesNotMatch(r.stderr, /\[INCOMPLETE\]/);
  // With --json, the code; a dry run checks the same.
  const j = await runCli(['apply', next.tar, other, '--json']);
  assert.equal((checkJsonDocument('apply', j.stdout, 1)['error'] as { code: string }).code, 'BUNDLE_BASE_MISSING');
  await refused([next.tar, other, '--dry-run'], 'BUNDLE_BASE_MISSING', other, [lacking[0]!.digest]);

  // A root that does not exist: not even its directories are made.
  await refused([next.tar, join(t.dir, 'no-such-root')], 'BUNDLE_BASE_MISSING', join(t.dir, 'no-such-root'), [next.inventory!]);

  // The right root, but one assumed blob damaged (another size): that one is named.
  const damaged = await copyRoot(far, 'far-damaged');
  const victim = next.assumed.at(-1)!;
  await truncate(blobDataPath(join(damaged, V2), victim.digest), victim.size - 1);
  await refused([next.tar, damaged], 'BUNDLE_BASE_MISSING', damaged, [`${victim.digest} (${victim.size - 1} bytes, not ${victim.size})`, 'lacks 1 of them']);
});

// ---------------------------------------------------------------------------------------------
// 3. Damaged bundles

test('apply: a truncated bundle, a flipped byte in a blob, regfs-bundle.json after a blob or malformed: refused, the output unchanged', async () => {
  const dest = join(t.dir, 'dest-damage');
  const listFile = join(t.dir, 'damage.list');
  await writeFile(listFile, 'team/app:v1\n');
  assert.equal((await runCli(['extract', listFile, FIXTURE_ROOT, dest])).code, 0);
  const tar = await readFile(full.tar);
  const bad = async (name: string, bytes: Buffer): Promise<string> => {
    const p = join(t.dir, `bad-${name}.tar`);
    await writeFile(p, bytes);
    return p;
  };
  // The largest blob the output lacks (one it holds is not read from the tar), to cut into and to damage.
  const held = await storageBlobs(dest);
  const size = async (d: string): Promise<number> => (await stat(join(full.layout, 'blobs/sha256', digestHex(d as Digest)))).size;
  let big = full.order.find((d) => !held.has(d))!;
  for (const d of full.order) if (!held.has(d) && (await size(d)) > (await size(big))) big = d;
  const entry = `blobs/sha256/${digestHex(big)}`;
  const at = entryOffset(tar, entry);

  // Cut inside a blob: the entry is named.
  await refused([await bad('cut-blob', tar.subarray(0, at + 100)), dest], 'ARCHIVE_INVALID', dest, [entry, 'truncated']);
  // Cut where an entry ends (the tar parser sees a whole tar): the carried counts tell, naming the last entry read.
  const last = full.order[full.order.indexOf(big) - 1] ?? full.order[0]!;
  const cutAt = entryOffset(tar, `blobs/sha256/${digestHex(last)}`) + Math.ceil((await stat(join(full.layout, 'blobs/sha256', digestHex(last)))).size / 512) * 512;
  await refused([await bad('cut-entry', tar.subarray(0, cutAt)), dest], 'ARCHIVE_INVALID', dest, [`after the entry blobs/sha256/${digestHex(last)}`, 'truncated']);
  // One flipped byte in a blob.
  const flipped = Buffer.from(tar);
  flipped[at + 10] = flipped[at + 10]! ^ 0x01;
  await refused([await bad('flipped', flipped), dest], 'DIGEST_MISMATCH', dest, [`bad-flipped.tar:${entry}`]);

  // regfs-bundle.json after a blob entry: a tar whose entries are in another order.
  const files = ['oci-layout', 'index.json', 'blobs/', 'blobs/sha256/', `blobs/sha256/${digestHex(full.order[0]!)}`, 'regfs-bundle.json', ...full.order.slice(1).map((d) => `blobs/sha256/${digestHex(d)}`)];
  const late = join(t.dir, 'bad-late.tar');
  execFileSync('tar', ['--format=ustar', '--no-recursion', '-cf', late, '-C', full.layout, ...files]);
  await refused([late, dest], 'ARCHIVE_INVALID', dest, ['regfs-bundle.json" comes after 1 blob entry']);

  // A regfs-bundle.json of another version, and one assuming blobs with no inventory.
  for (const [name, doc, says] of [
    ['version', { regfsBundle: 2, inventory: null, carried: full.carried, assumed: [] }, 'regfsBundle 2'],
    ['no-inventory', { regfsBundle: 1, inventory: null, carried: full.carried, assumed: [{ digest: full.order[0], size: 1 }] }, 'names no inventory'],
    ['carried', { regfsBundle: 1, inventory: null, carried: { blobs: full.carried.blobs, bytes: full.carried.bytes + 1 }, assumed: [] }, 'not the tar that entry was written for'],
  ] as const) {
    const layout = join(t.dir, `layout-${name}`);
    await rm(layout, { recursive: true, force: true });
    execFileSync('cp', ['-a', full.layout, layout]);
    await writeFile(join(layout, 'regfs-bundle.json'), JSON.stringify(doc));
    const p = join(t.dir, `bad-${name}.tar`);
    execFileSync('tar', ['--format=ustar', '--no-recursion', '-cf', p, '-C', layout, 'oci-layout', 'regfs-bundle.json', 'index.json', ...full.order.map((d) => `blobs/sha256/${digestHex(d)}`)]);
    await refused([p, dest], 'ARCHIVE_INVALID', dest, [says]);
  }
  // A directory is not a bundle; regfs-bundle.json as a symbolic link is no bundle file.
  await refused([full.layout, dest], 'ARCHIVE_INVALID', dest, ['regfs from-oci']);
  const linked = join(t.dir, 'layout-symlink');
  await rm(linked, { recursive: true, force: true });
  execFileSync('cp', ['-a', full.layout, linked]);
  await rm(join(linked, 'regfs-bundle.json'));
  execFileSync('ln', ['-s', '/etc/passwd', join(linked, 'regfs-bundle.json')]);
  const symlinkTar = join(t.dir, 'bad-symlink.tar');
  execFileSync('tar', ['--format=ustar', '--no-recursion', '-cf', symlinkTar, '-C', linked, 'oci-layout', 'regfs-bundle.json', 'index.json', ...full.order.map((d) => `blobs/sha256/${digestHex(d)}`)]);
  await refused([symlinkTar, dest], 'ARCHIVE_INVALID', dest, ['regfs-bundle.json', 'SymbolicLink']);
});

// ---------------------------------------------------------------------------------------------
// 4. Volumes, pipes, streaming

test('apply: volumes NAME.000, … and the same bytes through a pipe; a missing volume reads as a truncated tar', async () => {
  const dir = join(t.dir, 'volumes');
  await mkdir(dir);
  execFileSync('split', ['-b', '8192', '-d', '-a', '3', full.tar, join(dir, 'full.tar.')]);
  const volumes = (await readdir(dir)).sort();
  assert.ok(volumes.length >= 4, volumes.join(' '));

  const viaVolumes = join(t.dir, 'dest-volumes');
  const r = await runCli(['apply', join(dir, 'full.tar.000'), viaVolumes, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(checkJsonDocument('apply', r.stdout, 0)['volumes'], volumes.length);

  // Through a pipe (cat full.tar.* | regfs apply - DEST), with progress against carried.bytes.
  const viaPipe = join(t.dir, 'dest-pipe');
  const cat = new PassThrough();
  const reports: Progress[] = [];
  const piped = apply({ input: '-', stdin: cat, output: viaPipe, onProgress: (p) => reports.push(p) });
  for (const v of volumes) cat.write(await readFile(join(dir, v)));
  cat.end();
  const res = await piped;
  assert.equal(res.bundle?.carried.bytes, full.carried.bytes);
  const hashing = reports.filter((p) => p.phase === 'hash' && p.totalBytes !== undefined);
  assert.ok(hashing.length > 0);
  assert.ok(hashing.every((p) => p.totalBytes === full.carried.bytes && p.bytes! <= p.totalBytes!), JSON.stringify(hashing.slice(0, 3)));
  assert.equal(hashing.at(-1)!.bytes, full.carried.bytes);
  assert.deepEqual([hashing.at(-1)!.done, hashing.at(-1)!.total], [full.carried.blobs, full.carried.blobs], 'blob entries against those carried');
  // From a file, the total is its size.
  const fromFile: Progress[] = [];
  await apply({ input: full.tar, output: join(t.dir, 'dest-progress'), onProgress: (p) => fromFile.push(p) });
  const size = (await stat(full.tar)).size;
  assert.ok(fromFile.some((p) => p.phase === 'hash' && p.totalBytes === size));

  assert.deepEqual(await treeContents(viaVolumes), await treeContents(viaPipe));
  assert.deepEqual(await treeContents(viaVolumes), await treeContents(reference));

  // A middle volume missing: the volumes before it end inside an entry, which is named.
  await rm(join(dir, volumes[2]!));
  await refused([join(dir, 'full.tar.000'), join(t.dir, 'dest-volume-missing')], 'ARCHIVE_INVALID', join(t.dir, 'dest-volume-missing'), ['truncated', '(in entry "blobs/sha256/']);
});

test('apply: streaming: blobs are staged in the output blob tree as they come, nothing else is written, nothing is visible before the end', async () => {
  const dest = join(t.dir, 'dest-stream');
  const tmp = await mkdtemp(join(t.dir, 'tmpdir-'));
  const savedTmp = process.env['TMPDIR'];
  process.env['TMPDIR'] = tmp;
  try {
    const tar = await readFile(full.tar);
    const third = full.order[2]!;
    const upTo = entryOffset(tar, `blobs/sha256/${digestHex(third)}`) + (await stat(join(full.layout, 'blobs/sha256', digestHex(third)))).size;
    const input = new PassThrough();
    const run = apply({ input: '-', stdin: input, output: dest });
    const padded = Math.ceil(upTo / 512) * 512;
    input.write(tar.subarray(0, padded));
    // Wait until the first three blobs are staged.
    const staged = async (): Promise<string[]> => (await listFiles(dest).catch(() => [])).filter((f) => !f.endsWith('.regfs.lock'));
    for (let i = 0; i < 200 && (await staged()).length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    const files = await staged();
    assert.equal(files.length, 3, files.join(' '));
    for (const f of files) assert.match(f, /^docker\/registry\/v2\/blobs\/\.apply\.[^/]+\.regfs-tmp\/sha256-[0-9a-f]{64}$/);
    assert.deepEqual(await readdir(tmp), [], 'nothing in the temp directory');
    input.end(tar.subarray(padded));
    await run;
    assert.deepEqual(await readdir(tmp), []);
    assert.deepEqual(await treeContents(dest), await treeContents(reference));
  } finally {
    if (savedTmp === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = savedTmp;
  }
});

test('apply: a second apply into a root another is writing is LOCKED and leaves it alone; the first completes', async () => {
  const dest = join(t.dir, 'dest-concurrent');
  const tar = await readFile(full.tar);
  const input = new PassThrough();
  const first = apply({ input: '-', stdin: input, output: dest });
  input.write(tar.subarray(0, entryOffset(tar, `blobs/sha256/${digestHex(full.order[1]!)}`)));
  for (let i = 0; i < 200 && !(await access(join(dest, V2, '.regfs.lock')).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 10));
  const second = await runCli(['apply', full.tar, dest]);
  assert.equal(second.code, 1, second.stderr);
  assert.match(second.stderr, /\[LOCKED\]/);
  input.end(tar.subarray(entryOffset(tar, `blobs/sha256/${digestHex(full.order[1]!)}`)));
  await first;
  assert.deepEqual(await treeContents(dest), await treeContents(reference));
});

test('apply: a tar without regfs-bundle.json (skopeo oci-archive:, a tar of to-oci) is applied as a complete bundle', async () => {
  const plain = join(t.dir, 'plain.tar');
  execFileSync('tar', ['-cf', plain, '-C', full.layout, '--exclude', 'regfs-bundle.json', '.']);
  const dest = join(t.dir, 'dest-plain');
  const r = await runCli(['apply', plain, dest, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const doc = checkJsonDocument('apply', r.stdout, 0);
  assert.equal(doc['bundle'], null);
  assert.deepEqual(await treeContents(dest), await treeContents(reference));
  // As the CLI reads it from standard input.
  const stdinDest = join(t.dir, 'dest-plain-stdin');
  const res = await apply({ input: '-', stdin: createReadStream(plain), output: stdinDest });
  assert.equal(res.images.length, FULL.length);
});

// ---------------------------------------------------------------------------------------------
// 5. An OCI image layout as the output

/** The OCI-typed images of the fixture skopeo 1.9.3 reads from a layout (it does not find Docker-typed entries). */
const OCI_TYPED = ['multiarch/tool:1.0-oci', 'library/busybox:1.36', 'team/app/worker:1.1', SIG];

/** skopeo copies each image from the layout into a fresh registry, which serves it with its digest. */
async function assertLayoutServes(layout: string, expected: Served[], scratch: string): Promise<void> {
  await mkdir(scratch, { recursive: true });
  const reg = await startRegistry({ root: scratch });
  try {
    for (const s of expected) {
      await skopeoCopy(`oci:${layout}:${s.name}`, `docker://${reg.host}/${s.name}`, { all: true });
      assert.equal(await skopeoManifestDigestOf(`docker://${reg.host}/${s.name}`), s.digest, s.name);
    }
  } finally {
    await reg.stop();
  }
}

test('apply: into an existing OCI layout, complete and delta bundles merged as to-oci merges; skopeo oci: reads every image; a wrong layout is refused', async () => {
  const layout = join(t.dir, 'layout-dest');
  const listFile = join(t.dir, 'layout.list');
  await writeFile(listFile, 'tools/nomediatype:1.0\n');
  assert.equal((await runCli(['to-oci', listFile, FIXTURE_ROOT, layout])).code, 0);
  const fresh = join(t.dir, 'layout-fresh');
  await mkdir(fresh);
  execFileSync('cp', ['-a', join(layout, 'oci-layout'), join(layout, 'index.json'), fresh]);
  await writeFile(join(fresh, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [] }));

  // Release N into a layout, then N+1 against it.
  const n = await runCli(['apply', releaseN.tar, fresh, '--json']);
  assert.equal(n.code, 0, n.stderr);
  assert.equal(checkJsonDocument('apply', n.stdout, 0)['into'], 'layout');
  const next = await makeBundle({ list: RELEASE_N1, source: FIXTURE_ROOT, tar: join(t.dir, 'layout-n1.tar'), have: fresh });
  assert.ok(next.assumed.length > 0);
  // The other layout lacks what the delta assumes: refused, unchanged.
  await refused([next.tar, layout], 'BUNDLE_BASE_MISSING', layout, [next.inventory!]);

  const r = await runCli(['apply', next.tar, fresh]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /index\.json entries \d+ written/);
  const names = (JSON.parse(await readFile(join(fresh, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> }).manifests.map((m) => `${m.annotations['org.opencontainers.image.ref.name']} ${m.digest}`);
  assert.deepEqual(names.sort(), served([...new Set([...RELEASE_N, ...RELEASE_N1])]).map((s) => `${s.name} ${s.digest}`).sort());
  await assertLayoutServes(fresh, served(OCI_TYPED), join(t.dir, 'judge-layout-delta'));

  // A complete bundle into the layout to-oci wrote: its entry kept, the bundle's added; again, nothing changes.
  const c = await runCli(['apply', full.tar, layout]);
  assert.equal(c.code, 0, c.stderr);
  const again = await destSnapshot(layout);
  assert.equal((await runCli(['apply', full.tar, layout])).code, 0);
  assert.deepEqual(await destSnapshot(layout), again);
  await assertLayoutServes(layout, [...served(OCI_TYPED), { name: 'tools/nomediatype:1.0', digest: digestOfRef('tools/nomediatype:1.0') }], join(t.dir, 'judge-layout-full'));
});
