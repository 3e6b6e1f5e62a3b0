/**
 * Reading the tree as the registry reads it: special files where a link or `data` file should
 * be are refused at once (never a hang), and symbolic links to data and directories (storage
 * spread over several disks) are followed, for every command. Through the built CLI (run
 * `npm run build` first), on copies of the registry-written fixture.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, rm, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Digest } from '../src/digest.js';
import { parseRepoName, parseTag } from '../src/reference.js';
import * as layout from '../src/registry/layout.js';
import type { Image } from '../scripts/lib/images.js';
import { runCli, type CliResult } from './helpers/cli.js';
import { assertServed, type Served } from './helpers/judge.js';
import { FIXTURE_ROOT, currentPush } from './helpers/fixture.js';
import { copyTree, tempDir } from './helpers/tree.js';

const APP = parseRepoName('team/app');
const V1 = parseTag('v1');
const v1 = currentPush('team/app', 'v1').image as Image;
const V2 = join('docker', 'registry', 'v2');

/** A run of the CLI that is killed after `ms`: a hang fails the test instead of stopping it. */
function runBounded(args: string[], stdin = '', ms = 20_000): Promise<CliResult> {
  return runCli(args, { stdin, timeoutMs: ms });
}

/** A fresh copy of the fixture; returns the registry root and its storage root. */
async function fixtureCopy(dir: string): Promise<{ root: string; v2: string }> {
  await mkdir(dir);
  const root = join(dir, 'src');
  await copyTree(FIXTURE_ROOT, root);
  return { root, v2: join(root, V2) };
}

type Special = 'fifo' | 'socket' | 'directory';

/** Put a special file of the kind given at `path`, replacing the file there if any. */
async function makeSpecial(path: string, kind: Special, cleanups: Array<() => void>): Promise<void> {
  await rm(path, { force: true });
  if (kind === 'directory') await mkdir(path);
  else if (kind === 'fifo') await new Promise<void>((res, rej) => execFile('mkfifo', [path], (err) => (err === null ? res() : rej(err))));
  else {
    // A socket path is cut at 107 bytes: bind a short name from within its directory.
    const srv = createServer();
    const cwd = process.cwd();
    process.chdir(dirname(path));
    try {
      await new Promise<void>((res, rej) => srv.once('error', rej).listen(basename(path), res));
    } finally {
      process.chdir(cwd);
    }
    cleanups.push(() => srv.close());
  }
}

const positions: Array<{ name: string; path: (v2: string) => string; code: string }> = [
  { name: 'tag current link', path: (v2) => layout.tagCurrentLinkPath(v2, APP, V1), code: 'LINK_INVALID' },
  { name: 'revision link', path: (v2) => layout.revisionLinkPath(v2, APP, v1.digest as Digest), code: 'LINK_INVALID' },
  { name: '_layers link', path: (v2) => layout.layerLinkPath(v2, APP, v1.config.digest as Digest), code: 'LINK_INVALID' },
  { name: 'tag index link', path: (v2) => layout.tagIndexEntryLinkPath(v2, APP, V1, v1.digest as Digest), code: 'LINK_INVALID' },
  { name: 'manifest data', path: (v2) => layout.blobDataPath(v2, v1.digest as Digest), code: 'BLOB_INVALID' },
  { name: 'layer data', path: (v2) => layout.blobDataPath(v2, v1.layers[0]!.digest as Digest), code: 'BLOB_INVALID' },
];

