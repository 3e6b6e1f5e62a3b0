/** The regfs executable as a user runs it: exit codes, stdout/stderr, JSON, standard input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { tempDir } from './helpers/tree.js';

const noStack = (s: string): void => assert.doesNotMatch(s, /^\s+at /m, 'no stack trace');

test('cli: extract prints a summary, --json a result, and exits 0', async () => {
  const t = await tempDir();
  try {
    const list = join(t.dir, 'images.list');
    await writeFile(list, 'team/app:v1\nmultiarch/tool:1.0\n');
    const r = await runCli(['extract', list, FIXTURE_ROOT, join(t.dir, 'out')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^extracted 2 images into .*: blobs \d+ linked, 0 copied, 0 already there;/);
    assert.equal(r.stderr, '', 'no progress bar when stderr is not a terminal');
    const j = await runCli(['extract', list, FIXTURE_ROOT, join(t.dir, 'out'), '--json']);
    assert.equal(j.code, 0);
    const result = JSON.parse(j.stdout) as { images: Array<{ ref: string }>; stats: { blobsExisting: number; linksWritten: number } };
    assert.deepEqual(result.images.map((i) => i.ref), ['team/app:v1', 'multiarch/tool:1.0']);
    assert.equal(result.stats.linksWritten, 0);
    assert.ok(result.stats.blobsExisting > 0);
  } finally {
    await t.cleanup();
  }
});

test('cli: a list on standard input, and --dry-run', async () => {
  const t = await tempDir();
  try {
    const r = await runCli(['extract', '-', FIXTURE_ROOT, join(t.dir, 'out'), '--dry-run'], { stdin: '# comment\r\nlibrary/busybox:1.36\r\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^library\/busybox:1\.36  sha256:[0-9a-f]{64}  oci  2 blobs/m);
    assert.match(r.stdout, /plan: 1 image, 3 blobs \(0 already in the output\), .* 8 files \(3 blob data, 5 links\) .*nothing written/);
    await assert.rejects(stat(join(t.dir, 'out')));
  } finally {
    await t.cleanup();
  }
});

test('cli: problems exit 1 naming file, line and code, with no stack trace; --keep-going exits 3', async () => {
  const t = await tempDir();
  try {
    const list = join(t.dir, 'images.list');
    await writeFile(list, 'team/app:v1\nteam/app:nope\nteam/UPPER\n');
    const r = await runCli(['extract', list, FIXTURE_ROOT, join(t.dir, 'out')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`error: ${list}:2: team/app:nope: .* \\[TAG_UNKNOWN\\]`));
    assert.match(r.stderr, new RegExp(`error: ${list}:3: .* \\[NAME_INVALID\\]`));
    assert.match(r.stderr, /error: 2 problems found; nothing was written \[INCOMPLETE\]/);
    assert.equal(r.stdout, '');
    noStack(r.stderr);
    await assert.rejects(stat(join(t.dir, 'out')));
    const k = await runCli(['extract', list, FIXTURE_ROOT, join(t.dir, 'out'), '--keep-going']);
    assert.equal(k.code, 3);
    assert.match(k.stdout, /^extracted 1 image /);
    assert.match(k.stderr, /\[TAG_UNKNOWN\]/);
  } finally {
    await t.cleanup();
  }
});

test('cli: usage errors exit 2; bad paths exit 1 with a code', async () => {
  for (const args of [[], ['extract'], ['extract', 'a', 'b'], ['extract', 'a', 'b', 'c', '--link', 'symlink'], ['extract', 'a', 'b', 'c', '--frobnicate'], ['nosuchcommand'], ['extract', '-', FIXTURE_ROOT, '/tmp/regfs-never', '--jobs', '0'], ['extract', '-', FIXTURE_ROOT, '/tmp/regfs-never', '--jobs', 'many']]) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    noStack(r.stderr);
  }
  const r = await runCli(['extract', '/nonexistent.list', FIXTURE_ROOT, '/tmp/regfs-never']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot read image list "\/nonexistent\.list".*\[LIST_UNREADABLE\]/);
  const s = await runCli(['extract', '-', '/nonexistent-src', '/tmp/regfs-never']);
  assert.equal(s.code, 1);
  assert.match(s.stderr, /\[NOT_REGISTRY\]/);
  noStack(s.stderr);
});

test('cli: --help documents the commands and exit codes', async () => {
  const r = await runCli(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /regfs extract <list> <src> <out>/);
  assert.match(r.stdout, /Exit codes: 0 done; 1 error/);
  const e = await runCli(['extract', '--help']);
  assert.match(e.stdout, /--keep-going/);
  assert.match(e.stdout, /--link/);
});

test('cli: a progress bar on stderr when it is a terminal, cleared at the end', async () => {
  const { main } = await import('../src/cli/app.js');
  const { PassThrough } = await import('node:stream');
  const t = await tempDir();
  try {
    const list = join(t.dir, 'images.list');
    await writeFile(list, 'multiarch/tool:1.0\n');
    const stdout = new PassThrough();
    const stderr = Object.assign(new PassThrough(), { isTTY: true });
    let err = '';
    stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const code = await main(['extract', list, FIXTURE_ROOT, join(t.dir, 'out')], { stdout, stderr });
    assert.equal(code, 0);
    assert.match(err, /\rblobs  \[#+\] 10\/10/);
    assert.match(err, /\rtags   \[#+\] 1\/1/);
    assert.ok(err.endsWith('\r\x1b[K'), 'the bar is cleared');
  } finally {
    await t.cleanup();
  }
});
