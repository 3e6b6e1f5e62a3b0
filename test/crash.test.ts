/**
 * Crashes: each writing command of the built CLI (extract, to-dir, from-dir, to-oci, from-oci
 * of a layout tar, apply of a bundle, gc --apply --delete-untagged, rm of a repository and rm
 * of a manifest) is SIGKILLed at 36 points (from-oci, whose writer extract and from-dir share:
 * 12; apply, from-oci's reader and writer: 10) spread over its whole run, on a large synthetic
 * store. After each kill:
 *
 *   1. the source is unchanged (a find(1) listing of type, mode, size and mtime after every
 *      kill; the sha256 of every file too, after the series); the output passes
 *      `verify --fast` but for leftovers a crash may leave (TEMP_FILE, STALE_LOCK), so no
 *      visible tag points at missing content; to-dir: every image directory holding a
 *      manifest.json has every blob and instance manifest it names, and digests.txt lists
 *      only such complete images;
 *   2. a re-run of the same command exits 0 (the dead run's lock is taken over) and leaves,
 *      entry by entry (paths, sha256 of files, directories), what an uninterrupted run
 *      leaves. Temp files and staging directories of a killed extract or from-dir are
 *      documented as gc's to remove (docs/guarantees.md): a re-run may leave them, they are
 *      counted, and at a few points `gc --apply` must then leave exactly the uninterrupted
 *      result;
 *   3. at a few points, docker-registry 2.8 started read-only on the killed output serves a
 *      sample of the tags visible there (skopeo copies them in full); after the re-run, full
 *      `verify` is clean and the registry serves a sample of the expected tags (to-dir: skopeo
 *      pushes a sample of image directories into a registry, checking every blob's digest).
 *
 * Kill points: three uninterrupted runs are timed (medians taken), watching the events that
 * begin the phases of the change: the lock appearing (blob data), the first repository's
 * `_layers` (links) and `_manifests/tags` (tags); for to-dir the first image directory's
 * first blob and its manifest.json; for gc the first tag-history entry and the first blob
 * its sweep deletes vanishing; for rm its renames. A fifth of the kills are spread over
 * start-up and the read-only work before the change, by time from the start; the rest are
 * shared among the phases, each spread over its phase by time after its event, so that load
 * on the machine cannot push them all before or after a phase. Spacing is even, with seeded
 * jitter. A small killer process starts regfs and SIGKILLs it on time, however busy this
 * test process is; a run that finished before its kill is run again with half the delay
 * (twice at most). What each killed output holds is counted by phase and printed as a
 * diagnostic; failures are printed by kind, with the first example of each.
 *
 * bundle has a short series of its own (8 points, its write timed by its temp file): what a
 * kill leaves visible is whole, and the re-run writes the uninterrupted bytes.
 *
 * CRASH_POINTS (default 36: the series is most of `npm test`'s time) sets the kill points per
 * command, CRASH_SCALE (default 1) the large store's size, CRASH_LANES (default 2) how many
 * kill points run at once. Needs
 * `npm run build`, docker-registry and skopeo; scratch space on /dev/shm when there is one.
 */
import { LOCK_FILE } from '../src/fs/lock.js';
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { verify } from '../src/ops/verify.js';
import { gc } from '../src/ops/gc.js';
import { isRegfsError } from '../src/errors.js';
import { digestFile, digestOf } from '../src/digest.js';
import { blobDataPath } from '../src/registry/layout.js';
import { startRegistry } from '../scripts/lib/registry-server.js';
import { ociLayoutFromExport, tarLayout } from '../scripts/lib/oci-from-export.js';
import { skopeoCopy, skopeoManifestDigestOf, withRetry } from '../scripts/lib/skopeo.js';
import { assertServed, assertServing, type Served } from './helpers/judge.js';
import { makeBundle } from './helpers/bundle.js';
import {
  CRASH_SHAPE,
  bump,
  checkExport,
  checkOciLayout,
  ociPhase,
  contentSnapshot,
  contentTree,
  describeKill,
  exportPhase,
  fingerprintEntries,
  formatCounts,
  isLeftover,
  killDelays,
  killPlan,
  linkCopy,
  metaFingerprint,
  prng,
  removeTree,
  runKilled,
  scratchDir,
  storageCensus,
  treeDiff,
  walkTree,
  writeCrashStore,
  writePhase,
  type CrashStore,
  type ExportCensus,
  type OciCensus,
  type Anchor,
  type KillAt,
  type StorageCensus,
  type TimedRun,
  type TreeWalk,
} from './helpers/crash.js';

const ALL_POINTS = Number(process.env.CRASH_POINTS ?? 36);
const SCALE = Number(process.env.CRASH_SCALE ?? 1);
const LANES = Number(process.env.CRASH_LANES ?? 2);
/** Killed outputs per command that the real registry judges, and re-run results. */
const REGISTRY_KILLED = 2;
const REGISTRY_RERUN = 1;
/** Points per command at which gc --apply must remove exactly what a re-run left of a killed extract or from-dir. */
const GC_AFTER_RERUN = 3;
const V2 = join('docker', 'registry', 'v2');
const LOCK = '.regfs.lock';
const TIMEOUT = 1_200_000;

let scratch: { dir: string; cleanup: () => Promise<void> };
/** The large store: extract and to-dir read it, gc works on hard-linked copies of it. */
let store: CrashStore;
/** A small store around a repository with many tags: rm works on hard-linked copies of it. */
let rmStore: CrashStore;
/** Every repository of the large store (so every tag), and digest lines. */
let listFile: string;
/** An uninterrupted to-dir export of the list: from-dir's input. */
let exportDir: string;
/** The export's tagged images as an OCI layout, and a tar of it (from-oci's input), in their own directory. */
let ociDir: string;
let ociTar: string;
/** Content snapshots and find(1) listings of the trees no command may change. */
const snapshots = new Map<string, Map<string, string>>();
const listings = new Map<string, string>();