for (const kind of ['fifo', 'socket', 'directory'] as const) {
  test(`a ${kind} at a link or data position is refused at once, naming the path`, async () => {
    const { dir: tmp, cleanup } = await tempDir('regfs-special-');
    const cleanups: Array<() => void> = [];
    try {
      for (const pos of positions) {
        const { root, v2 } = await fixtureCopy(join(tmp, pos.name.replace(/ /g, '-')));
        const path = pos.path(v2);
        await makeSpecial(path, kind, cleanups);
        const runs: Array<[string, string[]]> = [['verify', ['verify', root]]];
        // extract reads the links that make the image served: not the tag's history, and
        // (for now) not the _layers links.
        if (pos.name !== 'tag index link' && pos.name !== '_layers link') runs.push(['extract', ['extract', '-', root, join(tmp, pos.name.replace(/ /g, '-'), 'out')]]);
        for (const [what, args] of runs) {
          const r = await runBounded(args, what === 'extract' ? 'team/app:v1\n' : '');
          const where = `${kind} at ${pos.name}, ${what}`;
          assert.equal(r.killed, false, `${where}: regfs hung`);
          assert.notEqual(r.code, 0, `${where}: exit 0\n${r.stdout}${r.stderr}`);
          const text = r.stdout + r.stderr;
          assert.ok(text.includes(pos.code), `${where}: no ${pos.code}\n${text}`);
          assert.ok(text.includes(path), `${where}: the path is not named\n${text}`);
        }
        // gc: a link that cannot be read still protects what its path names; a manifest or
        // (with --delete-untagged) a tag that cannot be read makes gc refuse. Either way the
        // image keeps every blob.
        const r = await runBounded(['gc', root, '--apply', '--delete-untagged']);
        const where = `${kind} at ${pos.name}, gc --apply`;
        assert.equal(r.killed, false, `${where}: regfs hung`);
        if (pos.name === 'manifest data' || pos.name === 'tag current link') {
          assert.notEqual(r.code, 0, `${where}: exit 0\n${r.stdout}${r.stderr}`);
          assert.ok(r.stderr.includes('UNSAFE') && r.stderr.includes(path), `${where}: no UNSAFE naming the path\n${r.stderr}`);
        } else assert.equal(r.code, 0, `${where}: ${r.stdout}${r.stderr}`);
        for (const d of [v1.digest, v1.config.digest, ...v1.layers.map((l) => l.digest)] as Digest[]) {
          assert.ok(existsSync(layout.blobDir(v2, d)), `${where}: deleted ${d}`);
        }
      }
    } finally {
      for (const c of cleanups) c();
      await cleanup();
    }
  });
}

/** Move `path` to `to` (on "another disk") and leave a symbolic link to it in its place. */
async function moveAndLink(path: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  await rename(path, to);
  await symlink(to, path);
}

/** Every symbolic link under `root` (an output must hold none). */
async function symlinksUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isSymbolicLink()) out.push(p);
      else if (e.isDirectory()) await walk(p);
    }
  };
  await walk(root);
  return out;
}

const busybox = currentPush('library/busybox', '1.36').image as Image;
const v2img = currentPush('team/app', 'v2').image as Image;
const SYMLINKED: Served[] = [
  { name: 'team/app:v1', digest: v1.digest },
  { name: 'team/app:v2', digest: v2img.digest },
  { name: 'library/busybox:1.36', digest: busybox.digest },
];

/**
 * The fixture with storage spread over "several disks": team/app:v1's first layer data, the
 * fan-out directory of its config, the library/busybox repository directory, team/app:v2's
 * revision directory, team/app:v1's manifest data, its tag's current link, its revision link
 * and its first layer's `_layers` link are each moved under `disks` and replaced by a symbolic
 * link.
 */
async function spreadTree(dir: string): Promise<{ root: string; v2: string; disks: string }> {
  const { root, v2 } = await fixtureCopy(dir);
  const disks = join(dir, 'disks');
  await moveAndLink(layout.blobDataPath(v2, v1.layers[0]!.digest as Digest), join(disks, '1', 'layer-data'));
  await moveAndLink(dirname(layout.blobDir(v2, v1.config.digest as Digest)), join(disks, '2', 'fan-out'));
  await moveAndLink(layout.repoDir(v2, parseRepoName('library/busybox')), join(disks, '3', 'busybox'));
  await moveAndLink(dirname(layout.revisionLinkPath(v2, APP, v2img.digest as Digest)), join(disks, '4', 'revision'));
  await moveAndLink(layout.blobDataPath(v2, v1.digest as Digest), join(disks, '5', 'manifest-data'));
  // Link files too: the registry opens them with os.Open, which follows a symbolic link.
  await moveAndLink(layout.tagCurrentLinkPath(v2, APP, V1), join(disks, '6', 'current-link'));
  await moveAndLink(layout.revisionLinkPath(v2, APP, v1.digest as Digest), join(disks, '7', 'revision-link'));
  await moveAndLink(layout.layerLinkPath(v2, APP, v1.layers[0]!.digest as Digest), join(disks, '8', 'layer-link'));
  return { root, v2, disks };
}

