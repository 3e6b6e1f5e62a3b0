/**
 * The crash harness: a large synthetic source store, timed SIGKILLs of the built CLI, cheap
 * fingerprints of trees, and a census of what a killed run left behind.
 *
 * The store is written by scripts/lib/write-storage.ts (regfs's own writer fed with bytes,
 * which test/fixtures.test.ts proves equal to what docker-registry 2.8 writes), from images of
 * scripts/lib/images.ts, so it is deterministic: the same shape gives the same digests.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { blobOf, makeImage, makeIndex, makeLayer, type Layer, type Manifest } from '../../scripts/lib/images.js';
import { writeStorage, type StoragePush } from '../../scripts/lib/write-storage.js';
import { blobDataPath, storageRoot } from '../../src/registry/layout.js';
import { digestOf, type Digest } from '../../src/digest.js';
import { isIndexKind, parseManifestContent, referencedBlobs } from '../../src/manifest.js';
import { REGFS_BIN } from './cli.js';

// ---------------------------------------------------------------------------------------------
// The source store
// ---------------------------------------------------------------------------------------------

/** The shape of the synthetic store. */
export interface CrashStoreShape {
  /** Ordinary repositories, each with 3 to 8 version tags and `latest`. */
  repositories: number;
  baseLayers: number;
  /** Every n-th repository gets a `multi` tag: a two- or three-platform index. */
  indexEvery: number;
  /** Every n-th repository gets a nested index (an index of an index) as `nested`. */
  nestedEvery: number;
  /** Every n-th repository gets a nested repository `<repo>/worker` with two tags. */
  workerEvery: number;
  /** Tags of the repository `big/many`; a fifth of them point at one manifest. */
  bigTags: number;
  /** Garbage: every n-th repository has its `v1` overwritten (the old manifest stays, untagged). */
  overwriteEvery: number;
  /** Garbage: every n-th repository has a manifest pushed by digest only. */
  untaggedEvery: number;
  /** Garbage: blob data no manifest references. */
  strayBlobs: number;
}

/**
 * About 100 repositories, 900 tags, 2,300 blobs and 16,000 files: on a 2-core machine an
 * extract of it all takes 0.4 to 1 s, a from-dir 0.7 to 1.5 s; with 36 kills and re-runs per
 * command the crash test takes 7 to 13 minutes.
 */
export const CRASH_SHAPE: CrashStoreShape = {
  repositories: 96,
  baseLayers: 12,
  indexEvery: 8,
  nestedEvery: 40,
  workerEvery: 15,
  bigTags: 240,
  overwriteEvery: 6,
  untaggedEvery: 9,
  strayBlobs: 40,
};

/** What the generator put in the store. */
export interface CrashStore {
  /** The registry root (holding docker/registry/v2). */
  root: string;
  v2: string;
  /** Every tag and the digest it points at now. */
  tags: Map<string, Digest>;
  repos: string[];
  /** The repository with many tags (rm target), and the manifest a fifth of its tags share. */
  bigRepo: string;
  bigShared: Digest;
  bigSharedTags: string[];
  /** Tags pushed twice: the first manifest stays in the tag's history (`index/`), untagged. */
  overwritten: Array<{ repo: string; tag: string; digest: Digest }>;
  /** Manifests no tag reaches (overwritten tags' old manifests, digest-only pushes). */
  untagged: Array<{ repo: string; digest: Digest }>;
  /** Blob data no manifest references. */
  strayBlobs: Digest[];
  /** Digest-only references that exist and are tagged elsewhere: `repo@digest`. */
  digestRefs: Array<{ repo: string; digest: Digest }>;
}

export function crashRepoName(i: number): string {
  return `team${i % 11}/svc${Math.floor(i / 11) % 7}/app${i}`;
}