before(async () => {
  scratch = await scratchDir('regfs-crash-');
  store = await writeCrashStore(join(scratch.dir, 'store'), {
    ...CRASH_SHAPE,
    repositories: Math.round(CRASH_SHAPE.repositories * SCALE),
    bigTags: Math.round(CRASH_SHAPE.bigTags * SCALE),
  });
  rmStore = await writeCrashStore(join(scratch.dir, 'rm-store'), { ...CRASH_SHAPE, repositories: 12, bigTags: 400 });
  listFile = join(scratch.dir, 'images.list');
  await writeFile(listFile, `${[...store.repos, ...store.digestRefs.map((r) => `${r.repo}@${r.digest}`)].join('\n')}\n`);
  exportDir = join(scratch.dir, 'export');
  const r = await runKilled(['to-dir', listFile, store.root, exportDir]);
  assert.equal(r.code, 0, r.stderr);
  ociDir = join(scratch.dir, 'oci');
  await ociLayoutFromExport(exportDir, join(ociDir, 'layout'));
  ociTar = join(ociDir, 'layout.tar');
  tarLayout(join(ociDir, 'layout'), ociTar);
  for (const dir of [store.root, rmStore.root, exportDir, ociDir]) {
    snapshots.set(dir, await contentSnapshot(dir));
    listings.set(dir, await metaFingerprint(dir));
  }
});

after(async () => {
  await scratch?.cleanup();
});

/** One command under test. */
interface Subject {
  name: string;
  /** The CLI arguments that write into (or change) `out`. */
  args: (out: string) => string[];
  /** Where the command takes its lock, relative to `out`. */
  lock: string;
  /**
   * Events, relative to `out`, that begin the phases of the change, in order (the first: the
   * lock appears, by default the only one). Kills are spread over each phase, by time after
   * its event.
   */
  anchors?: Anchor[];
  /** Make `out` ready for a run (gc, rm: a hard-linked copy of a store); by default `out` does not exist. */
  prepare?: (out: string) => Promise<void>;
  /** The tree the command reads and must not change, checked after every kill (gc and rm change their store). */
  source?: string;
  /** Trees whose content, mode and mtime must be as before, checked after the series: the source, or the store the copies share inodes with. */
  unchanged: string[];
  kind: 'storage' | 'export' | 'oci';
  /** The state a killed run left, from the census of its output and of the uninterrupted result. */
  phase: (c: StorageCensus | ExportCensus | OciCensus, full: StorageCensus | ExportCensus | OciCensus) => string;
  /** Temp files and staging directories a re-run leaves are gc's to remove (extract, from-dir). */
  leftoversForGc?: boolean;
  /** After a kill: the tags the registry must serve (default: a sample of those visible in the output). */
  servedWhileKilled?: (visible: string[]) => Served[];
  /** After the re-run: a sample of the tags served, and names not served. */
  served: () => { expected: Served[]; absent: string[] };
  /** The result is minimal, so the registry's garbage collector finds nothing (not after rm, which leaves blobs to gc). */
  minimal: boolean;
  tags: Map<string, string>;
  /** Kill points, if fewer than CRASH_POINTS (a command whose writer the others already cover). */
  points?: number;
  /** A re-run may rightly find nothing to do (rm killed after it had removed everything, only its lock left). */
  mayFindNothing?: boolean;
}

interface PointResult {
  i: number;
  kill: KillAt;
  run: TimedRun;
  phase: string;
  leftovers: number;
  leftoversAfterRerun: number;
  failures: string[];
}

/** At most `n` items, spread over the list. */
function spread<T>(items: readonly T[], n: number): T[] {
  if (items.length <= n) return [...items];
  if (n === 1) return [items[0]!];
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * (items.length - 1)) / (n - 1))]!);
}

/** `verify` findings a crash may leave, which the next run takes over (STALE_LOCK) or gc removes (TEMP_FILE). */
const TOLERATED = new Set(['TEMP_FILE', 'STALE_LOCK']);

/** verify's findings as `CODE path` (path relative to `out`); none if the storage root holds nothing yet. */
async function verifyFindings(out: string, fast: boolean): Promise<string[]> {
  try {
    const r = await verify({ root: out, fast, jobs: 8 });
    return r.findings.map((f) => `${f.code} ${f.path.startsWith(out) ? f.path.slice(out.length + 1) : f.path}`);
  } catch (err) {
    // Killed before the storage root held blobs/ or repositories/: nothing is visible.
    if (isRegfsError(err, 'NOT_REGISTRY')) return [];
    throw err;
  }
}

/** The tags visible in a storage tree: `repo:tag` for each `current/link`, sorted. */
function visibleTags(w: TreeWalk): string[] {
  const out: string[] = [];
  const re = /^repositories\/(.+)\/_manifests\/tags\/([^/]+)\/current\/link$/;
  for (const p of w.files.keys()) {
    if (!p.startsWith(`${V2}/`) || isLeftover(p)) continue;
    const m = re.exec(p.slice(V2.length + 1));
    if (m !== null) out.push(`${m[1]}:${m[2]}`);
  }
  return out.sort();
}

/** A read-only registry on `root`: every expected image has its digest and copies in full, no absent one is served. */
async function serve(root: string, expected: Served[], absent: string[], scratchPath: string): Promise<void> {
  const reg = await startRegistry({ root, readOnly: true });
  try {
    await assertServing(reg.host, expected, absent, scratchPath);
  } finally {
    await reg.stop();
    await removeTree(scratchPath);
  }
}

/**
 * The registry as judge of an export: skopeo pushes image directories (checking every blob
 * against its digest) into an empty registry, which then serves each with its digest.
 */