test('symbolic links to data, fan-out, repository and revision directories are followed by every command', async () => {
  const { dir, cleanup } = await tempDir('regfs-spread-');
  try {
    const { root, v2 } = await spreadTree(join(dir, 'a'));
    const ls = await runBounded(['ls', root]);
    assert.equal(ls.code, 0, ls.stderr);
    for (const s of SYMLINKED) assert.ok(ls.stdout.includes(s.name.replace(':', ' ')) || ls.stdout.includes(s.name), `ls does not list ${s.name}\n${ls.stdout}`);
    const verify = await runBounded(['verify', root]);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const inspect = await runBounded(['inspect', root, 'library/busybox:1.36']);
    assert.equal(inspect.code, 0, inspect.stderr);

    // extract: the output holds the content, never a symbolic link, and the registry serves it.
    const out = join(dir, 'out');
    const list = SYMLINKED.map((s) => s.name).join('\n');
    const ex = await runBounded(['extract', '-', root, out], `${list}\n`);
    assert.equal(ex.code, 0, ex.stderr);
    assert.deepEqual(await symlinksUnder(out), []);
    await assertServed(out, SYMLINKED, [], join(dir, 'judge-out'));

    // to-dir: every blob file is real content that hashes to its name.
    const dirOut = join(dir, 'dirs');
    await writeFile(join(dir, 'list'), `${list}\n`);
    const td = await runBounded(['to-dir', join(dir, 'list'), root, dirOut]);
    assert.equal(td.code, 0, td.stderr);
    assert.deepEqual(await symlinksUnder(dirOut), []);
    let blobs = 0;
    for (const image of await readdir(dirOut, { recursive: true })) {
      const p = join(dirOut, image);
      const name = basename(p);
      if (!/^[0-9a-f]{64}$/.test(name) || !(await lstat(p)).isFile()) continue;
      blobs++;
      assert.equal(createHash('sha256').update(await readFile(p)).digest('hex'), name, p);
    }
    assert.ok(blobs >= 3 * 2, `to-dir wrote ${blobs} blobs`);

    // gc --apply, plain and --delete-untagged, deletes none of it: the registry serves it all after.
    for (const args of [['gc', root, '--apply'], ['gc', root, '--apply', '--delete-untagged']]) {
      const r = await runBounded(args);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    }
    for (const d of [v1.layers[0]!.digest, v1.config.digest, busybox.digest, busybox.config.digest, v2img.digest] as Digest[]) {
      assert.ok(existsSync(layout.blobDataPath(v2, d)), `gc deleted ${d}`);
    }
    await assertServed(root, SYMLINKED, [], join(dir, 'judge-src'));
  } finally {
    await cleanup();
  }
});

test('a size mismatch behind a symbolic link is refused; a symbolic link loop does not hang', async () => {
  const { dir, cleanup } = await tempDir('regfs-spread-bad-');
  try {
    const { root, disks } = await spreadTree(join(dir, 'a'));
    await truncate(join(disks, '1', 'layer-data'), 10);
    const ex = await runBounded(['extract', '-', root, join(dir, 'out')], 'team/app:v1\n');
    assert.equal(ex.code, 1, ex.stderr);
    assert.match(ex.stderr, /SIZE_INVALID/);

    const { root: root2, v2 } = await fixtureCopy(join(dir, 'b'));
    const loop = join(layout.repositoriesDir(v2), 'team', 'loop');
    await symlink('..', loop);
    const selfData = layout.blobDataPath(v2, v1.layers[1]!.digest as Digest);
    await unlink(selfData);
    await symlink('data', selfData);
    await writeFile(join(dir, 'list'), 'team/app:v1\n');
    for (const args of [['ls', root2], ['verify', root2], ['gc', root2, '--apply'], ['extract', join(dir, 'list'), root2, join(dir, 'out2')]]) {
      const r = await runBounded(args);
      assert.equal(r.killed, false, `${args[0]} hung`);
      if (args[0] === 'ls') continue;
      assert.notEqual(r.code, 0, `${args.join(' ')}\n${r.stdout}${r.stderr}`);
      const text = r.stdout + r.stderr;
      if (args[0] !== 'extract') assert.ok(text.includes('SYMLINK_LOOP') && text.includes(loop), text);
      if (args[0] !== 'gc') assert.ok(text.includes('BLOB_INVALID') && text.includes(selfData), text);
    }
    assert.ok(existsSync(layout.blobDir(v2, v1.digest as Digest)));
  } finally {
    await cleanup();
  }
});