/** Write the store under `<root>/docker/registry/v2`. */
export async function writeCrashStore(root: string, shape: CrashStoreShape = CRASH_SHAPE): Promise<CrashStore> {
  const bases: Layer[] = Array.from({ length: shape.baseLayers }, (_, i) => makeLayer(`crash-base-${i}`));
  const first: StoragePush[] = [];
  const later: StoragePush[] = [];
  const tags = new Map<string, Digest>();
  const untagged: CrashStore['untagged'] = [];
  const overwritten: CrashStore['overwritten'] = [];
  const digestRefs: CrashStore['digestRefs'] = [];
  const repos: string[] = [];
  const push = (list: StoragePush[], repo: string, tag: string | undefined, image: Manifest): void => {
    list.push(tag === undefined ? { repo, image } : { repo, tag, image });
    if (tag !== undefined) tags.set(`${repo}:${tag}`, image.digest);
  };
  const image = (repo: string, seed: string, base: Layer, fmt: 'docker' | 'oci', arch = 'amd64'): Manifest =>
    makeImage({ format: fmt, layers: [base, makeLayer(`${repo}:${seed}`)], platform: { os: 'linux', architecture: arch }, labels: { repo, seed } });

  for (let i = 0; i < shape.repositories; i++) {
    const repo = crashRepoName(i);
    repos.push(repo);
    const n = 3 + (i % 6);
    let last: Manifest | undefined;
    for (let t = 1; t <= n; t++) {
      last = image(repo, `v${t}`, bases[(i + t) % bases.length]!, t % 2 === 0 ? 'oci' : 'docker');
      push(first, repo, `v${t}`, last);
    }
    push(first, repo, 'latest', last!);
    if (i % 5 === 0) digestRefs.push({ repo, digest: last!.digest });
    if (i % shape.indexEvery === 0) {
      const docker = i % (2 * shape.indexEvery) === 0;
      const archs = i % 3 === 0 ? ['amd64', 'arm64', 'ppc64le'] : ['amd64', 'arm64'];
      const children = archs.map((a) => image(repo, `multi-${a}`, bases[i % bases.length]!, docker ? 'docker' : 'oci', a));
      push(first, repo, 'multi', makeIndex({ format: docker ? 'docker' : 'oci', children }));
    }
    if (i % shape.nestedEvery === 0) {
      const inner = makeIndex({ format: 'oci', children: ['amd64', 'arm64'].map((a) => image(repo, `nested-${a}`, bases[(i + 1) % bases.length]!, 'oci', a)) });
      const other = image(repo, 'nested-s390x', bases[(i + 2) % bases.length]!, 'oci', 's390x');
      push(first, repo, 'nested', makeIndex({ format: 'oci', children: [inner, other] }));
    }
    if (i % shape.workerEvery === 0) {
      const worker = `${repo}/worker`;
      repos.push(worker);
      for (const t of ['1.0', '1.1']) push(first, worker, t, image(worker, t, bases[(i + 3) % bases.length]!, 'docker'));
    }
    if (i % shape.overwriteEvery === 0) {
      const newer = image(repo, 'v1-rebuilt', bases[(i + 5) % bases.length]!, 'docker');
      untagged.push({ repo, digest: tags.get(`${repo}:v1`)! });
      overwritten.push({ repo, tag: 'v1', digest: tags.get(`${repo}:v1`)! });
      push(later, repo, 'v1', newer);
    }
    if (i % shape.untaggedEvery === 0) {
      const orphan = image(repo, 'orphan', bases[(i + 7) % bases.length]!, 'oci');
      untagged.push({ repo, digest: orphan.digest });
      push(first, repo, undefined, orphan);
    }
  }
  // The repository with many tags: most on images of their own, a fifth on one shared manifest.
  const bigRepo = 'big/many';
  repos.push(bigRepo);
  const shared = image(bigRepo, 'shared', bases[0]!, 'docker');
  const bigSharedTags: string[] = [];
  for (let t = 0; t < shape.bigTags; t++) {
    const tag = `t${String(t).padStart(4, '0')}`;
    if (t % 5 === 0) {
      bigSharedTags.push(`${bigRepo}:${tag}`);
      push(first, bigRepo, tag, shared);
    } else push(first, bigRepo, tag, image(bigRepo, tag, bases[t % bases.length]!, t % 2 === 0 ? 'oci' : 'docker'));
  }
  // A repository nested in the big one's directory: removing big/many must leave it.
  const nested = `${bigRepo}/nested`;
  repos.push(nested);
  for (const t of ['a', 'b']) push(first, nested, t, image(nested, t, bases[1]!, 'oci'));
  await writeStorage(root, [...first, ...later]);

  const v2 = storageRoot(root);
  const strayBlobs: Digest[] = [];
  for (let k = 0; k < shape.strayBlobs; k++) {
    const b = blobOf(`stray blob ${k}\n`.repeat(50 + k));
    const path = blobDataPath(v2, b.digest);
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, b.bytes);
    strayBlobs.push(b.digest);
  }
  repos.sort();
  return { root, v2, tags, repos, bigRepo, bigShared: shared.digest, bigSharedTags, overwritten, untagged, strayBlobs, digestRefs };
}