async function serveExport(out: string, refs: Array<{ ref: string; digest: string }>, scratchPath: string): Promise<void> {
  const root = join(scratchPath, 'registry');
  await mkdir(root, { recursive: true });
  const reg = await startRegistry({ root });
  try {
    for (const { ref } of refs) await withRetry(() => skopeoCopy(`dir:${join(out, ref)}`, `docker://${reg.host}/${ref}`, { all: true }));
    for (const { ref, digest } of refs) assert.equal(await skopeoManifestDigestOf(`docker://${reg.host}/${ref}`), digest, ref);
  } finally {
    await reg.stop();
    await removeTree(scratchPath);
  }
}

/**
 * The image directories of an export holding a manifest.json, and its digest. Nested indexes
 * are left out: skopeo 1.9 cannot copy them with --all.
 */
async function exportedImages(out: string, w: TreeWalk): Promise<Array<{ ref: string; digest: string }>> {
  const refs: Array<{ ref: string; digest: string }> = [];
  for (const p of w.files.keys()) {
    if (!p.endsWith('/manifest.json') || /[0-9a-f]{64}\.manifest\.json$/.test(p) || isLeftover(p) || p.includes(':nested/')) continue;
    refs.push({ ref: p.slice(0, -'/manifest.json'.length), digest: digestOf(await readFile(join(out, p))) });
  }
  return refs.sort((a, b) => a.ref.localeCompare(b.ref));
}

/** What a tree difference consists of. */
function diffKinds(diff: string[]): string {
  const kinds = new Set<string>();
  for (const d of diff) {
    const [what, path] = [d.slice(0, d.indexOf(' ')), d.slice(d.indexOf(' ') + 1)];
    if (what === 'extra' && isLeftover(path)) kinds.add('extra temp files or trash');
    else if (what === 'extra' && (path === LOCK || path.endsWith(`/${LOCK}`))) kinds.add('a lock left');
    else kinds.add(`${what} ${path.endsWith('/') ? 'directories' : 'files'}`);
  }
  return [...kinds].sort().join(', ');
}

/** A failure's kind: its message with the point, numbers, digests, paths and lists blotted out. */
function failureKind(f: string): string {
  return f
    .replace(/^.*?\(point \d+\): /, '')
    .replace(/: \d+ entries \[(.*?)\]: .*$/, ': $1')
    .replace(/: \d+ (findings|problems): (\S+).*$/, ': $2 …')
    .replace(/ \| .*$/, '')
    .replace(/[0-9a-f]{64}/g, '…')
    .replace(/"[^"]*"/g, '"…"')
    .replace(/\d+/g, 'N')
    .slice(0, 200);
}