test('from-dir: a FIFO or directory where a dir: file should be is refused at once; a symbolic link to a blob is followed', async () => {
  const { dir, cleanup } = await tempDir('regfs-dir-special-');
  try {
    const exported = join(dir, 'export');
    const td = await runBounded(['to-dir', '--image', 'team/app:v1', FIXTURE_ROOT, exported]);
    assert.equal(td.code, 0, td.stderr);
    const layerFile = join(exported, v1.layers[0]!.digest.slice('sha256:'.length));
    const saved = await readFile(layerFile);
    for (const [what, path, code] of [
      ['blob', layerFile, 'BLOB_INVALID'],
      ['manifest.json', join(exported, 'manifest.json'), 'MANIFEST_INVALID'],
    ] as const) {
      const content = await readFile(path);
      for (const kind of ['fifo', 'directory'] as const) {
        await makeSpecial(path, kind, []);
        const r = await runBounded(['from-dir', exported, join(dir, `dest-${kind}`), '--name', 'team/app:v1']);
        assert.equal(r.killed, false, `${kind} as ${what}: from-dir hung`);
        assert.notEqual(r.code, 0, r.stdout + r.stderr);
        assert.ok(r.stderr.includes(code) && r.stderr.includes(path), `${kind} as ${what}\n${r.stderr}`);
        await rm(path, { recursive: true });
        await writeFile(path, content);
      }
    }
    // A blob file that is a symbolic link: the destination gets the content.
    await moveAndLink(layerFile, join(dir, 'disk', 'layer'));
    const dest = join(dir, 'dest');
    const r = await runBounded(['from-dir', exported, dest, '--name', 'team/app:v1']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await symlinksUnder(dest), []);
    assert.ok((await readFile(layout.blobDataPath(join(dest, V2), v1.layers[0]!.digest as Digest))).equals(saved));
  } finally {
    await cleanup();
  }
});

test('a FIFO as an upload\'s startedat does not make verify or gc wait', async () => {
  const { dir, cleanup } = await tempDir('regfs-upload-fifo-');
  try {
    const { root, v2 } = await fixtureCopy(join(dir, 'a'));
    const upload = join(layout.uploadsDir(v2, APP), '5b0b2b7e-1111-2222-3333-444455556666');
    await mkdir(upload, { recursive: true });
    await makeSpecial(join(upload, 'startedat'), 'fifo', []);
    for (const args of [['verify', root, '--fast'], ['gc', root]]) {
      const r = await runBounded(args);
      assert.equal(r.killed, false, `${args[0]} hung`);
    }
  } finally {
    await cleanup();
  }
});

test('a file where a link\'s directory should be is LINK_INVALID, not a missing link: gc --delete-untagged refuses', async () => {
  const { dir, cleanup } = await tempDir('regfs-notdir-');
  try {
    const { root, v2 } = await fixtureCopy(join(dir, 'a'));
    const current = dirname(layout.tagCurrentLinkPath(v2, APP, V1));
    await rm(current, { recursive: true });
    await writeFile(current, v1.digest);
    const verify = await runBounded(['verify', root]);
    assert.ok(verify.stdout.includes('LINK_INVALID') && verify.stdout.includes(layout.tagCurrentLinkPath(v2, APP, V1)), verify.stdout);
    const r = await runBounded(['gc', root, '--apply', '--delete-untagged']);
    assert.notEqual(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /UNSAFE/);
    for (const d of [v1.digest, v1.config.digest, ...v1.layers.map((l) => l.digest)] as Digest[]) assert.ok(existsSync(layout.blobDir(v2, d)), `deleted ${d}`);
  } finally {
    await cleanup();
  }
});