/**
 * A scratch directory for the harness: on /dev/shm (tmpfs) when it is there with room to
 * spare, which keeps a run's many small writes off the disk, else the system temp directory.
 */
export async function scratchDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  // A tmpfs others have nearly filled (space or inodes) would fail runs with ENOSPC.
  const roomy = async (dir: string): Promise<boolean> => {
    try {
      const st = await statfs(dir);
      return st.bavail * st.bsize > 2 ** 31 && st.ffree > 1_000_000;
    } catch {
      return false;
    }
  };
  const base = existsSync('/dev/shm') && (await roomy('/dev/shm')) ? '/dev/shm' : tmpdir();
  const dir = await mkdtemp(join(base, prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** `rm -rf`, which is several times faster than fs.rm on a tree of many small files. */
export async function removeTree(path: string): Promise<void> {
  await promisify(execFile)('rm', ['-rf', '--', path]);
}

/** `cp -al`: a copy whose files are hard links (for commands that only unlink and rename). */
export async function linkCopy(from: string, to: string): Promise<void> {
  await promisify(execFile)('cp', ['-al', '--', from, to]);
}

// ---------------------------------------------------------------------------------------------
// Kills
// ---------------------------------------------------------------------------------------------

export interface TimedRun {
  /** True if the kill landed while the process ran. */
  killed: boolean;
  code: number | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from spawn to exit. */
  ms: number;
  /** Milliseconds from spawn to the first and last sight of each watched path (polled every millisecond). */
  seen: Map<string, { first: number; last: number }>;
}

/**
 * A kill point: SIGKILL `ms` milliseconds after the command starts, or `ms` after `watch`
 * appears (or vanishes) under the output: the start of the phase that changes things.
 */
export interface KillAt {
  ms: number;
  after?: Anchor;
}

/**
 * The killer: a plain Node script that starts regfs as its own child, and SIGKILLs it at the
 * kill point unless it exited first. It has nothing else to do, so its timers are accurate
 * however busy the test process is; and as regfs's parent it kills only its own child, which
 * it has not reaped yet (so the pid cannot have been reused). It exits 137 if it killed, else
 * with regfs's code, and prints one line `@@killer {...}` on stderr, last.
 */
const KILLER = String.raw`
const [bin, ms, event, watch, ...args] = process.argv.slice(1);
const { spawn } = require('node:child_process');
const { existsSync, readdirSync, statSync } = require('node:fs');
const t0 = performance.now();
const child = spawn(process.execPath, [bin, ...args], { stdio: 'inherit' });
let timer, poll, seen, killedAt;
const kill = () => {
  if (child.exitCode === null && child.signalCode === null) {
    killedAt = performance.now() - t0;
    child.kill('SIGKILL');
  }
};
// 'bytes:N': the regular files directly in the directory 'watch' hold N bytes or more.
const grown = (n) => {
  let sum = 0;
  try {
    for (const e of readdirSync(watch, { withFileTypes: true })) if (e.isFile()) sum += statSync(watch + '/' + e.name, { throwIfNoEntry: false })?.size ?? 0;
  } catch {}
  return sum >= n;
};
const reached = event.startsWith('bytes:') ? () => grown(Number(event.slice(6))) : () => existsSync(watch) === (event === 'appear');
if (event === 'start') timer = setTimeout(kill, Number(ms));
else poll = setInterval(() => {
  if (reached()) {
    clearInterval(poll);
    seen = performance.now() - t0;
    timer = setTimeout(kill, Number(ms));
  }
}, 1);
child.on('exit', (code, signal) => {
  clearTimeout(timer);
  clearInterval(poll);
  const killed = signal === 'SIGKILL' && killedAt !== undefined;
  process.stderr.write('\n@@killer ' + JSON.stringify({ killed, seen, killedAt, ms: performance.now() - t0 }) + '\n');
  process.exitCode = killed ? 137 : (code ?? 70);
});
`;

/**
 * Run `node dist/cli/main.js ...args`; with `kill`, under the killer. `watch`, polled by
 * this process every millisecond while the command runs (for timing uninterrupted runs only),
 * says when a path existed.
 */
export function runKilled(args: string[], opts: { kill?: KillAt; watch?: string[] } = {}): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const k = opts.kill;
    const argv =
      k === undefined
        ? [REGFS_BIN, ...args]
        : ['-e', KILLER, REGFS_BIN, String(k.ms), k.after === undefined ? 'start' : k.after.event === 'bytes' ? `bytes:${k.after.bytes}` : k.after.event, k.after?.path ?? '', ...args];
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (x: string) => (stdout += x));
    child.stderr.setEncoding('utf8').on('data', (x: string) => (stderr += x));
    const seen: TimedRun['seen'] = new Map();
    const poll =
      opts.watch === undefined
        ? undefined
        : setInterval(() => {
            const now = performance.now() - started;
            for (const p of opts.watch!) if (existsSync(p)) seen.set(p, { first: seen.get(p)?.first ?? now, last: now });
          }, 1);
    child.on('error', (err) => {
      clearInterval(poll);
      reject(err);
    });
    child.on('close', (code) => {
      clearInterval(poll);
      let killed = false;
      let ms = performance.now() - started;
      const m = /\n@@killer (.*)\n$/.exec(stderr);
      if (m !== null) {
        const info = JSON.parse(m[1]!) as { killed: boolean; ms: number };
        killed = info.killed;
        ms = info.ms;
        stderr = stderr.slice(0, m.index);
      } else if (k !== undefined) {
        stderr += '\n(the killer printed no report)';
      }
      resolve({ killed, code: killed ? null : code, stdout, stderr, ms, seen });
    });
  });
}

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `n` kill delays spread over [from, to] ms: evenly spaced, each moved by up to half a step
 * of seeded jitter, sorted.
 */
