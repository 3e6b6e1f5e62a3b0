/**
 * regfs in pipelines and scripts: output into a pipe whose reader has gone, standard input as
 * `-` for every list argument, usage errors in regfs's own form, hints for a source that is
 * not registry storage, the count of images --keep-going left out, and help that fits 80
 * columns.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '../src/digest.js';
import { blobDataPath, revisionLinkPath, storageRoot, tagsDir } from '../src/registry/layout.js';
import { parseRepoName } from '../src/reference.js';
import { blobOf, makeImage, makeIndex, makeLayer, type Image } from '../scripts/lib/images.js';
import { writeStorage } from '../scripts/lib/write-storage.js';
import { writeDirImage } from '../scripts/lib/write-dir.js';
import { skopeoCopy } from '../scripts/lib/skopeo.js';
import { isRegfsError } from '../src/errors.js';
import { extract } from '../src/ops/extract.js';
import { listImages } from '../src/ops/ls.js';
import { REGFS_BIN, runCli } from './helpers/cli.js';
import { tempDir } from './helpers/tree.js';

const noStack = (s: string): void => {
  assert.doesNotMatch(s, /^\s+at /m, 'no stack trace');
  assert.doesNotMatch(s, /internal error|EPIPE/, 'no internal error');
};

/** More than a pipe holds (64 KiB), so the writer is still writing when the reader goes. */
const PIPE_BUFFER = 1 << 16;
const TAGS = 1500;

let dir: string;
let cleanup: () => Promise<void>;
/** One image under TAGS tags, a wide image, an image with an absent foreign layer, stray blobs. */
let root: string;
/** Storage whose repository has TAGS tags without `current/link`: as many verify findings. */
let damaged: string;
/** `big/repo:t0` … every tag of `big/repo`, one a line. */
let list: string;

before(async () => {
  ({ dir, cleanup } = await tempDir());
  root = join(dir, 'root');
  const img = makeImage({ format: 'docker', layers: [makeLayer('pipes')] });
  const wide = makeImage({ format: 'docker', layers: Array.from({ length: 1500 }, (_, i) => makeLayer(`wide-${i}`, 16)) });
  await writeStorage(root, [...Array.from({ length: TAGS }, (_, i) => ({ repo: 'big/repo', tag: `t${i}`, image: img })), { repo: 'wide/image', tag: 'v1', image: wide }, { repo: 'win/app', tag: '1', image: withForeignLayer() }]);
  const v2 = storageRoot(root);
  for (let i = 0; i < 2000; i++) {
    const b = blobOf(`stray ${i}\n`);
    await mkdir(join(blobDataPath(v2, b.digest), '..'), { recursive: true });
    await writeFile(blobDataPath(v2, b.digest), b.bytes);
  }
  damaged = join(dir, 'damaged');
  await writeStorage(damaged, [{ repo: 'dangling/repo', tag: 'kept', image: img }]);
  for (let i = 0; i < TAGS; i++) await mkdir(join(storageRoot(damaged), 'repositories/dangling/repo/_manifests/tags', `gone${i}`, 'current'), { recursive: true });
  list = join(dir, 'big.list');
  await writeFile(list, Array.from({ length: TAGS }, (_, i) => `big/repo:t${i}\n`).join(''));
});

after(async () => {
  await cleanup();
});

/** An image whose first layer is foreign and absent: extract warns about it on stderr. */
function withForeignLayer(): Image {
  const img = makeImage({ format: 'docker', layers: [makeLayer('windows-app')] });
  const base = makeLayer('foreign-base');
  const manifest = JSON.parse(img.bytes.toString()) as { layers: object[] };
  manifest.layers.unshift({ mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: base.digest, size: base.size, urls: ['https://example.com/layer'] });
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { ...img, bytes, digest: digestOf(bytes), size: bytes.length };
}

interface ClosedRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `regfs ARGS | head -c 100` in bash: head reads once and exits, closing the pipe while regfs
 * still has most of its output to write. The status is regfs's own (PIPESTATUS), its stderr
 * comes back on a pipe of its own.
 */
function runIntoHead(args: string[]): Promise<ClosedRun> {
  return new Promise((resolve, reject) => {
    const script = '"$@" 2>&3 | head -c 100; exit "${PIPESTATUS[0]}"';
    const child = spawn('bash', ['-c', script, 'bash', process.execPath, REGFS_BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    const out = { stdout: '', stderr: '' };
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (out.stdout += s));
    (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, ...out }));
  });
}

