/**
 * The npm package as a user gets it: `npm pack` in a copy of the project whose dist/ holds only
 * a leftover of an older build, then `npm install -g` of the tarball into a temporary prefix. The installed
 * `regfs` runs, the library imports as `regfs` and extracts, and the tarball holds what the
 * help promises and no more.
 *
 * Without the network: npm resolves the tarball's dependencies by their full registry
 * metadata, which `npm ci` does not cache (it installs from the lockfile). So the install
 * goes to a registry on loopback that serves the locked runtime dependencies, their tarballs
 * taken by integrity from the npm cache that `npm ci` filled, into a cache of its own.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { withTempDir } from './helpers/tree.js';
import { compiled } from './helpers/cli.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** What a clone does not have: installed or built files, and local run output. */
const NOT_IN_A_CLONE = new Set(['node_modules', 'dist', '.git', 'demo-out', '.bench']);
/**
 * The packed tarball's size bound (about 1.1 MiB: 560 KiB with the S3 storage driver, and the
 * CLI bundle's code caches, each with a copy of its source): the fixtures or node_modules in
 * it would break it.
 */
const MAX_TARBALL_BYTES = 1280 * 1024;

async function run(cmd: string, args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  try {
    return await promisify(execFile)(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } });
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    assert.fail(`${cmd} ${args.join(' ')}: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** The path of content `integrity` (sha512-<base64>) in the npm cache `cache`, as cacache stores it. */
function cachedContent(cache: string, integrity: string): string {
  const [algorithm, base64] = integrity.split('-', 2) as [string, string];
  const hex = Buffer.from(base64, 'base64').toString('hex');
  return join(cache, '_cacache', 'content-v2', algorithm, hex.slice(0, 2), hex.slice(2, 4), hex.slice(4));
}

/**
 * A registry on 127.0.0.1 serving every runtime dependency package-lock.json locks (each
 * version found there), its metadata from the package.json installed in node_modules, its
 * tarball from the npm cache by the locked integrity.
 */
async function lockedDependencyRegistry(): Promise<{ url: string; server: Server }> {
  const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; integrity?: string; dev?: boolean }> };
  const cache = (await run('npm', ['config', 'get', 'cache'], ROOT)).stdout.trim();
  const packuments = new Map<string, { name: string; 'dist-tags': { latest: string }; versions: Record<string, unknown> }>();
  const tarballs = new Map<string, string>();
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev === true) continue;
    const manifest = JSON.parse(await readFile(join(ROOT, path, 'package.json'), 'utf8')) as { name: string; version: string };
    assert.equal(manifest.version, entry.version, `${path}: npm ci first`);
    const content = cachedContent(cache, entry.integrity!);
    await stat(content).catch(() => assert.fail(`${manifest.name}@${manifest.version} is not in the npm cache ${cache}: run npm ci`));
    const file = `-/${encodeURIComponent(manifest.name)}-${manifest.version}.tgz`;
    tarballs.set(`/${file}`, content);
    const packument = packuments.get(manifest.name) ?? { name: manifest.name, 'dist-tags': { latest: manifest.version }, versions: {} };
    packument.versions[manifest.version] = { ...manifest, dist: { tarball: `${url}${file}`, integrity: entry.integrity } };
    packuments.set(manifest.name, packument);
  }
  server.on('request', (req, res) => {
    const path = req.url ?? '/';
    const packument = packuments.get(decodeURIComponent(path.slice(1)));
    const tarball = tarballs.get(path);
    if (packument !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(packument));
    } else if (tarball !== undefined) {
      readFile(tarball).then((b) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(b), () => res.writeHead(500).end());
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    }
  });
  return { url, server };
}

test('npm pack, npm install -g of the tarball: the installed regfs runs, imports and ships its docs and licence', async () => {
  await withTempDir(async (dir) => {
    const clone = join(dir, 'clone');
    await cp(ROOT, clone, { recursive: true, filter: (src) => !NOT_IN_A_CLONE.has(relative(ROOT, src).split('/')[0]!) });
    await symlink(join(ROOT, 'node_modules'), join(clone, 'node_modules'));
    const pkg = JSON.parse(await readFile(join(clone, 'package.json'), 'utf8')) as { name: string; version: string };

    // A dist/ left by an older build, with a module since removed: not shipped.
    await mkdir(join(clone, 'dist'));
    await writeFile(join(clone, 'dist', 'removed-module.js'), 'export {};\n');

    // prepack builds dist/ in the clone; --json keeps the build's output off stdout.
    await run('npm', ['pack', '--json', '--pack-destination', dir], clone);
    const tarball = join(dir, `${pkg.name}-${pkg.version}.tgz`);
    assert.ok((await stat(tarball)).size < MAX_TARBALL_BYTES, `${tarball}: ${(await stat(tarball)).size} bytes`);
    const files = (await run('tar', ['-tzf', tarball], dir)).stdout.split('\n').filter((l) => l !== '').map((l) => l.replace(/^package\//, ''));
    const docs = (await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
    assert.ok(docs.length > 0);
    // The JSON Schema files of --json output (docs/json.md names them).
    const schemas = (await readdir(join(ROOT, 'schemas'))).map((f) => `schemas/${f}`);
    assert.ok(schemas.length > 0);
    for (const f of ['package.json', 'LICENSE', 'README.md', 'CHANGELOG.md', 'dist/cli/main.js', 'dist/index.js', 'dist/index.d.ts', ...docs, ...schemas]) {
      assert.ok(files.includes(f), `the tarball lacks ${f}`);
    }
    assert.ok(!files.includes('dist/removed-module.js'), 'the tarball holds a stale file of dist/');
    const tops = new Set(files.map((f) => f.split('/')[0]));
    assert.deepEqual([...tops].sort(), ['CHANGELOG.md', 'LICENSE', 'README.md', 'dist', 'docs', 'package.json', 'schemas']);

    const prefix = join(dir, 'prefix');
    const project = join(dir, 'project');
    const registry = await lockedDependencyRegistry();
    const npmInstall = (args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> =>
      run('npm', ['install', '--registry', registry.url, '--cache', join(dir, 'npm-cache'), '--no-audit', '--no-fund', ...args], cwd);
    let install;
    try {
      install = await npmInstall(['-g', '--prefix', prefix, tarball], dir);
      await mkdir(project);
      await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'uses-regfs', version: '9.9.9', private: true }));
      await npmInstall([tarball], project);
    } finally {
      registry.server.close();
    }
    const said = `${install.stdout}${install.stderr}`;
    assert.doesNotMatch(said, /prepare|install-scripts|^npm warn/im, said);

    const installed = join(prefix, 'lib', 'node_modules', pkg.name);
    const license = await readFile(join(installed, 'LICENSE'), 'utf8');
    for (const line of ['Apache License', 'Version 2.0, January 2004', 'Copyright 2026 The regfs Authors']) assert.ok(license.includes(`   ${line}\n`), `LICENSE: no line ${line}`);
    assert.deepEqual((await readdir(join(installed, 'docs'))).map((f) => `docs/${f}`).sort(), docs.sort());

    // The installed CLI runs from the code caches its build made (npm unpacks each cache before
    // the file it is for, so its time is older), and nothing installed names the directory it
    // was built in (the clone's node_modules is a link to the project's, which esbuild names by
    // its real path: relative, as it names any module).
    for (const f of compiled(dir, join(installed, 'dist', 'cli', 'main.js'), ['ls', FIXTURE_ROOT])) {
      assert.ok(f.offered && !f.rejected, `${f.file}: cache offered ${f.offered}, rejected ${f.rejected}`);
    }
    for (const f of await readdir(installed, { recursive: true })) {
      const path = join(installed, f);
      if ((await stat(path)).isFile()) assert.ok(!(await readFile(path)).includes(clone), `${f} names ${clone}`);
    }
    // A build over the one npm pack made gives the same CLI bundle.
    await run('npm', ['run', 'build'], clone);
    for (const f of await readdir(join(installed, 'dist', 'cli'), { recursive: true })) {
      if (!f.endsWith('.js') && !f.endsWith('.json')) continue;
      assert.ok((await readFile(join(installed, 'dist', 'cli', f))).equals(await readFile(join(clone, 'dist', 'cli', f))), `dist/cli/${f} differs after a second build`);
    }

    const bin = join(prefix, 'bin', 'regfs');
    assert.equal((await run(bin, ['--version'], dir)).stdout, `${pkg.version}\n`);
    const help = (await run(bin, ['--help'], dir)).stdout;
    assert.match(help, /^ +regfs extract </m);
    assert.match(help, /Docs: README\.md and docs\//);

    // Installed as a dependency: the version is regfs's own, not the depending project's.
    assert.equal((await run(join(project, 'node_modules', '.bin', 'regfs'), ['--version'], project)).stdout, `${pkg.version}\n`);

    // A module next to the prefix's node_modules finds the package by its name (the temp
    // directory's own package.json keeps any package.json above it out of the resolution).
    await writeFile(join(dir, 'package.json'), JSON.stringify({ private: true }));
    const script = join(prefix, 'lib', 'use-regfs.mjs');
    const out = join(dir, 'out');
    await writeFile(
      script,
      `import { extract } from 'regfs';\n` +
        `const r = await extract({ list: ${JSON.stringify(join(ROOT, 'fixtures', 'demo.list'))}, source: ${JSON.stringify(FIXTURE_ROOT)}, output: ${JSON.stringify(out)} });\n` +
        `console.log(JSON.stringify(r.images.map((i) => i.ref)));\n`,
    );
    const images = JSON.parse((await run(process.execPath, [script], dir)).stdout) as string[];
    const listed = (await readFile(join(ROOT, 'fixtures', 'demo.list'), 'utf8')).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.deepEqual(images.sort(), listed.sort());
    assert.ok((await stat(join(out, 'docker', 'registry', 'v2', 'blobs'))).isDirectory());
  });
});