export function killDelays(n: number, from: number, to: number, rand: () => number): number[] {
  if (n <= 0) return [];
  const step = n === 1 ? 0 : (to - from) / (n - 1);
  return Array.from({ length: n }, (_, i) => Math.max(1, Math.round(from + i * step + (rand() - 0.5) * step))).sort((a, b) => a - b);
}

/**
 * An event under the output that marks a phase of a run: a path appears, or vanishes; or the
 * regular files directly in the directory `path` hold `bytes` bytes or more (a write's progress,
 * whatever the machine's speed).
 */
export type Anchor = { path: string; event: 'appear' | 'vanish' } | { path: string; event: 'bytes'; bytes: number };

/**
 * Kill points over a whole run: a fifth by time from the start, spread over start-up and the
 * read-only work before the change (which begins `changeFrom` ms after the start); the rest
 * shared evenly among the phases of the change, each spread over its span (`spans[k]` ms)
 * by time after the event that begins it (`anchors[k]`, such as the lock appearing, or the
 * first tag), so that load on the machine cannot push them all before or after a phase.
 * Spacing is even, with seeded jitter. Deterministic for a seed.
 */
export function killPlan(n: number, timing: { changeFrom: number; spans: number[] }, anchors: Anchor[], seed: number): KillAt[] {
  const rand = prng(seed);
  const before = Math.max(1, Math.round(n / 5));
  const plan: KillAt[] = killDelays(before, 1, Math.max(2, timing.changeFrom), rand).map((ms) => ({ ms }));
  const rest = n - before;
  anchors.forEach((after, k) => {
    const count = Math.floor(rest / anchors.length) + (k < rest % anchors.length ? 1 : 0);
    plan.push(...killDelays(count, 0, Math.max(3, timing.spans[k]!), rand).map((ms) => ({ ms, after })));
  });
  return plan;
}

/** A kill point for messages: `120 ms after the start`, `35 ms after <path> appeared`. */
export function describeKill(k: KillAt, base = ''): string {
  if (k.after === undefined) return `${k.ms} ms after the start`;
  const path = base !== '' && k.after.path.startsWith(`${base}/`) ? k.after.path.slice(base.length + 1) : k.after.path;
  if (k.after.event === 'bytes') return `${k.ms} ms after ${path} held ${k.after.bytes} bytes`;
  return `${k.ms} ms after ${path} ${k.after.event === 'appear' ? 'appeared' : 'vanished'}`;
}