async function crashSeries(t: TestContext, s: Subject): Promise<void> {
  const work = join(scratch.dir, `work-${s.name.replace(/\W+/g, '-')}`);
  await mkdir(work, { recursive: true });
  const anchors = s.anchors ?? [{ path: s.lock, event: 'appear' as const }];
  const points = Math.min(s.points ?? ALL_POINTS, ALL_POINTS);

  // Three uninterrupted runs: the result (the same every time), and when each phase begins.
  let want = new Map<string, string>();
  let full: StorageCensus | ExportCensus | OciCensus | undefined;
  const timings: Array<{ total: number; changeFrom: number; spans: number[] }> = [];
  for (const k of [0, 1, 2]) {
    const base = join(work, `base${k}`);
    await s.prepare?.(base);
    const r = await runKilled(s.args(base), { watch: [join(base, s.lock), ...anchors.map((a) => join(base, a.path))] });
    assert.equal(r.code, 0, `${s.name}, uninterrupted: ${r.stderr}`);
    const lockGone = r.seen.get(join(base, s.lock))?.last;
    const at = anchors.map((a) => {
      const seen = r.seen.get(join(base, a.path));
      assert.ok(seen !== undefined && lockGone !== undefined, `${s.name}: ${a.path} and the lock were seen`);
      return a.event === 'appear' ? seen.first : seen.last;
    });
    timings.push({ total: r.ms, changeFrom: at[0]!, spans: at.map((t0, j) => (at[j + 1] ?? lockGone!) - t0) });
    const tree = await contentTree(base);
    if (k === 0) {
      want = tree;
      const w = await walkTree(base);
      full = s.kind === 'storage' ? storageCensus(w, V2) : s.kind === 'oci' ? await checkOciLayout(base, w) : await checkExport(base, w);
      if (s.kind === 'storage') assert.deepEqual(await verifyFindings(base, false), [], `${s.name}: the uninterrupted result verifies clean`);
      else assert.deepEqual((full as ExportCensus | OciCensus).problems, [], `${s.name}: the uninterrupted export is complete`);
    } else {
      assert.deepEqual(treeDiff(tree, want), [], `${s.name}: uninterrupted runs leave the same tree`);
    }
    await removeTree(base);
  }
  // Medians: one run slowed by other work on the machine does not skew the plan.
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[1]!;
  const timing = {
    total: median(timings.map((x) => x.total)),
    changeFrom: median(timings.map((x) => x.changeFrom)),
    spans: anchors.map((_, j) => median(timings.map((x) => x.spans[j]!))),
  };
  const seed = [...s.name].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 0x01000193), 0x811c9dc5);
  const killsFor = (out: string): KillAt[] => killPlan(points, timing, anchors.map((a) => ({ ...a, path: join(out, a.path) })), seed);

  let registryKilled = 0;
  let registryRerun = 0;
  let gcAfterRerun = 0;
  let retries = 0;
  const cleanups: Array<Promise<void>> = [];
  const started = performance.now();

  const point = async (i: number): Promise<PointResult> => {
    const out = join(work, `p${i}`);
    let kill = killsFor(out)[i]!;
    const failures: string[] = [];
    const fail = (what: string): void => void failures.push(`${s.name} killed ${describeKill(kill, out)} (point ${i}): ${what}`);
    // A run that finished before its kill (the machine was faster than when timed) is run
    // again with the kill at half the delay, up to twice, so that nearly every point is a crash.
    let run: TimedRun;
    for (let attempt = 0; ; attempt++) {
      await s.prepare?.(out);
      run = await runKilled(s.args(out), { kill });
      if (run.killed || attempt === 2) break;
      if (run.code !== 0) fail(`the run, not killed, exited ${run.code}: ${run.stderr.trim()}`);
      await removeTree(out);
      kill = { ...kill, ms: Math.max(1, Math.floor(kill.ms / 2)) };
      retries++;
    }
    if (!run.killed && run.code !== 0) fail(`the run, not killed, exited ${run.code}: ${run.stderr.trim()}`);

    // 1. The source is unchanged, and the output consistent.
    if (s.source !== undefined) {
      const now = await metaFingerprint(s.source);
      if (now !== listings.get(s.source)) fail(`the source changed: ${treeDiff(fingerprintEntries(now), fingerprintEntries(listings.get(s.source)!)).join('; ') || 'its listing changed order'}`);
    }
    const w = await walkTree(out);
    let phase: string;
    let leftovers: number;
    const judgeKilled = run.killed && registryKilled < REGISTRY_KILLED && i >= ((registryKilled + 1) * points) / (REGISTRY_KILLED + 1);
    if (s.kind === 'storage') {
      const census = storageCensus(w, V2);
      leftovers = census.leftovers;
      phase = run.killed ? s.phase(census, full!) : 'finished before the kill';
      const bad = (await verifyFindings(out, true)).filter((f) => !TOLERATED.has(f.split(' ')[0]!));
      if (bad.length > 0) fail(`verify --fast: ${bad.length} findings: ${bad.slice(0, 4).join('; ')}`);
      const visible = visibleTags(w);
      if (judgeKilled && visible.length > 0) {
        registryKilled++;
        const sample = s.servedWhileKilled?.(visible) ?? spread(visible, 3).map((name) => ({ name, digest: s.tags.get(name)! }));
        await serve(out, sample, [], join(work, `judge-${i}`)).catch((err: Error) => fail(`the registry on the killed output: ${err.message}`));
      }
    } else if (s.kind === 'oci') {
      const census = await checkOciLayout(out, w);
      leftovers = census.leftovers;
      phase = run.killed ? s.phase(census, full!) : 'finished before the kill';
      if (census.problems.length > 0) fail(`layout: ${census.problems.length} problems: ${census.problems.slice(0, 3).join('; ')}`);
    } else {
      const census = await checkExport(out, w);
      leftovers = census.leftovers;
      phase = run.killed ? s.phase(census, full!) : 'finished before the kill';
      if (census.problems.length > 0) fail(`export: ${census.problems.length} problems: ${census.problems.slice(0, 3).join('; ')}`);
      if (judgeKilled && census.manifests > 0) {
        registryKilled++;
        const sample = spread(await exportedImages(out, w), 3);
        await serveExport(out, sample, join(work, `judge-${i}`)).catch((err: Error) => fail(`skopeo and the registry on the killed export: ${err.message}`));
      }
    }

    // 2. A re-run completes, and leaves what an uninterrupted run leaves. A kill that landed
    // after an rm had removed everything (only its lock left) leaves nothing to do: the re-run
    // then rightly says the thing is unknown, and the stale lock stays for the next writer.
    const doneAlready = s.mayFindNothing === true && treeDiff(await contentTree(out), want, Infinity).every((d) => d.startsWith('extra ') && (isLeftover(d.slice(6)) || d.endsWith(LOCK_FILE)));
    const rerun = await runKilled(s.args(out));
    const unknownButDone = rerun.code === 1 && doneAlready && /\[(NAME_UNKNOWN|MANIFEST_UNKNOWN)\]/.test(rerun.stderr);
    if (rerun.code !== 0 && !unknownButDone) fail(`the re-run exited ${rerun.code}: ${rerun.stderr.trim().split('\n').slice(-2).join(' | ')}`);
    let diff = treeDiff(await contentTree(out), want, Infinity).filter((d) => !(unknownButDone && d.endsWith(LOCK_FILE)));
    const leftoversAfterRerun = diff.filter((d) => d.startsWith('extra ') && isLeftover(d.slice(6))).length;
    if (leftoversAfterRerun > 0 && leftoversAfterRerun === diff.length && s.leftoversForGc === true && rerun.code === 0) {
      // Only leftovers of the killed run, which the docs leave to gc: at a few points, gc must remove them, and only them.
      if (gcAfterRerun < GC_AFTER_RERUN) {
        gcAfterRerun++;
        await gc({ root: out, apply: true });
        diff = treeDiff(await contentTree(out), want, Infinity);
        if (diff.length > 0) fail(`after the re-run and gc --apply, the tree differs from an uninterrupted run's: ${diff.length} entries [${diffKinds(diff)}]: ${diff.slice(0, 6).join('; ')}`);
      }
    } else if (diff.length > 0) {
      const seen = s.kind === 'storage' ? (await verifyFindings(out, true)).filter((f) => !TOLERATED.has(f.split(' ')[0]!)) : [];
      fail(
        `after the re-run, the tree differs from an uninterrupted run's: ${diff.length} entries [${diffKinds(diff)}]: ${diff.slice(0, 6).join('; ')}` +
          `${seen.length > 0 ? `; verify --fast then: ${seen.slice(0, 3).join('; ')}` : ''}`,
      );
    }

    // 3. At a few points: full verify, and the registry on the re-run's result.
    if (rerun.code === 0 && registryRerun < REGISTRY_RERUN && i >= ((registryRerun + 1) * points) / (REGISTRY_RERUN + 1)) {
      registryRerun++;
      const judge = join(work, `judge-rerun-${i}`);
      try {
        if (s.kind === 'storage') {
          // Leftovers the docs leave to gc are TEMP_FILE findings.
          const findings = (await verifyFindings(out, false)).filter((f) => !(s.leftoversForGc === true && f.startsWith('TEMP_FILE ')));
          if (findings.length > 0) fail(`verify after the re-run: ${findings.length} findings: ${findings.slice(0, 4).join('; ')}`);
          const { expected, absent } = s.served();
          if (s.minimal) await assertServed(out, expected, absent, judge);
          else await serve(out, expected, absent, judge);
        } else if (s.kind === 'oci') {
          const census = await checkOciLayout(out, await walkTree(out));
          if (census.problems.length > 0 || census.entries !== (full as OciCensus).entries) fail(`the re-run's layout: ${census.entries} entries, ${census.problems.slice(0, 3).join('; ')}`);
        } else {
          await serveExport(out, spread(await exportedImages(out, await walkTree(out)), 3), judge);
        }
      } catch (err) {
        fail(`the registry on the re-run's result: ${(err as Error).message}`);
      }
    }
    cleanups.push(removeTree(out));
    return { i, kill, run, phase, leftovers, leftoversAfterRerun, failures };
  };

  // Kill points in lanes: each lane takes the next point when it is done with one.
  const results: PointResult[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: LANES }, async () => {
      while (next < points) results.push(await point(next++));
    }),
  );
  await Promise.all(cleanups);
  await removeTree(work);
  results.sort((a, b) => a.i - b.i);

  // What the kills hit, and what failed.
  const plan = killsFor('OUT');
  const byPhase = [undefined, ...anchors].map((a) => {
    const ks = plan.filter((k) => k.after?.path === (a === undefined ? undefined : join('OUT', a.path)));
    const what = a === undefined ? 'the start' : `${a.path === s.lock ? 'the lock' : a.path} ${a.event === 'appear' ? 'appeared' : 'vanished'}`;
    return `${ks.length} at ${ks[0]?.ms}–${ks.at(-1)?.ms} ms after ${what}`;
  });
  const killed = results.filter((r) => r.run.killed).length;
  const phases = new Map<string, number>();
  for (const r of results) bump(phases, r.phase);
  t.diagnostic(
    `${s.name}: uninterrupted ${Math.round(timing.total)} ms, the change from ${Math.round(timing.changeFrom)} ms, its phases ${timing.spans.map((x) => `${Math.round(x)} ms`).join(' + ')}; ` +
      `kills: ${byPhase.join('; ')}; ${killed} of ${points} landed mid-run (${retries} run${retries === 1 ? '' : 's'} that finished first run again with half the delay); ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s (${LANES} lanes)`,
  );
  t.diagnostic(`${s.name}: states after the kill: ${formatCounts(phases)}`);
  t.diagnostic(
    `${s.name}: kills that left temp files or trash: ${results.filter((r) => r.leftovers > 0).length}; ` +
      `re-runs that left some: ${results.filter((r) => r.leftoversAfterRerun > 0).length} (gc --apply checked at ${gcAfterRerun}); ` +
      `registry judged ${registryKilled} killed outputs and ${registryRerun} re-run results`,
  );
  const failures = results.flatMap((r) => r.failures);
  const kinds = new Map<string, string[]>();
  for (const f of failures) kinds.set(failureKind(f), [...(kinds.get(failureKind(f)) ?? []), f]);
  for (const [kind, list] of kinds) t.diagnostic(`FAIL ×${list.length}: ${kind}\n    e.g. ${list[0]!.slice(0, 700)}`);

  for (const dir of s.unchanged) {
    assert.deepEqual(treeDiff(await contentSnapshot(dir), snapshots.get(dir)!), [], `${dir} (a source, or sharing its inodes with the copies) is unchanged in content, mode and mtime`);
  }
  assert.ok(killed >= points * 0.8, `most kills must land while the command runs (${killed} of ${points})`);
  assert.deepEqual(
    [...kinds].map(([kind, list]) => `×${list.length} ${kind}`),
    [],
    `${new Set(failures.map((f) => /\(point (\d+)\)/.exec(f)![1])).size} of ${points} kill points failed`,
  );
}