/** Run regfs with stdout and stderr on pipes, the read end of `close` closed at once. */
function runClosing(args: string[], close: 'stdout' | 'stderr'): Promise<ClosedRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [REGFS_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    const out = { stdout: '', stderr: '' };
    for (const name of ['stdout', 'stderr'] as const) {
      if (name === close) child[name].destroy();
      else child[name].setEncoding('utf8').on('data', (s: string) => (out[name] += s));
    }
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, ...out }));
  });
}

for (const [what, args, code] of [
  ['ls', () => ['ls', root], 0],
  ['ls --json', () => ['ls', root, '--json'], 0],
  ['gc --verbose', () => ['gc', root, '--verbose'], 0],
  ['inspect', () => ['inspect', root, 'wide/image:v1'], 0],
  ['inspect --json', () => ['inspect', root, 'wide/image:v1', '--json'], 0],
  ['verify (findings)', () => ['verify', damaged, '--fast'], 4],
  ['extract --dry-run', () => ['extract', list, root, join(dir, 'never'), '--dry-run'], 0],
  ['to-dir --dry-run', () => ['to-dir', list, root, join(dir, 'never-dir'), '--dry-run'], 0],
] as const) {
  test(`pipes: ${what} | head -c 100 ends quietly with the run's own status (${code})`, async () => {
    const full = await runCli(args());
    assert.equal(full.code, code, full.stderr);
    assert.ok(Buffer.byteLength(full.stdout) > 2 * PIPE_BUFFER, `${what}: the output (${full.stdout.length} bytes) must outgrow the pipe`);
    const r = await runIntoHead(args());
    assert.equal(r.code, code, r.stderr);
    assert.equal(r.stdout, full.stdout.slice(0, 100));
    noStack(r.stderr);
    assert.equal(r.stderr, full.stderr, 'stderr says what it says without the pipe, nothing more');
  });
}