// ---------------------------------------------------------------------------------------------
// Trees
// ---------------------------------------------------------------------------------------------

/** A leftover a crash may leave, which the next run or gc removes: regfs temp files, trash, a take-over lock of a killed run. */
export function isLeftover(rel: string): boolean {
  return rel.split('/').some((c) => c.endsWith('.regfs-tmp') || c.startsWith('_regfs-trash-') || /\.regfs\.lock\.takeover-[0-9a-f]{16}/.test(c));
}

/** One walk of a tree: every entry by relative path, directories ending in `/`. */
export interface TreeWalk {
  files: Map<string, { size: number; ino: number; nlink: number; mtimeMs: number; mode: number; symlink?: string }>;
  dirs: Set<string>;
}

/** Every entry under `root`, listed by find(1), which is several times faster than a walk in JavaScript. */
export async function walkTree(root: string): Promise<TreeWalk> {
  const files: TreeWalk['files'] = new Map();
  const dirs = new Set<string>();
  if (!existsSync(root)) return { files, dirs };
  const { stdout } = await promisify(execFile)('find', [root, '-mindepth', '1', '-printf', '%y\\t%s\\t%i\\t%n\\t%T@\\t%m\\t%l\\0%P\\0'], { maxBuffer: 1 << 28 });
  const parts = stdout.split('\0');
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const [type, size, ino, nlink, mtime, mode, target] = parts[i]!.split('\t');
    const rel = parts[i + 1]!;
    if (type === 'd') {
      dirs.add(rel);
      continue;
    }
    files.set(rel, {
      size: Number(size),
      ino: Number(ino),
      nlink: Number(nlink),
      mtimeMs: Number(mtime) * 1000,
      mode: parseInt(mode!, 8),
      ...(type === 'l' ? { symlink: target! } : {}),
    });
  }
  return { files, dirs };
}

/** sha256 of files under `root` (relative paths), by sha256sum(1) in a process of its own. */
async function sha256Files(root: string, rels: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (rels.length === 0) return out;
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn('xargs', ['-0', '-r', 'sha256sum', '--'], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    let text = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (x: string) => (text += x));
    child.stderr.setEncoding('utf8').on('data', (x: string) => (err += x));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`sha256sum in ${root} exited ${code}: ${err}`))));
    child.stdin.end(rels.map((r) => `./${r}`).join('\0'));
  });
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    // "<hex>  ./<path>"; sha256sum escapes names holding a backslash or newline, which ours never do.
    out.set(line.slice(68), line.slice(0, 64));
  }
  return out;
}

/**
 * A cheap fingerprint of a tree that must not change (a source): every entry's path, type,
 * mode, size and mtime. Content cannot change without the mtime moving (regfs never sets
 * times), and hard-linking a file moves only its link count and ctime, which are left out.
 * The content itself is proven by snapshotTree before and after the whole series.
 */
export async function metaFingerprint(root: string): Promise<string> {
  // find(1) lists a tree several times faster than a walk in JavaScript; the listing is
  // compared as one string, and only split when it differs.
  const { stdout } = await promisify(execFile)('find', [root, '-mindepth', '1', '-printf', '%P\\0%y %m %s %T@ %l\\0'], { maxBuffer: 1 << 28 });
  return stdout;
}

/** A fingerprint as path → type, mode, size, mtime (directories: type and mode; their mtime moves with any entry added or removed, which shows as a path). */
export function fingerprintEntries(fingerprint: string): Map<string, string> {
  const parts = fingerprint.split('\0');
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < parts.length; i += 2) out.set(parts[i]!, parts[i + 1]!.startsWith('d ') ? `dir ${parts[i + 1]!.split(' ')[1]}` : parts[i + 1]!);
  return out;
}

/**
 * What snapshotTree (test/helpers/tree.ts) proves, by find(1) and sha256sum(1), several times
 * faster: every entry's path, type, mode, size and mtime, and every file's sha256.
 */
export async function contentSnapshot(root: string): Promise<Map<string, string>> {
  const entries = fingerprintEntries(await metaFingerprint(root));
  const files = [...entries].filter(([, v]) => v.startsWith('f ')).map(([p]) => p);
  const hashes = await sha256Files(root, files);
  for (const p of files) entries.set(p, `${entries.get(p)} ${hashes.get(p) ?? 'unhashed'}`);
  return entries;
}

