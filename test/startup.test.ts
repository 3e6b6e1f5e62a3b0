/**
 * Start-up of the built CLI (dist/cli/main.js, bundled by `npm run build`): what it loads before
 * a command runs, and that the bundle still knows its version wherever it is run from. The time
 * itself is measured by `npm run bench` (docs/performance.md), not here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { test } from 'node:test';
import { compiled, REGFS_BIN } from './helpers/cli.js';
import { withTempDir } from './helpers/tree.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/**
 * Run the CLI with a preloaded module that prints, on exit, the Node built-in modules the
 * process loaded; returns them with the exit status and standard output.
 */
function loaded(args: string[], script = REGFS_BIN): { status: number | null; stdout: string; builtins: string[] } {
  const hook = `
    process.on('exit', () => {
      const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule ')).map((m) => m.slice(13));
      process.stderr.write('\\n' + JSON.stringify({ builtins }) + '\\n');
    });`;
  const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, script, ...args], { encoding: 'utf8' });
  const report = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { builtins: string[] };
  return { status: r.status, stdout: r.stdout, builtins: report.builtins };
}

test('--version prints the package version, run from a directory outside the package', async () => {
  await withTempDir(async (dir) => {
    const r = spawnSync(process.execPath, [REGFS_BIN, '--version'], { encoding: 'utf8', cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${VERSION}\n`);
  });
});

test('--version and --help load no operation: no hashing, no crypto, no fs/promises', async () => {
  await withTempDir(async (dir) => {
    // What Node itself loads to run an ES module (it may load some of these on its own).
    const empty = join(dir, 'empty.mjs');
    await writeFile(empty, '');
    const node = loaded([], empty).builtins;
    const heavy = ['crypto', 'fs/promises', 'perf_hooks'].filter((m) => !node.includes(m));
    assert.ok(heavy.length > 0);
    for (const args of [['--version'], ['--help'], ['extract', '--help']]) {
      const r = loaded(args);
      assert.equal(r.status, 0, args.join(' '));
      for (const m of heavy) assert.ok(!r.builtins.includes(m), `regfs ${args.join(' ')} loaded node:${m}`);
    }
  });
});

test('--version loads nothing only a message or a terminal needs: no assert, util, tty or os', async () => {
  await withTempDir(async (dir) => {
    const empty = join(dir, 'empty.mjs');
    await writeFile(empty, '');
    const node = loaded([], empty).builtins;
    // yargs's checks (node:assert), yargs-parser's and y18n's messages (node:util), chalk's own
    // colour detection (node:tty, node:os): none of them runs for --version.
    // (node:util is loaded by this harness's own report, written to stderr at exit.)
    const unneeded = ['assert', 'util', 'tty', 'os'].filter((m) => !node.includes(m));
    for (const m of ['assert', 'tty', 'os']) assert.ok(unneeded.includes(m), `Node loads node:${m} for an empty module`);
    const r = loaded(['--version']);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, `${VERSION}\n`);
    for (const m of unneeded) assert.ok(!r.builtins.includes(m), `regfs --version loaded node:${m}`);
  });
});

test('a command loads its operation when it runs', () => {
  const r = loaded(['ls', FIXTURE_ROOT]);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /library\/busybox:1\.36/);
  assert.ok(r.builtins.includes('crypto'), 'ls hashes manifests: node:crypto is loaded');
});

test("yargs's words are English whatever LANG says, like the rest of regfs", () => {
  const env = { ...process.env, LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8' };
  const help = spawnSync(process.execPath, [REGFS_BIN, '--help'], { encoding: 'utf8', env });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^Commands:$/m);
  assert.match(help.stdout, /^Options:$/m);
  const usage = spawnSync(process.execPath, [REGFS_BIN, 'ls'], { encoding: 'utf8', env });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /Not enough non-option arguments/);
});

test("the CLI runs as CommonJS: neither start-up nor a command's chunks need Node's ES module loader", async () => {
  await withTempDir(async (dir) => {
    // A CommonJS preload (an --import hook would itself start the ES module loader).
    const hook = join(dir, 'hook.cjs');
    await writeFile(
      hook,
      `process.on('exit', () => process.stderr.write('\\n' + JSON.stringify(process.moduleLoadList.filter((m) => m.startsWith('NativeModule internal/modules/esm/'))) + '\\n'));`,
    );
    for (const args of [['--version'], ['ls', FIXTURE_ROOT]]) {
      const r = spawnSync(process.execPath, ['--require', hook, REGFS_BIN, ...args], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const esm = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as string[];
      for (const m of ['module_job', 'translators']) {
        assert.ok(!esm.includes(`NativeModule internal/modules/esm/${m}`), `regfs ${args.join(' ')} loaded internal/modules/esm/${m}`);
      }
    }
  });
});

test('a command whose promise never settles ends as an internal error, not as a success', async () => {
  await withTempDir(async (dir) => {
    // The built CLI with main's promise replaced by one that never settles: the process ends
    // when nothing is left to wait for, as it would after such a bug.
    const cli = join(dir, 'cli');
    cpSync(dirname(REGFS_BIN), cli, { recursive: true });
    const bundle = join(cli, 'bundle.js');
    const text = readFileSync(bundle, 'utf8');
    const call = /\b(\w+)\.done\.then\(/g;
    assert.equal([...text.matchAll(call)].length, 1, 'the bundle waits for one run');
    await writeFile(bundle, text.replace(call, 'new Promise(() => {}).then('));
    const r = spawnSync(process.execPath, [join(cli, 'main.js'), '--version'], { encoding: 'utf8' });
    assert.equal(r.status, 70);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /internal error .*the command stopped before it finished/);
  });
});

test('--json: a command whose promise never settles still prints its one document, with the internal error', async () => {
  await withTempDir(async (dir) => {
    // The built CLI with a command's handler replaced by one that never settles, after the run
    // has begun (its output channel made).
    const cli = copyCli(dir);
    const bundle = join(cli, 'bundle.js');
    const text = readFileSync(bundle, 'utf8');
    const call = '= await mod.handler(';
    assert.equal(text.split(call).length, 2, 'the bundle calls a handler once');
    await writeFile(bundle, text.replace(call, '= await new Promise(() => {}), await mod.handler('));
    const r = spawnSync(process.execPath, [join(cli, 'main.js'), 'ls', '--json', FIXTURE_ROOT], { encoding: 'utf8' });
    assert.equal(r.status, 70);
    const doc = JSON.parse(r.stdout) as { command: string; exitCode: number; error: { code: string; message: string } };
    assert.equal(doc.command, 'ls');
    assert.equal(doc.exitCode, 70);
    assert.equal(doc.error.code, 'INTERNAL');
    assert.match(doc.error.message, /the command stopped before it finished/);
    assert.match(r.stderr, /internal error .*the command stopped before it finished/);
  });
});

/** A copy of the built CLI as a package holds it: `DIR/dist/cli`, with the package.json at `DIR`. */
function copyCli(dir: string): string {
  const cli = join(dir, 'dist', 'cli');
  cpSync(dirname(REGFS_BIN), cli, { recursive: true });
  cpSync(join(dirname(REGFS_BIN), '..', '..', 'package.json'), join(dir, 'package.json'));
  return cli;
}

/** Every file below `dir`. */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
}

test('the CLI runs from the code caches the build made: each file it loads has one, and V8 takes it', async () => {
  await withTempDir(async (dir) => {
    for (const args of [['--version'], ['ls', FIXTURE_ROOT]]) {
      const files = compiled(dir, REGFS_BIN, args);
      assert.ok(files.some((f) => f.file.endsWith('bundle.js')));
      if (args[0] === 'ls') assert.ok(files.some((f) => f.file.includes(`${sep}chunks${sep}`)), 'ls loads chunks');
      for (const f of files) {
        assert.ok(f.offered, `regfs ${args.join(' ')}: no cache for ${f.file}`);
        assert.ok(!f.rejected, `regfs ${args.join(' ')}: V8 rejected the cache of ${f.file}`);
      }
    }
  });
});

test('the caches are taken whatever the files\' times: an install by npm unpacks each cache before its file', async () => {
  await withTempDir(async (dir) => {
    const cli = copyCli(dir);
    const now = Date.now() / 1000;
    for (const f of filesBelow(cli)) utimesSync(f, now, f.endsWith('.cache') ? now - 3600 : now);
    const files = compiled(dir, join(cli, 'main.js'), ['ls', FIXTURE_ROOT]);
    assert.ok(files.length > 1);
    for (const f of files) assert.ok(f.offered && !f.rejected, `${f.file}: offered ${f.offered}, rejected ${f.rejected}`);
  });
});

test('a bundle file changed after the build is compiled from its source, not from its old cache, whatever its time', async () => {
  await withTempDir(async (dir) => {
    const cli = copyCli(dir);
    const bundle = join(cli, 'bundle.js');
    // The same length, so that V8's own check (of the source's length) would not see it; and
    // a time older than its cache's.
    const text = readFileSync(bundle, 'utf8');
    const edited = text.replace('var outputFailed = false;', 'var outputFailed = !true;');
    assert.equal(edited.length, text.length);
    assert.notEqual(edited, text);
    await writeFile(bundle, edited);
    const earlier = Date.now() / 1000 - 3600;
    utimesSync(bundle, earlier, earlier);
    const files = compiled(dir, join(cli, 'main.js'), ['--version']);
    const entry = files.find((f) => f.file === bundle);
    assert.ok(entry !== undefined);
    assert.equal(entry.offered, false);
    // The others are as the build left them.
    for (const f of files) if (f.file !== bundle) assert.ok(f.offered, f.file);
  });
});

test('a cache that is a FIFO, a directory, a symbolic link loop, empty, or of another form is no cache: the CLI runs, from its source', async () => {
  await withTempDir(async (dir) => {
    const cli = copyCli(dir);
    const bundle = join(cli, 'bundle.js');
    const cache = `${bundle}.cache`;
    const good = readFileSync(cache);
    const cases: Array<[string, () => void]> = [
      ['a FIFO', () => spawnSync('mkfifo', [cache])],
      ['a directory', () => mkdirSync(cache)],
      ['a symbolic link loop', () => (symlinkSync(`${cache}.2`, cache), symlinkSync(cache, `${cache}.2`))],
      ['empty', () => writeFileSync(cache, '')],
      ['V8 data alone, as an older build wrote it', () => writeFileSync(cache, good.subarray(good.length - 1000))],
      ['cut short', () => writeFileSync(cache, good.subarray(0, 30))],
    ];
    for (const [what, make] of cases) {
      rmSync(cache, { recursive: true, force: true });
      rmSync(`${cache}.2`, { force: true });
      make();
      const files = compiled(dir, join(cli, 'main.js'), ['--version']);
      assert.equal(files.find((f) => f.file === bundle)?.offered, false, what);
    }
  });
});

test('the report of a bug is an internal error whose stack trace names a file by its path in the package, with a cache or without; nothing built names the directory it was built in', async () => {
  await withTempDir(async (dir) => {
    const root = join(dirname(REGFS_BIN), '..', '..');
    for (const f of filesBelow(join(root, 'dist', 'cli'))) assert.ok(!readFileSync(f).includes(root), `${f} names ${root}`);
    // A bug's report (the package.json gone: its version cannot be read), from the caches and from the source.
    const cli = copyCli(dir);
    rmSync(join(dir, 'package.json'));
    for (const withCaches of [true, false]) {
      if (!withCaches) for (const f of filesBelow(cli)) if (f.endsWith('.cache')) rmSync(f);
      const r = spawnSync(process.execPath, [join(cli, 'main.js'), '--version'], { encoding: 'utf8' });
      // An internal error, not Node's report of an unhandled rejection.
      assert.equal(r.status, 70, r.stderr);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^regfs: internal error \(a bug; please report it with this text\):\nError: ENOENT/);
      assert.doesNotMatch(r.stderr, /Node\.js v/);
      assert.match(r.stderr, /\n +at packageVersion \(regfs\/dist\/cli\/bundle\.js:\d+:\d+\)\n/, r.stderr);
      assert.ok(!r.stderr.includes(join(cli, 'bundle.js')) && !r.stderr.includes(root), r.stderr);
    }
  });
});
