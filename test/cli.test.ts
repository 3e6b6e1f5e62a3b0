/** The regfs executable as a user runs it: exit codes, stdout/stderr, JSON, standard input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, existsSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PROBLEMS_SHOWN } from '../src/cli/output.js';
import { makeArtifact, makeImage, makeLayer } from '../scripts/lib/images.js';
import { writeStorage } from '../scripts/lib/write-storage.js';
import { REGFS_BIN, runCli } from './helpers/cli.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { copyTree, tempDir } from './helpers/tree.js';

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
    assert.match(r.stdout, /^library\/busybox:1\.36  sha256:[0-9a-f]{64}  oci  linux\/amd64  2 blobs  4\.3 KiB$/m);
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

test('cli: a boolean option given a value other than true or false, or an option without its value, is a usage error that writes and deletes nothing', async () => {
  const t = await tempDir();
  try {
    const root = join(t.dir, 'root');
    await copyTree(FIXTURE_ROOT, root);
    const tag = join(root, 'docker/registry/v2/repositories/team/app/_manifests/tags/v2');
    const list = join(t.dir, 'images.list');
    await writeFile(list, 'team/app:v1\n');
    const out = join(t.dir, 'out');
    for (const args of [
      ['rm', root, 'team/app:v2', '--dry-run=yes'],
      ['extract', list, root, out, '--dry-run=1'],
      ['gc', root, '--apply=on'],
      ['ls', root, '--json=1'],
      ['ls', root, '--color=always'],
      ['verify', root, '--list'],
      ['inventory', root, '-o'],
      ['bundle', list, root, join(t.dir, 'x.tar'), '--have'],
      ['from-oci', join(t.dir, 'layout'), root, '--name'],
      ['extract', list, root, out, '--link'],
      ['extract', list, root, out, '--jobs'],
      ['--s3-endpoint'],
    ]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^error: .*\[USAGE\]$/m, args.join(' '));
      noStack(r.stderr);
    }
    assert.ok((await stat(tag)).isDirectory(), 'rm --dry-run=yes deleted nothing');
    await assert.rejects(stat(out), 'extract --dry-run=1 wrote nothing');
    for (const [args, command, message] of [
      [['bogus', '--json'], 'bogus', /^unknown command "bogus"$/],
      [['lss', root, '--json'], 'lss', /^unknown command "lss"; did you mean ls\?$/],
      [['ls', root, '--bogus', '--json=true'], 'ls'],
      [['--s3-endpoint', 'http://127.0.0.1:1', 'ls', '--json'], 'ls'],
      [['verify', root, '--list', '--json'], 'verify'],
    ] as const) {
      const r = await runCli([...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      const doc = JSON.parse(r.stdout) as { command: string; error: { code: string } };
      assert.equal(doc.command, command, args.join(' '));
      assert.equal(doc.error.code, 'USAGE', args.join(' '));
      if (message !== undefined) assert.match((doc.error as { message?: string }).message ?? '', message, args.join(' '));
    }
    for (const args of [['help', 'ls'], ['help', 'extract'], ['help']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, args.length > 1 ? new RegExp(`^regfs ${args[1]!} `, 'm') : /^Usage: regfs <command>/m, args.join(' '));
    }
  } finally {
    await t.cleanup();
  }
});

test('cli: "-" as the tree a command writes is a usage error, not a directory named "-"; inventory -o - is standard output', async () => {
  const t = await tempDir();
  try {
    const list = join(t.dir, 'images.list');
    await writeFile(list, 'team/app:v1\n');
    const layout = join(t.dir, 'layout');
    const cases = [
      ['extract', list, FIXTURE_ROOT, '-'],
      ['to-dir', list, FIXTURE_ROOT, '-'],
      ['to-dir', '--image', 'team/app:v1', FIXTURE_ROOT, '-'],
      ['to-oci', list, FIXTURE_ROOT, '-'],
      ['from-dir', join(t.dir, 'dirs'), '-'],
      ['from-oci', layout, '-'],
      ['apply', join(t.dir, 'x.tar'), '-'],
    ];
    for (const args of cases) {
      const r = await runCli(args, { cwd: t.dir });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^error: (OUT|DIR|LAYOUT|DEST) "-": this command writes a tree of files.* \[USAGE\]$/m, args.join(' '));
    }
    await assert.rejects(stat(join(t.dir, '-')), 'no directory named "-" was made');
    const inv = await runCli(['inventory', FIXTURE_ROOT, '-o', '-'], { cwd: t.dir });
    assert.equal(inv.code, 0, inv.stderr);
    assert.match(inv.stdout, /\S/, 'the inventory went to standard output');
    assert.match(inv.stderr, /to standard output; /);
    await assert.rejects(stat(join(t.dir, '-')), 'no file named "-" was written');
  } finally {
    await t.cleanup();
  }
});

test('cli: an empty argument (an unset "$OUT" in a script) is a usage error naming it, never the current directory', async () => {
  const t = await tempDir();
  try {
    const work = join(t.dir, 'cwd');
    await mkdir(work);
    const list = join(t.dir, 'images.list');
    await writeFile(list, 'team/app:v1\n');
    const layout = join(t.dir, 'layout');
    assert.equal((await runCli(['to-oci', list, FIXTURE_ROOT, layout])).code, 0);
    const bundle = join(t.dir, 'b.tar');
    assert.equal((await runCli(['bundle', list, FIXTURE_ROOT, bundle])).code, 0);
    const cases: Array<[string[], string]> = [
      [['extract', list, FIXTURE_ROOT, ''], 'OUT'],
      [['extract', list, '', join(t.dir, 'o')], 'SRC'],
      [['extract', '', FIXTURE_ROOT, join(t.dir, 'o')], 'LIST'],
      [['to-dir', list, FIXTURE_ROOT, ''], 'OUT'],
      [['to-oci', list, FIXTURE_ROOT, ''], 'LAYOUT'],
      [['from-oci', layout, ''], 'DEST'],
      [['apply', bundle, ''], 'DEST'],
      [['bundle', list, FIXTURE_ROOT, ''], 'BUNDLE'],
      [['inventory', FIXTURE_ROOT, '-o', ''], '--output'],
      [['gc', '', '--apply'], 'ROOT'],
      [['verify', FIXTURE_ROOT, '--list', ''], '--list'],
    ];
    for (const [args, what] of cases) {
      const r = await runCli(args, { cwd: work });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^error: ${what} is empty: .* \\[USAGE\\]$`, 'm'), args.join(' '));
      noStack(r.stderr);
      assert.deepEqual(await readdir(work), [], `${args.join(' ')}: nothing written into the current directory`);
    }
    const json = await runCli(['extract', list, FIXTURE_ROOT, '', '--json'], { cwd: work });
    assert.equal(json.code, 2);
    assert.equal((JSON.parse(json.stdout) as { error: { code: string } }).error.code, 'USAGE');
  } finally {
    await t.cleanup();
  }
});

test('cli: an option given twice takes its last value, as getopt does (it crashed, or was ignored); after -- every word is an argument', async () => {
  const t = await tempDir();
  try {
    const list = join(t.dir, 'images.list');
    await writeFile(list, 'team/app:v1\n');
    // --link copy last: copied, not hard-linked.
    const out = join(t.dir, 'copied');
    const r = await runCli(['extract', list, FIXTURE_ROOT, out, '--link', 'hardlink', '--link', 'copy', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const stats = (JSON.parse(r.stdout) as { stats: { blobsLinked: number; blobsCopied: number } }).stats;
    assert.deepEqual([stats.blobsLinked, stats.blobsCopied > 0], [0, true]);
    // Single-value options given twice: no internal error, the last one used.
    for (const args of [
      ['to-dir', '--image', 'team/app:v2', '--image', 'team/app:v1', FIXTURE_ROOT, join(t.dir, 'd'), '--dry-run', '--json'],
      ['verify', FIXTURE_ROOT, '--list', join(t.dir, 'nosuch.list'), '--list', list, '--json'],
      ['inventory', FIXTURE_ROOT, '-o', join(t.dir, 'a.inv'), '-o', join(t.dir, 'b.inv')],
      ['extract', list, FIXTURE_ROOT, join(t.dir, 'j'), '--jobs', '2', '--jobs', '3', '--dry-run'],
    ]) {
      const x = await runCli(args);
      assert.equal(x.code, 0, `${args.join(' ')}: ${x.stdout}${x.stderr}`);
      noStack(x.stderr);
    }
    assert.equal(existsSync(join(t.dir, 'b.inv')) && !existsSync(join(t.dir, 'a.inv')), true, 'inventory -o: the last one');
    // After --, a word is an argument even when it begins with "-" or looks like an option.
    const all = await runCli(['ls', FIXTURE_ROOT]);
    const some = await runCli(['ls', FIXTURE_ROOT, '--', 'legacy/*']);
    assert.equal(some.code, 0, some.stderr);
    assert.ok(some.stdout.split('\n').length < all.stdout.split('\n').length, 'the pattern after -- is used');
    assert.match(some.stdout, /^legacy\//m);
    const ex = await runCli(['extract', '--dry-run', '--', list, FIXTURE_ROOT, join(t.dir, '-x')]);
    assert.equal(ex.code, 0, ex.stderr);
    // `regfs -- ls ROOT`: the command after a leading -- (it printed nothing, exit 0); a word
    // there that is no command is not taken for one.
    const lead = await runCli(['--', 'ls', FIXTURE_ROOT]);
    assert.equal(lead.code, 0, lead.stderr);
    assert.equal(lead.stdout, all.stdout);
    for (const args of [['--', '--', 'ls', FIXTURE_ROOT], ['--', '--help']]) {
      const x = await runCli(args);
      assert.equal(x.code, 2, `${args.join(' ')}: ${x.stdout}${x.stderr}`);
      assert.match(x.stderr, /unknown command "--(help)?"/);
    }
    // `regfs help COMMAND … -- …` shows help: it ran the command, with "--help" for its OUT.
    const help = await runCli(['help', 'to-dir', '--image', 'team/app:v1', '--', FIXTURE_ROOT], { cwd: t.dir });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^regfs to-dir /m);
    assert.equal(existsSync(join(t.dir, '--help')), false);
    // An option right before -- has no value (yargs took the word after it).
    const before = await runCli(['ls', FIXTURE_ROOT, '-j', '--', '4']);
    assert.equal(before.code, 2);
    assert.match(before.stderr, /^error: -j has no value: -- ends the options \[USAGE\]$/m);
    // Given twice, the last value counts, an empty first one too.
    assert.equal((await runCli(['verify', FIXTURE_ROOT, '--upload-age', '', '--upload-age', '5'])).code, 0);
    // An empty value of a number option is a usage error too (it read as 0: every upload stale).
    for (const args of [
      ['verify', FIXTURE_ROOT, '--upload-age', ''],
      ['verify', FIXTURE_ROOT, '--upload-age', ' '],
      ['gc', FIXTURE_ROOT, '--upload-age='],
      ['extract', list, FIXTURE_ROOT, join(t.dir, 'e'), '--jobs', ''],
    ]) {
      const x = await runCli(args);
      assert.equal(x.code, 2, `${args.join(' ')}: ${x.stdout}${x.stderr}`);
      assert.match(x.stderr, /^error: --(upload-age|jobs) is empty: .* \[USAGE\]$/m, args.join(' '));
    }
  } finally {
    await t.cleanup();
  }
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
    assert.match(err, /\rresolving \[-+\]  0\/1  /);
    assert.match(err, /\rwriting   \[-+\]  0\/\d+  /);
    assert.ok(err.endsWith('\r\x1b[K'), 'the bar is cleared');
  } finally {
    await t.cleanup();
  }
});

test('cli: a list of 1,000,000 missing images: every problem streamed into --json, a bounded screenful on stderr, no problem held', async () => {
  const t = await tempDir();
  try {
    const n = 1_000_000;
    const list = join(t.dir, 'missing.list');
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(`nosuch/app${i}:v1`);
    await writeFile(list, `${lines.join('\n')}\n`);
    const out = join(t.dir, 'out.json');
    const rss = join(t.dir, 'rss');
    // The child reports its own peak RSS (KiB) as it exits.
    const preload = `data:text/javascript,${encodeURIComponent(
      `import { writeFileSync } from 'node:fs'; process.on('exit', () => writeFileSync(${JSON.stringify(rss)}, String(process.resourceUsage().maxRSS)));`,
    )}`;
    const fd = openSync(out, 'w');
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', preload, REGFS_BIN, 'extract', list, FIXTURE_ROOT, join(t.dir, 'dest'), '--json'], {
        stdio: ['ignore', fd, 'pipe'],
        env: { ...process.env, FORCE_COLOR: '0' },
      });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });
    closeSync(fd);
    assert.equal(r.code, 1, r.stderr.slice(-2000));
    noStack(r.stderr);
    const errLines = r.stderr.trimEnd().split('\n');
    assert.equal(errLines.length, PROBLEMS_SHOWN + 2, 'the first problems, one line for the rest, the error');
    assert.match(errLines[0]!, /missing\.list:1: nosuch\/app0:v1: repository nosuch\/app0 does not exist .*\[NAME_UNKNOWN\]$/);
    assert.equal(errLines.at(-2), `error: and ${(n - PROBLEMS_SHOWN).toLocaleString('en-US')} more problems (${(n - PROBLEMS_SHOWN).toLocaleString('en-US')} NAME_UNKNOWN); --json lists every one`);
    assert.equal(errLines.at(-1), `error: ${n} problems found; nothing was written [INCOMPLETE]`);
    // stdout: one JSON document with every problem, in list order (read line by line: it is larger than a string may be).
    let codes = 0;
    let lastLine = 0;
    let ordered = true;
    const tail: string[] = [];
    const rl = createInterface({ input: createReadStream(out, 'utf8'), crlfDelay: Infinity });
    for await (const line of rl) {
      tail.push(line);
      if (tail.length > 12) tail.shift();
      if (line === '      "code": "NAME_UNKNOWN",') codes++;
      const m = /^ {6}"line": (\d+),$/.exec(line);
      if (m !== null) {
        ordered &&= Number(m[1]) === lastLine + 1;
        lastLine = Number(m[1]);
      }
    }
    assert.equal(codes, n);
    assert.equal(lastLine, n);
    assert.ok(ordered, 'every line once, in order');
    // The document ends with the run's outcome and its error.
    const end = JSON.parse(`{${tail.slice(tail.indexOf('  ],') + 1).join('\n')}`) as Record<string, unknown>;
    assert.deepEqual(end, { ok: false, exitCode: 1, error: { code: 'INCOMPLETE', message: `${n} problems found; nothing was written` } });
    const peakMiB = Number(await readFile(rss, 'utf8')) / 1024;
    // About 190 MiB measured: the list's text and a compact table of the references seen; no
    // problem is held (they stream to stdout as found). 0.95 GiB when every problem was held.
    assert.ok(peakMiB < 400, `peak RSS ${peakMiB.toFixed(0)} MiB`);
    await assert.rejects(stat(join(t.dir, 'dest')), 'nothing written');
  } finally {
    await t.cleanup();
  }
});

test('cli: a label or artifact type holding a newline or an escape sequence stays on its line in ls and inspect', async () => {
  const t = await tempDir();
  try {
    const root = join(t.dir, 'r');
    const image = makeImage({ format: 'oci', layers: [makeLayer('esc')], labels: { note: 'one\nLINE2  forged', title: 'x\x1b[2J' } });
    const sig = makeArtifact({ subject: image, artifactType: 'application/x\nforged', layerMediaType: 'application/octet-stream', payload: 'p' });
    await writeStorage(root, [
      { repo: 'esc/app', tag: 'v1', image },
      { repo: 'esc/app', tag: 'sig', image: sig },
    ]);
    const ls = await runCli(['ls', root]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stdout.trimEnd().split('\n').length, 2, ls.stdout);
    assert.match(ls.stdout, /application\/x\\nforged/);
    const inspect = await runCli(['inspect', root, 'esc/app:v1']);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.match(inspect.stdout, /^ {4}note=one\\nLINE2  forged$/m);
    assert.match(inspect.stdout, /^ {4}title=x\\u001b\[2J$/m);
    assert.doesNotMatch(inspect.stdout + ls.stdout, /\x1b/);
    // --json keeps the strings as they are (JSON escapes them).
    const json = JSON.parse((await runCli(['inspect', root, 'esc/app:v1', '--json'])).stdout) as { image: { labels: Record<string, string> } };
    assert.equal(json.image.labels['note'], 'one\nLINE2  forged');
  } finally {
    await t.cleanup();
  }
});