/** Content hashes of files with more than one name, by inode: those inodes outlive the outputs. */
const sharedInodeHashes = new Map<string, string>();

/**
 * A tree's content: each file's relative path and sha256 (symbolic links: their target),
 * and each directory; no inode numbers, modes or times. Files with more than one name (blob
 * data hard-linked from a source that outlives the output) are hashed once per inode.
 */
export async function contentTree(root: string, opts: { skip?: (rel: string) => boolean } = {}): Promise<Map<string, string>> {
  const w = await walkTree(root);
  const out = new Map<string, string>();
  const skip = opts.skip ?? ((): boolean => false);
  for (const d of w.dirs) if (!skip(d)) out.set(`${d}/`, 'dir');
  const toHash: string[] = [];
  const keys = new Map<string, string>();
  for (const [rel, f] of w.files) {
    if (skip(rel)) continue;
    if (f.symlink !== undefined) {
      out.set(rel, `symlink ${f.symlink}`);
      continue;
    }
    const key = `${f.ino}:${f.size}:${f.mtimeMs}`;
    const h = f.nlink > 1 ? sharedInodeHashes.get(key) : undefined;
    if (h !== undefined) out.set(rel, h);
    else {
      toHash.push(rel);
      if (f.nlink > 1) keys.set(rel, key);
    }
  }
  for (const [rel, h] of await sha256Files(root, toHash)) {
    out.set(rel, h);
    const key = keys.get(rel);
    if (key !== undefined) sharedInodeHashes.set(key, h);
  }
  for (const rel of toHash) if (!out.has(rel)) throw new Error(`no hash for ${join(root, rel)}`);
  return out;
}

/** What differs between two content trees, at most `max` lines. */
export function treeDiff(got: Map<string, string>, want: Map<string, string>, max = 12): string[] {
  const out: string[] = [];
  for (const [p, h] of want) {
    if (!got.has(p)) out.push(`missing ${p}`);
    else if (got.get(p) !== h) out.push(`differs ${p}`);
  }
  for (const p of got.keys()) if (!want.has(p)) out.push(`extra ${p}`);
  out.sort();
  return out.length > max ? [...out.slice(0, max), `… ${out.length - max} more`] : out;
}

// ---------------------------------------------------------------------------------------------
// Census: what a killed run left
// ---------------------------------------------------------------------------------------------

/** Counts of what a storage tree holds, from one walk. */
export interface StorageCensus {
  blobs: number;
  layerLinks: number;
  revisionLinks: number;
  tags: number;
  leftovers: number;
  lock: boolean;
}

export function storageCensus(w: TreeWalk, v2rel: string): StorageCensus {
  const c: StorageCensus = { blobs: 0, layerLinks: 0, revisionLinks: 0, tags: 0, leftovers: 0, lock: false };
  const prefix = v2rel === '' ? '' : `${v2rel}/`;
  for (const p of w.files.keys()) {
    if (!p.startsWith(prefix)) continue;
    const rel = p.slice(prefix.length);
    if (isLeftover(rel)) {
      c.leftovers++;
      continue;
    }
    if (rel === '.regfs.lock') c.lock = true;
    else if (rel.startsWith('blobs/') && rel.endsWith('/data')) c.blobs++;
    else if (rel.startsWith('repositories/') && /\/_layers\/[^/]+\/[^/]+\/link$/.test(rel)) c.layerLinks++;
    else if (/\/_manifests\/revisions\/[^/]+\/[^/]+\/link$/.test(rel)) c.revisionLinks++;
    else if (/\/_manifests\/tags\/[^/]+\/current\/link$/.test(rel)) c.tags++;
  }
  for (const d of w.dirs) if (d.startsWith(prefix) && isLeftover(d.slice(prefix.length)) && !isLeftover(d.slice(prefix.length).split('/').slice(0, -1).join('/'))) c.leftovers++;
  return c;
}

/**
 * The phase a killed write into a storage tree (extract, from-dir) had reached, judged by
 * what is there against the complete result `full`: no blobs; some blobs; all blobs, some
 * links; all links, some tags; all tags.
 */
