/**
 * The npm package as a user gets it: `npm pack` in a copy of the project without dist/ (as a
 * fresh clone is), then `npm install -g` of the tarball into a temporary prefix, offline (the
 * dependencies come from the npm cache `npm ci` filled). The installed `regfs` runs, the library
 * imports as `regfs` and extracts, and the tarball holds what the help promises and no more.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { withTempDir } from './helpers/tree.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** What a clone does not have: installed or built files, and local run output. */
const NOT_IN_A_CLONE = new Set(['node_modules', 'dist', '.git', 'demo-out', '.bench']);
/** The packed tarball's size bound: the fixtures or node_modules in it would break it. */
const MAX_TARBALL_BYTES = 512 * 1024;

function run(cmd: string, args: string[], cwd: string): { stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.error?.message ?? ''}\n${r.stdout}\n${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

test('npm pack, npm install -g of the tarball: the installed regfs runs, imports and ships its docs and licence', async () => {
  await withTempDir(async (dir) => {
    const clone = join(dir, 'clone');
    await cp(ROOT, clone, { recursive: true, filter: (src) => !NOT_IN_A_CLONE.has(relative(ROOT, src).split('/')[0]!) });
    await symlink(join(ROOT, 'node_modules'), join(clone, 'node_modules'));
    const pkg = JSON.parse(await readFile(join(clone, 'package.json'), 'utf8')) as { name: string; version: string };

    // prepack builds dist/ in the clone; --json keeps the build's output off stdout.
    run('npm', ['pack', '--json', '--pack-destination', dir], clone);
    const tarball = join(dir, `${pkg.name}-${pkg.version}.tgz`);
    assert.ok((await stat(tarball)).size < MAX_TARBALL_BYTES, `${tarball}: ${(await stat(tarball)).size} bytes`);
    const files = run('tar', ['-tzf', tarball], dir).stdout.split('\n').filter((l) => l !== '').map((l) => l.replace(/^package\//, ''));
    const docs = (await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
    assert.ok(docs.length > 0);
    for (const f of ['package.json', 'LICENSE', 'README.md', 'CHANGELOG.md', 'dist/cli/main.js', 'dist/index.js', 'dist/index.d.ts', ...docs]) {
      assert.ok(files.includes(f), `the tarball lacks ${f}`);
    }
    const tops = new Set(files.map((f) => f.split('/')[0]));
    assert.deepEqual([...tops].sort(), ['CHANGELOG.md', 'LICENSE', 'README.md', 'dist', 'docs', 'package.json']);

    const prefix = join(dir, 'prefix');
    const install = run('npm', ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', tarball], dir);
    const said = `${install.stdout}${install.stderr}`;
    assert.doesNotMatch(said, /prepare|install-scripts|^npm warn/im, said);

    const installed = join(prefix, 'lib', 'node_modules', pkg.name);
    const license = await readFile(join(installed, 'LICENSE'), 'utf8');
    for (const line of ['Apache License', 'Version 2.0, January 2004', 'Copyright 2026 The regfs Authors']) assert.ok(license.includes(`   ${line}\n`), `LICENSE: no line ${line}`);
    assert.deepEqual((await readdir(join(installed, 'docs'))).map((f) => `docs/${f}`).sort(), docs.sort());

    const bin = join(prefix, 'bin', 'regfs');
    assert.equal(run(bin, ['--version'], dir).stdout, `${pkg.version}\n`);
    const help = run(bin, ['--help'], dir).stdout;
    assert.match(help, /^ +regfs extract </m);
    assert.match(help, /Docs: README\.md and docs\//);

    // Installed as a dependency: the version is regfs's own, not the depending project's.
    const project = join(dir, 'project');
    await mkdir(project);
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'uses-regfs', version: '9.9.9', private: true }));
    run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], project);
    assert.equal(run(join(project, 'node_modules', '.bin', 'regfs'), ['--version'], project).stdout, `${pkg.version}\n`);

    // A module next to the prefix's node_modules finds the package by its name.
    const script = join(prefix, 'lib', 'use-regfs.mjs');
    const out = join(dir, 'out');
    await writeFile(
      script,
      `import { extract } from 'regfs';\n` +
        `const r = await extract({ list: ${JSON.stringify(join(ROOT, 'fixtures', 'demo.list'))}, source: ${JSON.stringify(FIXTURE_ROOT)}, output: ${JSON.stringify(out)} });\n` +
        `console.log(JSON.stringify(r.images.map((i) => i.ref)));\n`,
    );
    const images = JSON.parse(run(process.execPath, [script], dir).stdout) as string[];
    const listed = (await readFile(join(ROOT, 'fixtures', 'demo.list'), 'utf8')).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.deepEqual(images.sort(), listed.sort());
    assert.ok((await stat(join(out, 'docker', 'registry', 'v2', 'blobs'))).isDirectory());
  });
});
