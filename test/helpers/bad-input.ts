/**
 * Helpers for test/bad-input.test.ts: reading what the CLI printed, judging whether an output
 * holds anything visible and half-written, and mounting the small filesystems some cases need.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstat, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { digestOf, isDigest, type Digest } from '../../src/digest.js';
import { isIndexKind, parseManifestContent, referencedBlobs, type Manifest } from '../../src/manifest.js';
import { runCli } from './cli.js';

export const V2 = join('docker', 'registry', 'v2');

/** One `error: <message> [CODE]` line of stderr. */
export interface CodedLine {
  message: string;
  code: string;
}

/** Every `error: … [CODE]` line, in order. */
export function codedLines(stderr: string): CodedLine[] {
  const out: CodedLine[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^error: (.*) \[([A-Z_]+)\]$/.exec(line);
    if (m !== null) out.push({ message: m[1]!, code: m[2]! });
  }
  return out;
}

/** No stack trace: no line that starts with white space and `at `. */
export function assertNoStackTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at /m, `a stack trace on stderr:\n${stderr}`);
  assert.doesNotMatch(stderr, /internal error/, `an internal error on stderr:\n${stderr}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function entries(dir: string): Promise<Array<{ name: string; dir: boolean }>> {
  try {
    return (await readdir(dir, { withFileTypes: true })).map((e) => ({ name: e.name, dir: e.isDirectory() }));
  } catch {
    return [];
  }
}

/** The content of a link file if it is exactly a digest; else a description of what is wrong. */
async function linkTarget(path: string): Promise<Digest | string> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return `missing "${path}"`;
  }
  if (!st.isFile()) return `"${path}" is not a regular file`;
  const text = await readFile(path, 'latin1');
  return isDigest(text) ? text : `"${path}" holds ${JSON.stringify(text.slice(0, 80))}`;
}

/**
 * What a registry serving the storage at `root` (a registry root or its v2) would serve
 * half-written: every tag (a directory in `_manifests/tags/`) must have a well-formed
 * `current/link`, and every manifest reachable by a tag or by a revision link must be whole:
 * its blob data present and hashing to its digest, its revision link in the repository, an
 * index's children whole in turn, an image's config and layers present at their sizes and
 * linked in `_layers` (foreign layers with `urls` excepted). Returns one line per problem.
 */
export async function storageProblems(root: string): Promise<string[]> {
  const v2 = root.endsWith(V2) ? root : join(root, V2);
  const problems: string[] = [];
  if (!(await exists(v2))) return problems;
  const blobData = (d: Digest): string => join(v2, 'blobs', d.slice(0, d.indexOf(':')), d.slice(d.indexOf(':') + 1, d.indexOf(':') + 3), d.slice(d.indexOf(':') + 1), 'data');
  const parsed = new Map<Digest, Manifest | string>();

  const loadManifest = async (d: Digest): Promise<Manifest | string> => {
    let m = parsed.get(d);
    if (m !== undefined) return m;
    const path = blobData(d);
    try {
      const st = await lstat(path);
      if (!st.isFile()) m = `manifest data "${path}" is not a regular file`;
      else {
        const raw = await readFile(path);
        m = digestOf(raw) !== d ? `manifest data "${path}" does not hash to ${d}` : parseManifestContent(raw, d, path);
      }
    } catch (err) {
      m = `manifest ${d}: ${(err as Error).message}`;
    }
    parsed.set(d, m);
    return m;
  };

  const checkManifest = async (repoPath: string, repo: string, d: Digest, via: string, seen: Set<string>): Promise<void> => {
    const key = `${repo}\0${d}`;
    if (seen.has(key)) return;
    seen.add(key);
    const hex = d.slice(d.indexOf(':') + 1);
    const alg = d.slice(0, d.indexOf(':'));
    const rev = await linkTarget(join(repoPath, '_manifests', 'revisions', alg, hex, 'link'));
    if (rev !== d) problems.push(`${via}: ${repo}@${d} has no good revision link (${rev})`);
    const m = await loadManifest(d);
    if (typeof m === 'string') {
      problems.push(`${via}: ${m}`);
      return;
    }
    if (isIndexKind(m.kind)) {
      for (const c of m.manifests) await checkManifest(repoPath, repo, c.digest, `${via} -> child ${c.digest}`, seen);
      return;
    }
    for (const b of referencedBlobs(m)) {
      const data = blobData(b.digest);
      let st;
      try {
        st = await lstat(data);
      } catch {
        if (b.urls === undefined) problems.push(`${via}: ${repo}@${d} references ${b.digest}, whose data is missing`);
        continue;
      }
      if (!st.isFile() || (b.size >= 0 && st.size !== b.size)) problems.push(`${via}: blob data "${data}" is not a regular file of ${b.size} bytes`);
      const bAlg = b.digest.slice(0, b.digest.indexOf(':'));
      const bHex = b.digest.slice(b.digest.indexOf(':') + 1);
      const l = await linkTarget(join(repoPath, '_layers', bAlg, bHex, 'link'));
      if (l !== b.digest) problems.push(`${via}: ${repo}@${d} references ${b.digest}, which has no good _layers link (${l})`);
    }
  };

  const repos: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const list = await entries(dir);
    if (list.some((e) => e.name === '_manifests' && e.dir)) repos.push(dir);
    for (const e of list) if (e.dir && !e.name.startsWith('_')) await walk(join(dir, e.name));
  };
  const reposDir = join(v2, 'repositories');
  await walk(reposDir);
  for (const repoPath of repos) {
    const repo = relative(reposDir, repoPath);
    const seen = new Set<string>();
    for (const t of await entries(join(repoPath, '_manifests', 'tags'))) {
      if (!t.dir) continue;
      const current = await linkTarget(join(repoPath, '_manifests', 'tags', t.name, 'current', 'link'));
      if (!isDigest(current)) {
        problems.push(`tag ${repo}:${t.name} is visible but ${current}`);
        continue;
      }
      await checkManifest(repoPath, repo, current, `tag ${repo}:${t.name}`, seen);
    }
    for (const alg of await entries(join(repoPath, '_manifests', 'revisions'))) {
      for (const h of await entries(join(repoPath, '_manifests', 'revisions', alg.name))) {
        const d = `${alg.name}:${h.name}`;
        if (!isDigest(d)) continue;
        const l = await linkTarget(join(repoPath, '_manifests', 'revisions', alg.name, h.name, 'link'));
        if (l !== d) continue; // no visible revision (a missing link is no revision)
        await checkManifest(repoPath, repo, d, `revision ${repo}@${d}`, seen);
      }
    }
  }
  return problems;
}

/**
 * What is half-written in a `dir:` export: every directory holding `manifest.json` must hold
 * every blob its manifest names (at its size) and, for an index, every instance manifest
 * (hashing to its name) with the instance's blobs. `digests.txt` lines must name complete
 * images with that digest.
 */
export async function dirExportProblems(out: string): Promise<string[]> {
  const problems: string[] = [];
  if (!(await exists(out))) return problems;
  const hexOf = (d: Digest): string => d.slice(d.indexOf(':') + 1);
  const checkImage = async (dir: string, m: Manifest, seen: Set<string>): Promise<void> => {
    if (seen.has(m.digest)) return;
    seen.add(m.digest);
    if (isIndexKind(m.kind)) {
      for (const c of m.manifests) {
        const path = join(dir, `${hexOf(c.digest)}.manifest.json`);
        let raw: Buffer;
        try {
          raw = await readFile(path);
        } catch {
          problems.push(`"${dir}": index ${m.digest} names ${c.digest}, and "${path}" is missing`);
          continue;
        }
        if (digestOf(raw) !== c.digest) {
          problems.push(`"${path}" does not hash to its name`);
          continue;
        }
        await checkImage(dir, parseManifestContent(raw, c.digest, path), seen);
      }
      return;
    }
    for (const b of referencedBlobs(m)) {
      let size: number | undefined;
      for (const name of [hexOf(b.digest), `${hexOf(b.digest)}.tar`]) {
        try {
          const st = await lstat(join(dir, name));
          if (st.isFile()) size = st.size;
          break;
        } catch {
          // try the next name
        }
      }
      if (size === undefined && b.urls === undefined) problems.push(`"${dir}/manifest.json" names ${b.digest}, which is not in the directory`);
      else if (size !== undefined && b.size >= 0 && size !== b.size) problems.push(`"${dir}": blob ${b.digest} has ${size} bytes, not ${b.size}`);
    }
  };
  const digests = new Map<string, Digest>();
  const walk = async (dir: string): Promise<void> => {
    const list = await entries(dir);
    if (list.some((e) => e.name === 'manifest.json' && !e.dir)) {
      const path = join(dir, 'manifest.json');
      const raw = await readFile(path);
      digests.set(relative(out, dir), digestOf(raw));
      try {
        await checkImage(dir, parseManifestContent(raw, digestOf(raw), path), new Set());
      } catch (err) {
        problems.push(`"${path}": ${(err as Error).message}`);
      }
      return;
    }
    for (const e of list) if (e.dir) await walk(join(dir, e.name));
  };
  await walk(out);
  const listed = await readFile(join(out, 'digests.txt'), 'utf8').catch(() => '');
  for (const line of listed.split('\n').filter((l) => l !== '')) {
    const [d, ref] = line.split(' ');
    if (digests.get(ref ?? '') !== d) problems.push(`digests.txt lists ${line}, but that image directory has ${digests.get(ref ?? '') ?? 'no manifest.json'}`);
  }
  return problems;
}

/** `regfs verify ROOT` through the CLI: its exit code and what it printed. */
export async function verifyCli(root: string): Promise<{ code: number | null; output: string }> {
  const r = await runCli(['verify', root]);
  return { code: r.code, output: r.stdout + r.stderr };
}

/** `mount …`; false if mounting is not permitted here. */
export function tryMount(args: string[]): boolean {
  return spawnSync('mount', args, { stdio: 'ignore' }).status === 0;
}

/** `umount DIR` (lazily, so a test never leaves a mount behind). */
export function unmount(dir: string): void {
  if (spawnSync('umount', [dir], { stdio: 'ignore' }).status !== 0) spawnSync('umount', ['-l', dir], { stdio: 'ignore' });
}

/** A read-only tmpfs at `dir`; false if not permitted. */
export function mountReadOnlyTmpfs(dir: string): boolean {
  return tryMount(['-t', 'tmpfs', '-o', 'size=64k,ro', 'tmpfs', dir]);
}

/** A read-only bind mount of `from` at `to`; false if not permitted. */
export function mountReadOnlyBind(from: string, to: string): boolean {
  if (!tryMount(['--bind', from, to])) return false;
  if (tryMount(['-o', 'remount,ro,bind', to])) return true;
  unmount(to);
  return false;
}

/** A small tmpfs of `size` (such as `256k`) at `dir`; false if not permitted. */
export function mountSmallTmpfs(dir: string, size: string): boolean {
  return tryMount(['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
}

/** The device of a path (to tell filesystems apart). */
export async function deviceOf(path: string): Promise<number> {
  return (await lstat(path)).dev;
}

/**
 * A preload for the regfs process that makes every copy of a file to a destination under
 * `REGFS_TEST_ENOSPC_UNDER` fail with ENOSPC, after `REGFS_TEST_ENOSPC_AFTER` copies have
 * succeeded: a disk that fills up mid-run, where no small filesystem can be mounted. It
 * patches fs.copyFile, fs.copyFileSync and fs/promises copyFile, and syncs the ES module
 * bindings, so whichever one regfs uses fails.
 */
const ENOSPC_PRELOAD = `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
const under = process.env.REGFS_TEST_ENOSPC_UNDER;
let left = Number(process.env.REGFS_TEST_ENOSPC_AFTER ?? '0');
const hit = (dest) => under !== undefined && String(dest).startsWith(under) && left-- <= 0;
const enospc = (dest) => Object.assign(new Error('ENOSPC: no space left on device, copyfile ' + JSON.stringify(String(dest))), { code: 'ENOSPC', errno: -28, syscall: 'copyfile', path: String(dest) });
const copyFile = fs.copyFile;
fs.copyFile = function (src, dest, mode, cb) {
  if (typeof mode === 'function') { cb = mode; mode = 0; }
  if (hit(dest)) { process.nextTick(cb, enospc(dest)); return; }
  return copyFile.call(this, src, dest, mode, cb);
};
const copyFileSync = fs.copyFileSync;
fs.copyFileSync = function (src, dest, mode) {
  if (hit(dest)) throw enospc(dest);
  return copyFileSync.call(this, src, dest, mode);
};
const copyFilePromise = fs.promises.copyFile;
fs.promises.copyFile = async function (src, dest, mode) {
  if (hit(dest)) throw enospc(dest);
  return copyFilePromise.call(this, src, dest, mode);
};
syncBuiltinESMExports();
`;

/** The environment that runs regfs with copies under `under` failing with ENOSPC after `after` succeed. */
export async function enospcEnv(scratch: string, under: string, after: number): Promise<Record<string, string>> {
  const preload = join(scratch, 'enospc-preload.mjs');
  await writeFile(preload, ENOSPC_PRELOAD);
  const options = [process.env['NODE_OPTIONS'], `--import=${pathToFileURL(preload).href}`].filter((x) => x !== undefined && x !== '').join(' ');
  return { NODE_OPTIONS: options, REGFS_TEST_ENOSPC_UNDER: under, REGFS_TEST_ENOSPC_AFTER: String(after) };
}

