/**
 * The `regfs` executable as built (dist/cli/main.js, made from this file by
 * scripts/build/cli.ts): it runs the CLI bundle, dist/cli/bundle.js and the chunks it loads
 * from dist/cli/chunks/, as CommonJS modules, each compiled with the V8 code cache that
 * `npm run build` made for it (FILE.cache beside FILE, see code-cache.ts). V8 then reads the
 * bytecode instead of compiling the source on every run.
 *
 * A cache holds a copy of the source it was made from, and is offered only when the file holds
 * exactly those bytes: a bundle edited after the build is compiled from its source. Nothing
 * else is asked of the file (an install by npm gives every file the time it was unpacked, in
 * whatever order). V8 itself rejects a cache made by another V8 or under other flags; the
 * source is then compiled as it would be without one. A cache that is missing, unreadable or
 * not a regular file (a FIFO is never waited on) is no cache. V8 (a release build) does not
 * checksum the bytecode it takes: a cache damaged in place can crash the process as a damaged
 * bundle would (npm checks the package's integrity as it installs it); with the `.cache`
 * files of dist/cli and dist/cli/chunks removed, regfs runs from its source alone.
 *
 * Each file is compiled under the name `regfs/dist/cli/...`, its path inside the package: V8
 * keeps the name a cache was made under, so stack traces name the file the same way with a
 * cache or without one, and never the directory of the machine that built it. This file
 * never writes.
 */
import Module from 'node:module';
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { Script } from 'node:vm';
import { cacheParts } from './cache-format.js';

/**
 * Set only by the build's training runs (scripts/build/code-cache.ts, through a preload) and
 * by tests: told each file compiled, its Script, and whether a cache was offered to V8.
 */
type CompileHook = (file: string, script: Script, offered: boolean) => void;
const hook = (globalThis as Record<symbol, CompileHook | undefined>)[Symbol.for('regfs.compileHook')];

const loaded = new Map<string, Module>();

/** The bytes of `path` if it is a regular file that can be read, without waiting on anything. */
function readRegularFile(path: string): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    return fstatSync(fd).isFile() ? readFileSync(fd) : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The V8 code cache of `file`, whose bytes are `source`: none unless it was made from exactly them. */
function codeCache(file: string, source: Buffer): Buffer | undefined {
  const cache = readRegularFile(`${file}.cache`);
  const parts = cache === undefined ? undefined : cacheParts(cache);
  return parts !== undefined && parts.source.equals(source) ? parts.data : undefined;
}

/** `require` of one of the bundle's files: evaluated once, its exports thereafter. */
function load(file: string): unknown {
  const done = loaded.get(file);
  if (done !== undefined) return done.exports;
  const m = new Module(file, module);
  m.filename = file;
  // Set before it runs, as Node does: a cycle gets the exports made so far.
  loaded.set(file, m);
  const source = readFileSync(file);
  const cachedData = codeCache(file, source);
  const name = ['regfs', 'dist', 'cli', ...relative(__dirname, file).split(sep)].join('/');
  const script = new Script(Module.wrap(source.toString('utf8')), { filename: name, cachedData });
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