test('pipes: `set -o pipefail; regfs ls ROOT | head -1` succeeds: the reader leaving is no failure of regfs', async () => {
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const sh = spawn('bash', ['-c', 'set -o pipefail; "$0" "$1" ls "$2" | head -1; echo "status ${PIPESTATUS[*]}"', process.execPath, REGFS_BIN, root], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    sh.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    sh.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    sh.on('error', reject);
    sh.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  assert.match(r.stdout, /^big\/repo:t0 +sha256:[0-9a-f]{64}  docker/);
  assert.match(r.stdout, /^status 0 0$/m);
  assert.equal(r.stderr, '');
});

test('pipes: a warning into a closed stderr neither stops nor fails the run', async () => {
  // ls warns on stderr when nothing matches, and exits 0.
  const r = await runClosing(['ls', root, 'no/such/**'], 'stderr');
  assert.equal(r.code, 0);
});

test('pipes: extract whose stdout and stderr readers are gone finishes its write and exits as it would have', async () => {
  const extractList = join(dir, 'with-foreign.list');
  await writeFile(extractList, `win/app:1\n${Array.from({ length: TAGS }, (_, i) => `big/repo:t${i}\n`).join('')}`);
  for (const close of ['stdout', 'stderr'] as const) {
    const out = join(dir, `extract-closed-${close}`);
    // The warning on the absent foreign layer goes to stderr before the first write; the summary to stdout after the last.
    const r = await runClosing(['extract', extractList, root, out], close);
    assert.equal(r.code, 0, r.stderr);
    if (close === 'stdout') assert.match(r.stderr, /warning: .*foreign layer/);
    const v = await runCli(['verify', out, '--list', extractList, '--fast']);
    assert.equal(v.code, 0, v.stdout);
    const ls = await runCli(['ls', out]);
    assert.equal(ls.stdout.trimEnd().split('\n').length, TAGS + 1, 'every image extracted');
  }
});

/** Run regfs with its stdout on the descriptor `fd` (such as /dev/full), no colours; its exit code and stderr. */
function runInto(fd: number, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [REGFS_BIN, ...args], { stdio: ['ignore', fd, 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

test('pipes: stdout on a full disk is an error (IO_ERROR, exit 1), not a crash; for --help and --version too', async () => {
  const fd = openSync('/dev/full', 'w');
  try {
    for (const args of [['ls', root], ['--version'], ['--help'], ['extract', '--help']]) {
      const r = await runInto(fd, args);
      assert.equal(r.code, 1, `regfs ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: cannot write to standard output: .*ENOSPC.* \[IO_ERROR\]$/m);
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
    }
  } finally {
    closeSync(fd);
  }
});

test('pipes: stdout on a full disk makes exit 1 also for a run that would exit 3 or 4, and no summary says the output went out', async () => {
  const missing = join(dir, 'one-missing.list');
  await writeFile(missing, 'big/repo:t0\nbig/repo:nosuchtag\n');
  const one = join(dir, 'one.list');
  await writeFile(one, 'big/repo:t0\n');
  const fd = openSync('/dev/full', 'w');
  try {
    for (const args of [
      ['bundle', one, root, '-'],
      ['verify', damaged, '--fast'],
      ['verify', damaged, '--fast', '--json'],
      ['extract', missing, root, join(dir, 'full-stdout-extract'), '--keep-going', '--json'],
      ['inventory', root],
    ]) {
      const r = await runInto(fd, args);
      assert.equal(r.code, 1, `regfs ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: cannot write to standard output: .*ENOSPC.* \[IO_ERROR\]$/m, args.join(' '));
      assert.doesNotMatch(r.stderr, /to standard output; /, `${args.join(' ')}: no summary of a write that failed`);
      assert.equal(r.stderr.split('cannot write to standard output').length - 1, 1, `${args.join(' ')}: the error once`);
      assert.equal(r.stderr.match(/^error: .*standard output/gm)?.length, 1, `${args.join(' ')}: one line says so (bundle's own write too): ${r.stderr}`);
    }
  } finally {
    closeSync(fd);
  }
});

test('pipes: the IO_ERROR of a full stdout is coloured as --color and --no-color say, over FORCE_COLOR', async () => {
  const fd = openSync('/dev/full', 'w');
  try {
    const run = (flag: string, force: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [REGFS_BIN, 'ls', root, flag], { stdio: ['ignore', fd, 'pipe'], env: { ...process.env, FORCE_COLOR: force } });
        let stderr = '';
        child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
        child.on('error', reject);
        child.on('close', () => resolve(stderr));
      });
    const plain = await run('--no-color', '1');
    assert.match(plain, /^error: cannot write to standard output: .*\[IO_ERROR\]$/m);
    assert.doesNotMatch(plain, /\x1b\[/, '--no-color beats FORCE_COLOR=1');
    const coloured = await run('--color', '0');
    assert.match(coloured, /\x1b\[31merror:/, '--color beats FORCE_COLOR=0');
  } finally {
    closeSync(fd);
  }
});

test('stdin: `-` is standard input for every list argument: extract LIST, to-dir LIST, verify --list', async () => {
  const stdin = '# from a pipe\nbig/repo:t1\nbig/repo:t2\n';
  const ex = await runCli(['extract', '-', root, join(dir, 'stdin-extract'), '--dry-run'], { stdin });
  assert.equal(ex.code, 0, ex.stderr);
  assert.match(ex.stdout, /^plan: 2 images,/m);
  for (const args of [['to-dir', '-', root, join(dir, 'stdin-dir'), '--dry-run'], ['to-dir', '--dry-run', '-', root, join(dir, 'stdin-dir')]]) {
    const td = await runCli(args, { stdin });
    assert.equal(td.code, 0, `${args.join(' ')}: ${td.stderr}`);
    assert.match(td.stdout, /^big\/repo:t1  sha256:/m);
    assert.match(td.stdout, /^plan: 2 image directories,/m);
  }
  const written = await runCli(['to-dir', '-', root, join(dir, 'stdin-dir')], { stdin });
  assert.equal(written.code, 0, written.stderr);
  assert.match(written.stdout, /^exported 2 images /);
  for (const args of [['verify', root, '--list', '-', '--fast'], ['verify', root, '--list=-', '--fast'], ['verify', '--list', '-', root, '--fast']]) {
    const v = await runCli(args, { stdin });
    assert.equal(v.code, 0, `${args.join(' ')}: ${v.stdout}${v.stderr}`);
    assert.match(v.stdout, /^checked \d+ repositories, 2 tags, .*: no problems;/m);
  }
  // The list really comes from standard input: a name there that the storage lacks is reported as a line of <stdin>.
  const missing = await runCli(['verify', root, '--list', '-', '--fast'], { stdin: 'big/repo:nope\n' });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stdout + missing.stderr, /<stdin>:1: /);
});

test('stdin: a directory given as standard input (`< DIR`) is refused (LIST_UNREADABLE), not read as an empty list: to-dir removes no export', async () => {
  const out = join(dir, 'stdin-dir-export');
  const list = join(dir, 'stdin-dir.list');
  await writeFile(list, 'big/repo:t1\n');
  assert.equal((await runCli(['to-dir', list, root, out])).code, 0);
  const before = await readdir(out);
  const fd = openSync(dir, 'r');
  try {
    for (const args of [['to-dir', '-', root, out], ['extract', '-', root, join(dir, 'stdin-dir-extract')], ['verify', root, '--list', '-', '--fast']]) {
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, [REGFS_BIN, ...args], { stdio: [fd, 'ignore', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
        let stderr = '';
        child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stderr }));
      });
      assert.equal(r.code, 1, `regfs ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^error: cannot read image list "<stdin>": .*directory.* \[LIST_UNREADABLE\]$/m);
    }
  } finally {
    closeSync(fd);
  }
  assert.deepEqual(await readdir(out), before, 'the export is untouched');
});

test('stdin: an empty argument is not standard input, and a stray `-` is named as typed', async () => {
  const r = await runCli(['extract', '', root, join(dir, 'never')], { stdin: 'big/repo:t1\n' });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^error: LIST is empty: .* \[USAGE\]$/m);
  assert.equal(existsSync(join(dir, 'never')), false);
  const u = await runCli(['ls', root, 'big/**', '-']);
  assert.equal(u.code, 2);
  assert.match(u.stderr, /Unknown argument: -( |$)/m);
  assert.doesNotMatch(u.stderr, /\0/);
});

/** stderr of a usage error: the error line, then where to read more; nothing else. */
function assertUsageError(r: { code: number | null; stderr: string; stdout: string }, help: string, message: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, r.stderr);
  assert.match(lines[0]!, /^error: .+ \[USAGE\]$/);
  assert.match(lines[0]!, message);
  assert.equal(lines[1], `Run "${help} --help" for usage.`);
}

test('usage: yargs\'s errors print in regfs\'s own form, with where to read the usage', async () => {
  const cases: Array<[string[], string, RegExp]> = [
    [[], 'regfs', /name a command/],
    [['nosuchcommand'], 'regfs', /^error: unknown command "nosuchcommand" \[USAGE\]$/],
    [['lss', root], 'regfs', /unknown command "lss"; did you mean ls\?/],
    [['extract', 'a', 'b'], 'regfs extract', /Not enough non-option arguments: got 2, need at least 3/],
    [['extract', 'a', 'b', 'c', '--link', 'symlink'], 'regfs extract', /Invalid values: Argument: link, Given: "symlink", Choices: "auto", "hardlink", "copy"/],
    [['ls', root, '--frobnicate'], 'regfs ls', /Unknown argument: frobnicate/],
    [['verify', root, '--target', 'v4'], 'regfs verify', /Given: "v4"/],
    // regfs's own usage errors read the same.
    [['to-dir', 'a', 'b'], 'regfs to-dir', /to-dir takes LIST SRC OUT/],
    [['inspect', root, 'wide/image:v1', '--raw', '--json'], 'regfs inspect', /--raw and --json exclude each other/],
  ];
  for (const [args, help, message] of cases) {
    const r = await runCli(args);
    assertUsageError(r, help, message);
  }
});

test('hints: an image list, an OCI image layout or dir: images where registry storage is expected say what they are and what reads them', async () => {
  const out = join(dir, 'hint-out');
  const swapped = await runCli(['extract', root, list, out]);
  assert.equal(swapped.code, 1, swapped.stderr);
  assert.match(swapped.stderr, /^error: ".*big\.list" is not registry storage: it is a file that reads as an image list; are the arguments in the wrong order\? .*LIST SRC OUT.* \[NOT_REGISTRY\]$/m);
  await assert.rejects(extract({ list: root, source: list, output: out }), (e) => isRegfsError(e, 'NOT_REGISTRY') && /reads as an image list/.test(e.message));

  const tarball = join(dir, 'registry.tar');
  await writeFile(tarball, Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]));
  const notList = await runCli(['ls', tarball]);
  assert.match(notList.stderr, /is not registry storage: it is a file, not a directory \[NOT_REGISTRY\]$/m);

  for (const args of [['extract', root, root, out], ['to-dir', root, root, out], ['verify', root, '--list', root]]) {
    const r = await runCli(args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /holds no \*\.list files: it is registry storage, not an image list; are the arguments in the wrong order\? .*LIST SRC OUT.* \[LIST_UNREADABLE\]$/m, args.join(' '));
  }

  // A dir: image, a tree of them as to-dir writes it, an OCI image layout as skopeo writes it.
  const image = join(dir, 'dir-image');
  await writeDirImage(image, makeImage({ format: 'oci', layers: [makeLayer('hint')] }));
  const tree = join(dir, 'dir-tree');
  assert.equal((await runCli(['to-dir', '-', root, tree], { stdin: 'big/repo:t1\n' })).code, 0);
  const layout = join(dir, 'oci-layout');
  await skopeoCopy(`dir:${image}`, `oci:${layout}:v1`);
  const cases: Array<[string, RegExp]> = [
    [image, /it is a skopeo dir: image directory: regfs from-dir imports it into registry storage \(regfs from-dir DIR DEST --name REPO:TAG\)/],
    [tree, /it is a tree of dir: images \(regfs to-dir writes such\): regfs from-dir imports it into registry storage/],
    [layout, /it is an OCI image layout: import it into registry storage with "regfs from-oci .*layout DEST"/],
  ];
  for (const [path, hint] of cases) {
    for (const args of [['ls', path], ['extract', list, path, out], ['verify', path]]) {
      const r = await runCli(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`error: "${path}" is not registry storage: `), r.stderr);
      assert.match(r.stderr, hint, args.join(' '));
    }
    await assert.rejects(listImages({ root: path }), (e) => isRegfsError(e, 'NOT_REGISTRY') && hint.test(e.message));
  }

  // from-dir the other way round: registry storage where the dir: images go.
  const fromStorage = await runCli(['from-dir', root, join(dir, 'from-storage')]);
  assert.equal(fromStorage.code, 1, fromStorage.stderr);
  assert.match(fromStorage.stderr, /holds no image directories \(none has a manifest\.json\): it is registry storage; are the arguments in the wrong order\? \(regfs from-dir IN DEST; regfs to-dir exports registry storage as dir: images\) \[NOT_DIR_TRANSPORT\]$/m);
});

/**
 * A source whose list selects 1 good image and leaves out 6 images in 8 problems: a missing
 * tag, a missing repository, a line that does not parse, an index missing both children (one
 * image, two problems), a repository line of whose 3 tags 2 are broken, and one of those 2
 * named again by a line of its own (a problem more, no image more).
 */
async function keepGoingSource(): Promise<{ src: string; list: string }> {
  const src = join(dir, 'kg-src');
  const base = makeLayer('kg');
  const image = (seed: string, arch = 'amd64'): Image => makeImage({ format: 'oci', layers: [base, makeLayer(seed)], platform: { os: 'linux', architecture: arch } });
  const index = makeIndex({ format: 'oci', children: [image('child-a', 'amd64'), image('child-b', 'arm64')] });
  await writeStorage(src, [
    { repo: 'kg/good', tag: 'v1', image: image('good') },
    { repo: 'kg/multi', tag: 'v1', image: index },
    { repo: 'kg/part', tag: 'ok', image: image('part-ok') },
  ]);
  const v2 = storageRoot(src);
  for (const c of index.children) await rm(revisionLinkPath(v2, parseRepoName('kg/multi'), c.digest));
  for (const t of ['broken1', 'broken2']) await mkdir(join(tagsDir(v2, parseRepoName('kg/part')), t, 'current'), { recursive: true });
  const list = join(dir, 'kg.list');
  await writeFile(list, ['kg/good:v1', 'kg/good:nope', 'kg/nosuch', 'two words', 'kg/multi:v1', 'kg/part', 'kg/part:broken1', ''].join('\n'));
  return { src, list };
}

test('keep-going: extract and to-dir say how many images they left out, counting images, not problems', async () => {
  const { src, list: kgList } = await keepGoingSource();
  for (const [command, verb] of [['extract', 'extracted'], ['to-dir', 'exported']] as const) {
    const out = join(dir, `kg-${command}`);
    const dry = await runCli([command, kgList, src, out, '--keep-going', '--dry-run']);
    assert.equal(dry.code, 3, dry.stderr);
    assert.match(dry.stdout, /^plan: .*; would leave out 6 images \(8 problems\)$/m, dry.stdout);
    const r = await runCli([command, kgList, src, out, '--keep-going']);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stderr.match(/^error: /gm)?.length, 8, r.stderr);
    // kg/good:v1 and kg/part:ok
    assert.match(r.stdout, new RegExp(`^${verb} 2 images into .*; left out 6 images \\(8 problems\\)$`, 'm'), r.stdout);
    const j = await runCli([command, kgList, src, out, '--keep-going', '--json']);
    const doc = JSON.parse(j.stdout) as { leftOut: number; problems: unknown[] };
    assert.equal(doc.leftOut, 6);
    assert.equal(doc.problems.length, 8);
  }
  const clean = await runCli(['extract', '-', src, join(dir, 'kg-clean'), '--keep-going'], { stdin: 'kg/good:v1\n' });
  assert.equal(clean.code, 0);
  assert.doesNotMatch(clean.stdout, /left out/);
});

test('keep-going: to-dir leaves out an image whose directory holds someone else\'s data, and does not touch that data', async () => {
  const out = join(dir, 'kg-foreign');
  const theirs = join(out, 'big/repo:t2');
  await mkdir(theirs, { recursive: true });
  await writeFile(join(theirs, 'notes.txt'), 'not an image');
  const r = await runCli(['to-dir', '-', root, out, '--keep-going'], { stdin: 'big/repo:t1\nbig/repo:t2\n' });
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /big\/repo:t2" is not empty and has no version file.*\[NOT_DIR_TRANSPORT\]/);
  assert.match(r.stdout, /^exported 1 image into .*; left out 1 image \(1 problem\)$/m);
  assert.deepEqual(await readdir(theirs), ['notes.txt']);
  assert.equal(await readFile(join(theirs, 'notes.txt'), 'utf8'), 'not an image');
  assert.ok((await readdir(join(out, 'big/repo:t1'))).includes('manifest.json'));
});

test('keep-going: from-dir says how many image directories it left out', async () => {
  const tree = join(dir, 'kg-tree');
  assert.equal((await runCli(['to-dir', '-', root, tree], { stdin: 'big/repo:t1\nwide/image:v1\n' })).code, 0);
  // wide/image:v1 loses three layers: one image, three problems.
  const manifest = JSON.parse(await readFile(join(tree, 'wide/image:v1/manifest.json'), 'utf8')) as { layers: Array<{ digest: string }> };
  for (const l of manifest.layers.slice(0, 3)) await rm(join(tree, 'wide/image:v1', l.digest.slice('sha256:'.length)));
  const r = await runCli(['from-dir', tree, join(dir, 'kg-from'), '--keep-going']);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stderr.match(/^error: /gm)?.length, 3, r.stderr);
  assert.match(r.stdout, /imported 1 image into .*; left out 1 image \(3 problems\)$/m, r.stdout);
});

test('help: every command\'s --help fits 80 columns, each example whole on its own line', async () => {
  const commands = ['extract', 'to-dir', 'from-dir', 'ls', 'inspect', 'verify', 'gc', 'rm'];
  for (const args of [['--help'], ...commands.map((c) => [c, '--help'])]) {
    // stdout is a pipe here, as in `regfs extract --help | less`; COLUMNS does not widen it.
    const r = await runCli(args, { env: { COLUMNS: '200' } });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    for (const line of lines) assert.ok(line.length <= 80, `${args.join(' ')}: a line of ${line.length} columns:\n${line}`);
    if (args.length === 1) continue;
    const start = lines.indexOf('Examples:');
    assert.ok(start > 0, `${args[0]} --help has examples`);
    const examples = lines.slice(start + 1).filter((l) => l.trim() !== '');
    assert.ok(examples.length >= 2);
    for (const line of examples) {
      // A description as a comment, or a whole command line; never a command cut in two.
      assert.match(line, new RegExp(`^  (# .+|(\\S.* \\| )?regfs ${args[0]} \\S.*)$`), `${args[0]} --help: ${JSON.stringify(line)}`);
    }
  }
});