/** A sample of a store's tags: Docker and OCI images, indexes (a nested one too), a nested repository, the big repository. */
function sampleTags(st: CrashStore, keep: (name: string) => boolean = () => true): Served[] {
  const all = [...st.tags].filter(([name]) => keep(name));
  const pick = (pred: (n: string) => boolean, n = 1): Array<[string, string]> => spread(all.filter(([x]) => pred(x)), n);
  const chosen = [
    ...pick((n) => n.endsWith(':v1')),
    ...pick((n) => n.endsWith(':v2')),
    ...pick((n) => n.endsWith(':multi')),
    ...pick((n) => n.endsWith(':nested')),
    ...pick((n) => n.includes('/worker:') || n.includes('/nested:')),
    ...pick((n) => n.startsWith(`${st.bigRepo}:`)),
  ];
  return [...new Map(chosen)].map(([name, digest]) => ({ name, digest }));
}

/**
 * The phases of a write into storage (extract, from-dir): the lock appears (blob data), the
 * first repository written (big/many, the list's first line) gets `_layers` (links), then
 * `_manifests/tags` (tags).
 */
function storageAnchors(): Anchor[] {
  const repo = join(V2, 'repositories', store.bigRepo);
  return [
    { path: join(V2, LOCK), event: 'appear' },
    { path: join(repo, '_layers'), event: 'appear' },
    { path: join(repo, '_manifests', 'tags'), event: 'appear' },
  ];
}

