/**
 * The `regfs` executable as built (dist/cli/main.js, made from this file by
 * scripts/build/cli.ts): it runs the CLI bundle, dist/cli/bundle.js and the chunks it loads
 * from dist/cli/chunks/, as CommonJS modules, each compiled with the V8 code cache that
 * `npm run build` made for it (FILE.cache beside FILE). V8 then reads the bytecode instead of
 * compiling the source on every run. A cache is not offered when it is older than its file (a
 * bundle edited after the build), and V8 itself rejects one made by another V8 or under other
 * flags: the source is then compiled as it would be without a cache. This file never writes.
 */
import Module from 'node:module';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

/**
 * Set only by the build's training runs (scripts/build/code-cache.ts, through a preload) and
 * by tests: told each file compiled, its Script, and whether a cache was offered to V8.
 */
type CompileHook = (file: string, script: Script, offered: boolean) => void;
const hook = (globalThis as Record<symbol, CompileHook | undefined>)[Symbol.for('regfs.compileHook')];

const loaded = new Map<string, Module>();

/** The cache of `file`, unless there is none or it is older than the file. */
function codeCache(file: string): Buffer | undefined {
  const cache = statSync(`${file}.cache`, { throwIfNoEntry: false });
  if (cache === undefined || cache.mtimeMs < statSync(file).mtimeMs) return undefined;
  try {
    return readFileSync(`${file}.cache`);
  } catch {
    return undefined;
  }
}

/** `require` of one of the bundle's files: evaluated once, its exports thereafter. */
function load(file: string): unknown {
  const done = loaded.get(file);
  if (done !== undefined) return done.exports;
  const m = new Module(file, module);
  m.filename = file;
  // Set before it runs, as Node does: a cycle gets the exports made so far.
  loaded.set(file, m);
  const cachedData = codeCache(file);
  const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
  hook?.(file, script, cachedData !== undefined);
  const dir = dirname(file);
  // The bundle's own files by their relative paths; Node's modules and packages (the AWS SDK)
  // as Node requires them.
  const req = (id: string): unknown => (id.startsWith('./') || id.startsWith('../') ? load(join(dir, id)) : require(id));
  (script.runInThisContext() as (...args: unknown[]) => void).call(m.exports, m.exports, req, m, file, dir);
  m.loaded = true;
  return m.exports;
}

load(join(__dirname, 'bundle.js'));
