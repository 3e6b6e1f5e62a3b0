/**
 * The V8 code caches of the CLI bundle (FILE.cache beside each FILE of dist/cli, in the form
 * cache-format.ts gives), made by running the built `regfs` on the project's fixture storage:
 * each run is given a preload that keeps, for each file the loader (loader.ts) compiled, the
 * cache V8 makes of it at exit, with every function the run compiled, and starts from the
 * caches of the runs before it: a file's cache holds what every run compiled (the largest
 * kept). A function none of them compiled is compiled from the source when first called. The runs get no NODE_OPTIONS: V8 rejects a cache made under other flags.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheFile } from './cache-format.js';

/** Keeps, in the directory REGFS_CODE_CACHE_DIR, the largest V8 data each file has had (named by its path, encoded). */
const PRELOAD = `
const { statSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const compiled = [];
globalThis[Symbol.for('regfs.compileHook')] = (file, script) => compiled.push([file, script]);
process.on('exit', () => {
  for (const [file, script] of compiled) {
    const data = script.createCachedData();
    const kept = join(process.env.REGFS_CODE_CACHE_DIR, encodeURIComponent(file));
    if (data.length > (statSync(kept, { throwIfNoEntry: false })?.size ?? 0)) writeFileSync(kept, data);
  }
});
`;

/** Run `regfs` (the executable `cli`) over `fixtures` (a registry root and an image list) to make the caches. */
export function makeCodeCaches(cli: string, fixtures: { root: string; list: string }): void {
  const tmp = mkdtempSync(join(tmpdir(), 'regfs-code-cache-'));
  try {
    const preload = join(tmp, 'preload.cjs');
    writeFileSync(preload, PRELOAD);
    const kept = join(tmp, 'kept');
    const out = join(tmp, 'out');
    const runs: string[][] = [
      ['--version'],
      ['--help'],
      ['extract', '--help'],
      ['ls', fixtures.root],
      ['inspect', fixtures.root, 'team/app:v1'],
      ['verify', fixtures.root],
      ['extract', fixtures.list, fixtures.root, out],
      ['to-dir', fixtures.list, fixtures.root, join(tmp, 'dir')],
      ['to-oci', fixtures.list, fixtures.root, join(tmp, 'oci')],
      ['inventory', out, '-o', join(tmp, 'have.json')],
      ['gc', out],
    ];
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', REGFS_CODE_CACHE_DIR: kept };
    delete env['NODE_OPTIONS'];
    mkdirSync(kept);
    for (const args of runs) {
      const r = spawnSync(process.execPath, ['--require', preload, cli, ...args], { encoding: 'utf8', env, timeout: 120_000 });
      if (r.status !== 0) throw new Error(`making the code caches: regfs ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}`);
      // Each run starts from the caches the runs before it made, so that a cache holds every
      // function any of them compiled.
      for (const name of readdirSync(kept)) {
        const file = decodeURIComponent(name);
        writeFileSync(`${file}.cache`, cacheFile(readFileSync(file), readFileSync(join(kept, name))));
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