export function writePhase(c: StorageCensus, full: StorageCensus): string {
  if (c.blobs === 0 && c.layerLinks + c.revisionLinks + c.tags === 0) return c.lock ? 'locked, nothing written' : 'nothing written';
  if (c.layerLinks + c.revisionLinks === 0 && c.tags === 0) return c.blobs < full.blobs ? 'some blobs, no links' : 'all blobs, no links';
  if (c.tags === 0) return c.layerLinks + c.revisionLinks < full.layerLinks + full.revisionLinks ? 'some links, no tags' : 'all links, no tags';
  return c.tags < full.tags ? 'some tags' : 'all tags';
}

/** Add one to a counter. */
export function bump(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

export function formatCounts(counts: Map<string, number>): string {
  return [...counts].map(([k, n]) => `${k}: ${n}`).join(', ');
}

// ---------------------------------------------------------------------------------------------
// dir: exports
// ---------------------------------------------------------------------------------------------

/** What a (possibly killed) to-dir export holds, and what is wrong with it. */
export interface ExportCensus {
  /** Image directories (holding `version` or `manifest.json`). */
  imageDirs: number;
  /** Image directories with `manifest.json`. */
  manifests: number;
  /** Blob and instance-manifest files. */
  blobs: number;
  digestFile: boolean;
  leftovers: number;
  lock: boolean;
  /** Image directories with a manifest.json that lack something it names, and digest-file lines that are not complete images. */
  problems: string[];
}

/**
 * Check an export: every image directory that has a manifest.json has every instance manifest
 * (hashing to its name, of the size its index gives) and every config and layer (of the size
 * its manifest gives) it names; every line of digests.txt names such a complete directory
 * holding that digest.
 */
export async function checkExport(out: string, w: TreeWalk): Promise<ExportCensus> {
  const c: ExportCensus = { imageDirs: 0, manifests: 0, blobs: 0, digestFile: false, leftovers: 0, lock: false, problems: [] };
  const byDir = new Map<string, string[]>();
  for (const p of w.files.keys()) {
    if (isLeftover(p)) {
      c.leftovers++;
      continue;
    }
    if (p === '.regfs.lock') {
      c.lock = true;
      continue;
    }
    if (p === 'digests.txt') {
      c.digestFile = true;
      continue;
    }
    const slash = p.lastIndexOf('/');
    const dir = p.slice(0, slash);
    const list = byDir.get(dir) ?? [];
    list.push(p.slice(slash + 1));
    byDir.set(dir, list);
  }
  const complete = new Map<string, Digest>();
  for (const [dir, names] of byDir) {
    if (!names.includes('version') && !names.includes('manifest.json')) continue;
    c.imageDirs++;
    c.blobs += names.filter((n) => n !== 'version' && n !== 'manifest.json').length;
    if (!names.includes('manifest.json')) continue;
    c.manifests++;
    const have = new Set(names);
    const missing: string[] = [];
    const readManifest = async (file: string, want?: { digest: Digest; size: number }): Promise<void> => {
      const raw = await readFile(join(out, dir, file));
      const d = digestOf(raw);
      if (want !== undefined && (d !== want.digest || raw.length !== want.size)) {
        missing.push(`${file} is not ${want.digest} (${want.size} bytes)`);
        return;
      }
      const m = parseManifestContent(raw, d, join(dir, file));
      if (isIndexKind(m.kind)) {
        for (const ch of m.manifests) {
          const name = `${ch.digest.slice(ch.digest.indexOf(':') + 1)}.manifest.json`;
          if (!have.has(name)) missing.push(`instance ${name}`);
          else await readManifest(name, { digest: ch.digest, size: ch.size });
        }
        return;
      }
      for (const b of referencedBlobs(m)) {
        if (b.urls !== undefined) continue;
        const name = b.digest.slice(b.digest.indexOf(':') + 1);
        const f = w.files.get(`${dir}/${name}`);
        if (f === undefined) missing.push(`blob ${name}`);
        else if (f.size !== b.size) missing.push(`blob ${name} has ${f.size} bytes, not ${b.size}`);
      }
    };
    try {
      await readManifest('manifest.json');
    } catch (err) {
      missing.push(`unreadable: ${(err as Error).message}`);
    }
    if (missing.length > 0) c.problems.push(`${dir}: manifest.json is there but ${missing.slice(0, 3).join(', ')} missing or wrong`);
    else complete.set(dir, digestOf(await readFile(join(out, dir, 'manifest.json'))));
  }
  if (c.digestFile) {
    for (const line of (await readFile(join(out, 'digests.txt'), 'utf8')).split('\n')) {
      if (line === '') continue;
      const [digest, ref] = line.split(' ');
      if (complete.get(ref!) !== digest) c.problems.push(`digests.txt lists ${ref} as ${digest}, which is not a complete image directory with that manifest`);
    }
  }
  return c;
}

/** The phase a killed to-dir had reached, judged against the complete export `full`. */
export function exportPhase(c: ExportCensus, full: ExportCensus): string {
  if (c.imageDirs === 0) return c.lock ? 'locked, nothing written' : 'nothing written';
  if (c.blobs === 0) return c.imageDirs < full.imageDirs ? 'some version files' : 'all version files, no blobs';
  if (c.manifests === 0) return c.blobs < full.blobs ? 'some blobs, no manifest.json' : 'all blobs, no manifest.json';
  if (c.manifests < full.manifests) return 'some manifest.json';
  return c.digestFile ? 'digests.txt written' : 'all manifest.json, no digests.txt';
}

/** What a (killed) to-oci left in a layout. */
export interface OciCensus {
  /** Blob files, manifests included. */
  blobs: number;
  layoutFile: boolean;
  /** Entries of index.json; -1 when there is none. */
  entries: number;
  leftovers: number;
  lock: boolean;
  /** index.json entries whose manifests, children, configs or layers are missing or wrong. */
  problems: string[];
}

/**
 * Check a layout: every image index.json names has every manifest (hashing to its digest, of
 * the size its descriptor gives) and every config and layer (of its size) in blobs/.
 */
export async function checkOciLayout(out: string, w: TreeWalk): Promise<OciCensus> {
  const c: OciCensus = { blobs: 0, layoutFile: false, entries: -1, leftovers: 0, lock: false, problems: [] };
  for (const p of w.files.keys()) {
    if (isLeftover(p)) c.leftovers++;
    else if (p === '.regfs.lock') c.lock = true;
    else if (p === 'oci-layout') c.layoutFile = true;
    else if (p.startsWith('blobs/')) c.blobs++;
  }
  if (!w.files.has('index.json')) return c;
  const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: Digest; size: number; annotations?: Record<string, string> }> };
  c.entries = index.manifests.length;
  if (!c.layoutFile) c.problems.push('index.json without oci-layout');
  const blobPath = (d: Digest): string => `blobs/${d.replace(':', '/')}`;
  for (const e of index.manifests) {
    const missing: string[] = [];
    const readManifest = async (want: { digest: Digest; size: number }): Promise<void> => {
      if (!w.files.has(blobPath(want.digest))) {
        missing.push(`manifest ${want.digest}`);
        return;
      }
      const raw = await readFile(join(out, blobPath(want.digest)));
      if (digestOf(raw) !== want.digest || raw.length !== want.size) {
        missing.push(`${want.digest} is not ${want.size} bytes of that digest`);
        return;
      }
      const m = parseManifestContent(raw, want.digest, blobPath(want.digest));
      if (isIndexKind(m.kind)) {
        for (const ch of m.manifests) await readManifest({ digest: ch.digest, size: ch.size });
        return;
      }
      for (const b of referencedBlobs(m)) {
        if (b.urls !== undefined) continue;
        const f = w.files.get(blobPath(b.digest));
        if (f === undefined) missing.push(`blob ${b.digest}`);
        else if (b.size >= 0 && f.size !== b.size) missing.push(`blob ${b.digest} has ${f.size} bytes, not ${b.size}`);
      }
    };
    try {
      await readManifest(e);
    } catch (err) {
      missing.push(`unreadable: ${(err as Error).message}`);
    }
    if (missing.length > 0) c.problems.push(`index.json entry ${e.annotations?.['org.opencontainers.image.ref.name'] ?? e.digest}: ${missing.slice(0, 3).join(', ')} missing or wrong`);
  }
  return c;
}

/** The phase a killed to-oci had reached, judged against the complete layout `full`. */
export function ociPhase(c: OciCensus, full: OciCensus): string {
  if (c.blobs === 0) return c.lock ? 'locked, nothing written' : 'nothing written';
  if (c.entries < 0) return c.blobs < full.blobs ? 'some blobs, no index.json' : c.layoutFile ? 'all blobs and oci-layout, no index.json' : 'all blobs, no index.json';
  return 'index.json written';
}