type Census = StorageCensus | ExportCensus | OciCensus;
type Counted = 'blobs' | 'layerLinks' | 'revisionLinks' | 'tags';

/**
 * The state a killed gc or rm left: for each count in `order`, whether it is still as in the
 * store, part way, or as in the result; named by `labels[count]` = [part way, done].
 */
function removalPhase(original: () => StorageCensus, order: Counted[], labels: Record<string, [string, string]>) {
  return (cc: Census, ff: Census): string => {
    const [c, f, o] = [cc as StorageCensus, ff as StorageCensus, original()];
    let label = 'nothing removed';
    for (const k of order) {
      if (c[k] === o[k]) break;
      label = labels[k]![c[k] === f[k] ? 1 : 0];
      if (c[k] !== f[k]) break;
    }
    return c.leftovers > 0 ? `${label}, trash or temp left` : label;
  };
}

test(`crash: extract, SIGKILLed at ${ALL_POINTS} points, leaves only complete tags; a re-run finishes the job`, { timeout: TIMEOUT }, async (t) => {
  await crashSeries(t, {
    name: 'extract',
    args: (out) => ['extract', listFile, store.root, out],
    lock: join(V2, LOCK),
    anchors: storageAnchors(),
    source: store.root,
    unchanged: [store.root],
    kind: 'storage',
    phase: (c, f) => writePhase(c as StorageCensus, f as StorageCensus),
    leftoversForGc: true,
    served: () => ({ expected: sampleTags(store), absent: [`${store.untagged[0]!.repo}@${store.untagged[0]!.digest}`] }),
    minimal: true,
    tags: store.tags,
  });
});

test(`crash: to-dir, SIGKILLed at ${ALL_POINTS} points, leaves only complete image directories; a re-run finishes the job`, { timeout: TIMEOUT }, async (t) => {
  const firstImage = `${store.bigRepo}:t0000`;
  await crashSeries(t, {
    name: 'to-dir',
    args: (out) => ['to-dir', listFile, store.root, out],
    lock: LOCK,
    // The first image directory (the list's first line, its first tag): a blob, then its manifest.json.
    anchors: [
      { path: LOCK, event: 'appear' },
      { path: join(firstImage, (await readdir(join(exportDir, firstImage))).find((n) => /^[0-9a-f]{64}$/.test(n))!), event: 'appear' },
      { path: join(firstImage, 'manifest.json'), event: 'appear' },
    ],
    source: store.root,
    unchanged: [store.root],
    kind: 'export',
    phase: (c, f) => exportPhase(c as ExportCensus, f as ExportCensus),
    served: () => ({ expected: [], absent: [] }),
    minimal: true,
    tags: store.tags,
  });
});

test(`crash: to-oci, SIGKILLed at ${ALL_POINTS} points, leaves a layout whose index.json names only complete images; a re-run finishes the job`, { timeout: TIMEOUT }, async (t) => {
  await crashSeries(t, {
    name: 'to-oci',
    args: (out) => ['to-oci', listFile, store.root, out],
    lock: LOCK,
    // Blobs, then oci-layout, then index.json: the new index appears whole, last.
    anchors: [
      { path: LOCK, event: 'appear' },
      { path: 'oci-layout', event: 'appear' },
    ],
    source: store.root,
    unchanged: [store.root],
    kind: 'oci',
    phase: (c, f) => ociPhase(c as OciCensus, f as OciCensus),
    served: () => ({ expected: [], absent: [] }),
    minimal: true,
    tags: store.tags,
  });
});

test('crash: bundle of 240 MiB, SIGKILLed at 8 points, whole and split, leaves no bundle or volume half-written; a re-run writes the uninterrupted bytes and no temp file', { timeout: TIMEOUT }, async (t) => {
  const work = join(scratch.dir, 'bundle-crash');
  await mkdir(work, { recursive: true });
  // Images whose layers (24 MiB each) make the write most of the run, so that most kills land in it.
  const bigRoot = join(work, 'store');
  const { makeImage, makeLayer } = await import('../scripts/lib/images.js');
  const { writeStorage } = await import('../scripts/lib/write-storage.js');
  const bigImages = Array.from({ length: 10 }, (_, i) => makeImage({ format: 'oci', layers: [makeLayer(`bundle-crash-${i}`, 24 << 20)] }));
  await writeStorage(bigRoot, bigImages.map((image, i) => ({ repo: `big/img${i}`, tag: 'v1', image })));
  const bigList = join(work, 'big.list');
  await writeFile(bigList, bigImages.map((_, i) => `big/img${i}:v1\n`).join(''));
  // Two uninterrupted runs, timed: the whole run, and when its temp file appears (the write begins).
  const timed: Array<{ ms: number; writeAt: number }> = [];
  for (const k of [0, 1]) {
    const tdir = join(work, `timed${k}`);
    await mkdir(tdir);
    const t0 = performance.now();
    let writeAt = NaN;
    const poll = setInterval(() => {
      if (Number.isNaN(writeAt) && readdirSync(tdir).some((n) => n.endsWith('.regfs-tmp'))) writeAt = performance.now() - t0;
    }, 1);
    const r = await runKilled(['bundle', bigList, bigRoot, join(tdir, 'want.tar')]);
    clearInterval(poll);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!Number.isNaN(writeAt), 'the write was seen');
    timed.push({ ms: r.ms, writeAt });
  }
  const want = join(work, 'timed0', 'want.tar');
  const wantDigest = await digestFile(want);
  const wantBytes = await readFile(want);
  assert.ok(wantBytes.equals(await readFile(join(work, 'timed1', 'want.tar'))));
  // Volumes of about a quarter of the bundle, at least the 1 MiB regfs allows.
  const split = Math.max(1 << 20, Math.ceil(wantBytes.length / 4));
  const points = Math.min(8, ALL_POINTS);
  // A quarter by time over start-up and the resolution; the rest by the write's progress: when
  // the files in the output directory hold a share of the bundle's bytes (evenly spread, the
  // last near the end, before the renames), so that neither a slow nor a fast machine moves
  // them past the end of the run.
  const writeAt = Math.min(...timed.map((x) => x.writeAt));
  const end = Math.min(...timed.map((x) => x.ms));
  const rand = prng(13);
  const early = Math.floor(points / 4);
  const late = points - early;
  const byProgress = (dir: string, k: number): KillAt => {
    const share = (k + 0.5 + (rand() - 0.5) * 0.5) / late;
    return { ms: 0, after: { path: dir, event: 'bytes', bytes: Math.floor(wantBytes.length * share) } };
  };
  const kills = [...killDelays(early, 5, writeAt, rand).map((ms): KillAt => ({ ms })), ...Array.from({ length: late }, (_, k) => (dir: string) => byProgress(dir, k))];
  let killed = 0;
  let midWrite = 0;
  for (const [i, k] of kills.entries()) {
    const dir = join(work, `p${i}`);
    await mkdir(dir);
    const out = join(dir, 'b.tar');
    const args = ['bundle', bigList, bigRoot, out, ...(i % 2 === 1 ? ['--split', String(split)] : [])];
    const kill = typeof k === 'function' ? k(dir) : k;
    const when = describeKill(kill, work);
    const run = await runKilled(args, { kill });
    if (run.killed) killed++;
    else assert.equal(run.code, 0, run.stderr);
    if ((await readdir(dir)).some((n) => n.endsWith('.regfs-tmp'))) midWrite++;
    // What a kill leaves visible is whole: the bundle, or whole volumes of it (renamed the last first), never part of one.
    for (const n of (await readdir(dir)).filter((x) => !x.endsWith('.regfs-tmp'))) {
      const v = n === 'b.tar' ? wantBytes : wantBytes.subarray(Number(n.slice('b.tar.'.length)) * split, (Number(n.slice('b.tar.'.length)) + 1) * split);
      assert.ok((await readFile(join(dir, n))).equals(v), `point ${i} (${when}): ${n} is whole`);
    }
    const rerun = await runKilled(args);
    assert.equal(rerun.code, 0, rerun.stderr);
    const names = (await readdir(dir)).sort();
    assert.deepEqual(names.filter((n) => n.endsWith('.regfs-tmp')), [], `point ${i}: the re-run leaves no temp file`);
    const whole = join(dir, 'whole.tar');
    if (i % 2 === 1) await writeFile(whole, Buffer.concat(await Promise.all(names.map((n) => readFile(join(dir, n))))));
    assert.equal(await digestFile(i % 2 === 1 ? whole : out), wantDigest, `point ${i} (${when}): the uninterrupted bytes`);
    await removeTree(dir);
  }
  t.diagnostic(`bundle: uninterrupted ${Math.round(end)} ms, the write from ${Math.round(writeAt)} ms; ${killed} of ${points} kills landed mid-run, ${midWrite} while it wrote (temp files left)`);
  assert.ok(killed >= points / 2, `most kills land while bundle runs (${killed} of ${points})`);
  assert.ok(midWrite >= 2, `kills land while bundle writes (${midWrite} of ${points})`);
  await removeTree(work);
});

test(`crash: from-dir, SIGKILLed at ${ALL_POINTS} points, leaves only complete tags; a re-run finishes the job`, { timeout: TIMEOUT }, async (t) => {
  await crashSeries(t, {
    name: 'from-dir',
    args: (out) => ['from-dir', exportDir, out],
    lock: join(V2, LOCK),
    anchors: storageAnchors(),
    source: exportDir,
    unchanged: [exportDir, store.root],
    kind: 'storage',
    phase: (c, f) => writePhase(c as StorageCensus, f as StorageCensus),
    leftoversForGc: true,
    served: () => ({ expected: sampleTags(store), absent: [`${store.untagged[0]!.repo}@${store.untagged[0]!.digest}`] }),
    minimal: true,
    tags: store.tags,
  });
});

test('crash: from-oci of a layout tar, SIGKILLed at 12 points, leaves only complete tags; a re-run finishes the job', { timeout: TIMEOUT }, async (t) => {
  await crashSeries(t, {
    name: 'from-oci',
    args: (out) => ['from-oci', ociTar, out],
    lock: join(V2, LOCK),
    anchors: storageAnchors(),
    source: ociDir,
    unchanged: [ociDir, store.root],
    kind: 'storage',
    phase: (c, f) => writePhase(c as StorageCensus, f as StorageCensus),
    // A killed run's staging directory in the blob tree, as extract's and from-dir's temp files.
    leftoversForGc: true,
    served: () => ({ expected: sampleTags(store), absent: [`${store.untagged[0]!.repo}@${store.untagged[0]!.digest}`] }),
    minimal: true,
    tags: store.tags,
    // The writer is the one extract and from-dir are killed in at CRASH_POINTS; these kills are
    // spread over from-oci's own part too, the tar read into its staging directory.
    points: 12,
  });
});

test('crash: apply of a bundle, SIGKILLed at 10 points, leaves only complete tags; a re-run finishes the job', { timeout: TIMEOUT }, async (t) => {
  // The store's list as a bundle, made as docs/bundle.md orders it, in a directory of its own.
  const bundleDir = join(scratch.dir, 'bundle');
  await mkdir(bundleDir);
  const bundle = await makeBundle({ list: (await readFile(listFile, 'utf8')).trim().split('\n'), source: store.root, tar: join(bundleDir, 'release.tar') });
  snapshots.set(bundleDir, await contentSnapshot(bundleDir));
  listings.set(bundleDir, await metaFingerprint(bundleDir));
  await crashSeries(t, {
    name: 'apply',
    args: (out) => ['apply', bundle.tar, out],
    lock: join(V2, LOCK),
    anchors: storageAnchors(),
    source: bundleDir,
    unchanged: [bundleDir, store.root],
    kind: 'storage',
    phase: (c, f) => writePhase(c as StorageCensus, f as StorageCensus),
    // A killed run's staging directory in the blob tree, as from-oci's.
    leftoversForGc: true,
    served: () => ({ expected: sampleTags(store), absent: [`${store.untagged[0]!.repo}@${store.untagged[0]!.digest}`] }),
    minimal: true,
    tags: store.tags,
    // The writer and the tar reader are from-oci's, killed above; these kills cover apply's run of them.
    points: 10,
  });
});

test(`crash: gc --apply --delete-untagged, SIGKILLed at ${ALL_POINTS} points, never breaks a tag; a re-run finishes the sweep`, { timeout: TIMEOUT }, async (t) => {
  const storeCensus = storageCensus(await walkTree(store.root), V2);
  // The sweep deletes the history entries of overwritten tags first, then revision links,
  // _layers links and blob directories, each in path order.
  const firstSwept = store.overwritten.map((o) => join(V2, 'repositories', o.repo, '_manifests', 'tags', o.tag, 'index', 'sha256', o.digest.slice(7))).sort()[0]!;
  const firstStrayBlob = store.strayBlobs.map((d) => relative(store.root, join(blobDataPath(store.v2, d), '..'))).sort()[0]!;
  await crashSeries(t, {
    name: 'gc',
    args: (out) => ['gc', out, '--delete-untagged', '--apply'],
    lock: join(V2, LOCK),
    anchors: [
      { path: firstSwept, event: 'vanish' },
      { path: firstStrayBlob, event: 'vanish' },
    ],
    prepare: (out) => linkCopy(store.root, out),
    unchanged: [store.root],
    kind: 'storage',
    phase: removalPhase(() => storeCensus, ['revisionLinks', 'layerLinks', 'blobs'], {
      revisionLinks: ['some untagged revisions removed', 'untagged revisions removed'],
      layerLinks: ['revisions and some _layers links removed', 'links removed'],
      blobs: ['links and some blobs removed', 'all removed'],
    }),
    // Every tag stays served while gc runs.
    servedWhileKilled: () => sampleTags(store),
    served: () => ({ expected: sampleTags(store), absent: spread(store.untagged.map((u) => `${u.repo}@${u.digest}`), 3) }),
    minimal: true,
    tags: store.tags,
  });
});

test(`crash: rm of a repository with 400 tags, SIGKILLed at ${ALL_POINTS} points; a re-run finishes it`, { timeout: TIMEOUT }, async (t) => {
  const storeCensus = storageCensus(await walkTree(rmStore.root), V2);
  const big = rmStore.bigRepo;
  const others = (name: string): boolean => !name.startsWith(`${big}:`);
  await crashSeries(t, {
    name: 'rm repository',
    args: (out) => ['rm', out, big],
    lock: join(V2, LOCK),
    // Renames into the trash, then the trash is deleted.
    anchors: [
      { path: join(V2, LOCK), event: 'appear' },
      { path: join(V2, 'repositories', big, '_manifests'), event: 'vanish' },
    ],
    prepare: (out) => linkCopy(rmStore.root, out),
    unchanged: [rmStore.root],
    kind: 'storage',
    phase: removalPhase(() => storeCensus, ['tags', 'layerLinks'], {
      tags: ['part of _manifests removed', '_manifests removed'],
      layerLinks: ['_manifests and part of _layers removed', 'all removed'],
    }),
    // The other repositories (big/many/nested too) are served throughout; big/many's tags while they are visible.
    servedWhileKilled: (visible) => [...sampleTags(rmStore, others), ...sampleTags(rmStore, (n) => !others(n) && visible.includes(n))],
    served: () => ({ expected: sampleTags(rmStore, others), absent: [...spread(rmStore.bigSharedTags, 2), `${big}:t0001`] }),
    minimal: false,
    tags: rmStore.tags,
    mayFindNothing: true,
  });
});

test(`crash: rm of a manifest that 80 tags point at, SIGKILLed at ${ALL_POINTS} points; a re-run finishes it`, { timeout: TIMEOUT }, async (t) => {
  const storeCensus = storageCensus(await walkTree(rmStore.root), V2);
  const big = rmStore.bigRepo;
  const removed = new Set(rmStore.bigSharedTags);
  await crashSeries(t, {
    name: 'rm manifest',
    args: (out) => ['rm', out, `${big}@${rmStore.bigShared}`],
    lock: join(V2, LOCK),
    // Its tags, then its revision, renamed into the trash; then the trash is deleted.
    anchors: [
      { path: join(V2, LOCK), event: 'appear' },
      { path: join(V2, 'repositories', big, '_manifests', 'revisions', 'sha256', rmStore.bigShared.slice(7)), event: 'vanish' },
    ],
    prepare: (out) => linkCopy(rmStore.root, out),
    unchanged: [rmStore.root],
    kind: 'storage',
    phase: removalPhase(() => storeCensus, ['tags', 'revisionLinks'], {
      tags: ['some of its tags removed', 'its tags removed'],
      revisionLinks: ['?', 'tags and revision removed'],
    }),
    served: () => ({ expected: sampleTags(rmStore, (n) => !removed.has(n)), absent: [...spread([...removed], 3), `${big}@${rmStore.bigShared}`] }),
    minimal: false,
    tags: rmStore.tags,
    mayFindNothing: true,
  });
});
