/**
 * `gc`: mark and sweep, correct for indexes. Roots are what the registry serves: every tag's
 * current manifest, and (without `deleteUntagged`) every manifest it serves by digest;
 * marking follows an index into its children and every image manifest into its config and
 * layers, recursively, so a child of a tagged index is never deleted (distribution 2.8's
 * `garbage-collect -m` deletes them: distribution#3178).
 *
 * docker-registry 2.8 serves a manifest by digest from its revision link or, failing that,
 * from a `_layers` link (2.1.0 linked manifests there; storage-formats §3.3). Revision links
 * are listed, so those manifests are roots at once. A manifest linked only under `_layers` is
 * found after everything else is marked: a `_layers`-linked blob not already walked as a
 * manifest, whose data is a regular file no larger than the registry's manifest limit
 * (MANIFEST_MAX_BYTES), and that decodes as a manifest as the registry decodes it. A blob
 * referenced as a config or layer may be a manifest too (a push may upload a manifest's
 * bytes as a layer): it is read whole only if its first bytes can begin a JSON object. Each
 * blob is read once; an unreferenced blob that is no manifest (an upload whose manifest never
 * came) is read and then swept. One that cannot be read is a problem (UNSAFE): it may be a
 * served manifest. The registry serves the data of the digest a link holds: where a link
 * holds another than its path names, both are marked.
 * `deleteUntagged` deletes manifests no tag reaches, so there such a manifest is no root.
 *
 * The sweep deletes unmarked blobs, the `_layers` links to them, and with `deleteUntagged`
 * the revision links (and tag history entries) of manifests no tag reaches, then leftovers
 * of interrupted writes (temp files, regfs trash), then the directories that leaves empty. Links go before blobs, so a run that is interrupted leaves
 * no link to deleted data; a re-run finishes the sweep. A dry run is the default. gc deletes
 * nothing it is not certain of: if a manifest it reaches cannot be read, a repository
 * directory's name cannot be parsed, a symbolic link loops, or (with `deleteUntagged`) a tag
 * cannot be read, `apply` is refused (UNSAFE): `regfs verify` says what is wrong. Symbolic
 * links to data and directories are followed for reading, as the registry follows them.
 *
 * On S3 the tree is read from one listing, the sweep deletes through the driver (a blob
 * directory or a link is its keys), there are no directories to remove and no lock (a
 * concurrent writer is not excluded: docs/s3.md). gc there also
 * lists the multipart uploads in progress under the storage root, which listings do not show
 * and the registry never aborts, and aborts (with `apply`) those older than `uploadAgeHours`.
 */
import { lstat, readdir, rm, rmdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pLimit from 'p-limit';
import { errnoCode, RegfsError } from '../errors.js';
import type { Digest } from '../digest.js';
import type { StorageDriver } from '../storage/driver.js';
import type { S3Storage } from '../storage/s3.js';
import { isIndexKind, parseManifestContent, referencedBlobs } from '../manifest.js';
import { blobDataPath, blobsDir } from '../registry/layout.js';
import { MANIFEST_MAX_BYTES, RegistryReader } from '../registry/read.js';
import { scanStorage, type CurrentLink, type LinkEntry, type RepoScan, type StorageScan } from '../registry/scan.js';
import { forEachChunkedAsync } from '../bounded.js';
import { isTempName } from '../fs/atomic.js';
import { checkJobs, checkUploadAge, withTreeLock } from './common.js';
import { settle } from './resolve.js';
import { PhaseProgress, type OnProgress } from '../progress.js';
import type { Finding } from './verify.js';

export interface GcOptions {
  root: string;
  /** Delete manifests that no tag reaches (children of tagged indexes are reached). */
  deleteUntagged?: boolean;
  /**
   * With `deleteUntagged`: keep every manifest whose `subject` is a kept manifest, transitively
   * (signatures, SBOMs, attestations no tag reaches). The default; false deletes them, as
   * distribution's `garbage-collect -m` does, and reports them in `referrers`.
   */
  keepReferrers?: boolean;
  /** Delete; without it, only report (the default). */
  apply?: boolean;
  jobs?: number;
  /** On S3: a multipart upload started more than this many hours ago is stale (default 24). */
  uploadAgeHours?: number;
  /** The `mark` phase (repositories), then with `apply` the `sweep` phase (paths deleted). */
  onProgress?: OnProgress;
}

export interface GcResult {
  applied: boolean;
  /** Blob directories to delete (deleted, if applied). */
  blobs: Array<{ digest: Digest; dir: string; size: number }>;
  bytes: number;
  /** Revision links of untagged manifests (with deleteUntagged). */
  manifests: Array<{ repo: string; digest: Digest; dir: string }>;
  /** `_layers` links to deleted blobs, and tag history entries of deleted manifests. */
  links: string[];
  /**
   * With `deleteUntagged`: the untagged manifests whose `subject` is a kept manifest
   * (transitively), kept with `keepReferrers`, else deleted (and listed in `manifests` too).
   */
  referrers: Array<{ repo: string; digest: Digest; subject: Digest; kept: boolean }>;
  /** Leftovers of interrupted writes (temp files, regfs trash and staging directories) and empty link directories. */
  temps: string[];
  /**
   * Entries that are no part of the registry layout, which gc leaves: someone's files or
   * directories beside a blob's data or a link, or under `blobs/` where no blob is. The
   * registry ignores them (its collector deletes them with a blob's directory); verify
   * reports them.
   */
  strays: string[];
  /**
   * On S3 only: the multipart uploads in progress under the storage root started more than
   * `uploadAgeHours` ago (aborted, if applied). Listings do not show them; they hold data.
   */
  uploads?: Array<{ key: string; uploadId: string; initiated: string }>;
  /** What could not be read while marking (manifests, tags with -m, repositories): apply is refused while there are any. */
  problems: Finding[];
  marked: number;
  seconds: number;
}

/** Collect garbage in registry storage. */
export async function gc(opts: GcOptions): Promise<GcResult> {
  const started = performance.now();
  const jobs = checkJobs(opts.jobs);
  const uploadAge = checkUploadAge(opts.uploadAgeHours);
  const reader = await RegistryReader.open(opts.root);
  const s3 = reader.driver.kind === 's3' ? (reader.driver as S3Storage) : undefined;
  const run = async (): Promise<GcResult> => {
    // An upload that completes between this listing and its abort keeps its object: aborting a
    // completed upload fails with NoSuchUpload, which abortUpload takes as done.
    const uploads = s3 === undefined ? undefined : await staleUploads(s3, uploadAge);
    const scan = await scanStorage(reader.driver);
    const plan: Plan = { ...(await markAndPlan(reader, scan, opts.deleteUntagged === true, opts.keepReferrers !== false, opts.onProgress)), ...(uploads === undefined ? {} : { uploads }) };
    if (opts.apply === true && plan.problems.length > 0) {
      const n = plan.problems.length;
      throw new RegfsError('UNSAFE', `${n} thing${n === 1 ? '' : 's'} gc relies on could not be read, so what is in use is not certain; nothing was deleted. Run regfs verify`, {
        problems: plan.problems.map((p) => new RegfsError(p.code, p.message, { path: p.path, digest: p.digest })),
      });
    }
    if (opts.apply === true) await sweep(reader.driver, plan, jobs, opts.onProgress);
    return { ...plan, applied: opts.apply === true, seconds: (performance.now() - started) / 1000 };
  };
  return opts.apply === true && s3 === undefined ? withTreeLock(reader.v2, 'gc', run) : run();
}

/** The multipart uploads under an S3 storage root started more than `hours` ago, oldest first. */
async function staleUploads(s3: S3Storage, hours: number): Promise<NonNullable<GcResult['uploads']>> {
  const before = Date.now() - hours * 3600_000;
  return (await s3.listUploads(s3.v2))
    .filter((u) => u.initiated.getTime() < before)
    .sort((a, b) => a.initiated.getTime() - b.initiated.getTime() || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((u) => ({ key: u.key, uploadId: u.uploadId, initiated: u.initiated.toISOString() }));
}

type Plan = Omit<GcResult, 'applied' | 'seconds'>;

async function markAndPlan(reader: RegistryReader, scan: StorageScan, deleteUntagged: boolean, keepReferrers: boolean, onProgress: OnProgress | undefined): Promise<Plan> {
  // Data that exists is present even if it is not a regular file: the registry follows
  // symbolic links, and reading a manifest that is not a regular file is a problem (UNSAFE).
  const present = (d: Digest): boolean => scan.blobs.get(d)?.data !== undefined;
  const marked = new Set<Digest>();
  const problems: Finding[] = [];
  for (const s of scan.strays) {
    if (s.kind === 'bad-repository-name') {
      problems.push({ code: 'NAME_INVALID', path: s.path, message: `"${s.path}" holds _manifests but its path is not a repository name regfs can parse, so what it references is unknown` });
    } else if (s.kind === 'loop') {
      problems.push({ code: 'SYMLINK_LOOP', path: s.path, message: `"${s.path}" is a symbolic link to a directory that contains it, so the repositories under it are not all known` });
    } else if (s.kind === 'alias') {
      problems.push({ code: 'SYMLINK_ALIAS', path: s.path, message: `"${s.path}" reaches, through a symbolic link, a directory already reached by another path; what is deleted through one name goes for both, so what is in use is not certain` });
    } else if (s.kind === 'not-directory') {
      problems.push({ code: 'LINK_INVALID', path: s.path, message: `"${s.path}" is a file where a directory of the repository should be, so what the repository holds is unknown (the registry answers 500 below it; its garbage-collect stops on it)` });
    } else if (s.kind === 'tag-not-directory' && deleteUntagged) {
      problems.push({ code: 'LINK_INVALID', path: s.path, message: `"${s.path}" is a file where a tag directory should be: the registry lists it as a tag, so what it holds is unknown (the registry's garbage-collect stops on it)` });
    }
  }

  /**
   * Read manifests at once (on S3, requests in flight together), a chunk at a time. The reader
   * keeps each, or the RegfsError it failed with, so the walk that takes them in its own order
   * reads none again and reports each problem where it reaches it.
   */
  const preload = (ds: Digest[]): Promise<void> => forEachChunkedAsync(ds.filter(present), (d) => settle(reader.manifest(d)), () => {});

  /** Manifests whose references have been followed (in any repository). */
  const walked = new Set<Digest>();
  /** Whether a blob's first bytes may begin a JSON object (servedThroughLayers), by digest: each is peeked at once. */
  const peeked = new Map<Digest, Promise<boolean>>();

  /**
   * Mark manifests and all they reference, from `roots`, as `repo` serves them; returns the
   * manifests reached (for per-repository reachability). The registry serves the data a link
   * holds, not the data its path names: a manifest by its revision link (else its `_layers`
   * link) and a blob by its `_layers` link. So where a link holds another digest than its
   * path (damage: verify reports LINK_INVALID), both are marked.
   */
  const mark = async (roots: Digest[], repo: RepoScan): Promise<Set<Digest>> => {
    const { revisionTarget, layerTarget } = servedTargets(repo);
    const reached = new Set<Digest>();
    await preload(roots);
    const work = [...roots];
    for (let d = work.pop(); d !== undefined; d = work.pop()) {
      if (reached.has(d)) continue;
      reached.add(d);
      marked.add(d);
      for (const t of [revisionTarget.get(d), layerTarget.get(d)]) if (t !== undefined) work.push(t);
      if (!present(d)) {
        // A manifest the repository serves whose data is not there (a fan-out directory on a
        // disk not mounted, a deleted file): what it references is unknown, so nothing is
        // certain. (A link that holds another digest than its path serves that one instead.)
        if (revisionTarget.has(d) || layerTarget.has(d)) continue;
        const path = blobDataPath(reader.v2, d);
        problems.push({ code: 'BLOB_UNKNOWN', path, message: `manifest ${d}, which ${repo.name} serves, has no blob data at "${path}", so what it references is unknown`, digest: d });
        continue;
      }
      let m;
      try {
        m = await reader.manifest(d);
      } catch (err) {
        if (!(err instanceof RegfsError)) throw err;
        problems.push({ code: err.code, path: err.path ?? scan.blobs.get(d)!.dir, message: err.message, digest: d });
        continue;
      }
      walked.add(d);
      if (isIndexKind(m.kind)) {
        const children = m.manifests.map((c) => c.digest);
        await preload(children.filter((c) => !reached.has(c)));
        for (const c of children) work.push(c);
      } else {
        for (const b of referencedBlobs(m)) {
          marked.add(b.digest);
          const t = layerTarget.get(b.digest);
          if (t !== undefined) marked.add(t);
        }
      }
    }
    return reached;
  };

  /**
   * The manifests the registry serves by digest only through the repository's `_layers`
   * links (the module comment says how they are found); called once everything else is marked.
   */
  const servedThroughLayers = async (repo: RepoScan): Promise<Digest[]> => {
    // What the link holds is what the registry serves (see mark). A blob already walked as a
    // manifest needs no second look; one marked as a layer may be a manifest all the same (a
    // push may upload a manifest's bytes as a layer): it is read only if its first bytes can
    // begin a JSON object, so the small layers of a store are peeked at, not read.
    const linked = repo.layers.flatMap((l) => {
      if (l.target === undefined || walked.has(l.target)) return [];
      const data = scan.blobs.get(l.target)?.data;
      if (data === undefined || !data.regular || data.size > MANIFEST_MAX_BYTES) return [];
      return [{ d: l.target, path: data.path }];
    });
    const candidates: typeof linked = [];
    await forEachChunkedAsync(
      linked,
      (c) => {
        if (!marked.has(c.d)) return Promise.resolve(true);
        let p = peeked.get(c.d);
        if (p === undefined) peeked.set(c.d, (p = mayBeJsonObject(reader.driver, c.path)));
        return p;
      },
      (c, keep) => {
        if (keep) candidates.push(c);
      },
    );
    const served: Digest[] = [];
    // A chunk of candidates is read at once (on S3, requests in flight together), judged in order.
    await forEachChunkedAsync(
      candidates,
      // 2.8 does not hash a manifest it serves, so bytes that no longer match their digest
      // are judged by whether they decode (a damaged layer does not): read with the manifest.
      async (c) => {
        const read = await settle(reader.manifest(c.d));
        const decodes = !read.ok && read.err instanceof RegfsError && read.err.code === 'DIGEST_MISMATCH' ? await decodesAsManifest(reader.driver, c.path, c.d) : true;
        return { read, decodes };
      },
      (c, { read, decodes }) => {
        if (read.ok) {
          served.push(c.d);
          return;
        }
        const err = read.err;
        if (!(err instanceof RegfsError)) throw err;
        // What the registry cannot decode it does not serve; anything else leaves it uncertain.
        if (!decodes) return;
        if (err.code !== 'MANIFEST_INVALID') problems.push({ code: err.code, path: err.path ?? c.path, message: `${err.message}: whether ${repo.name} serves it as a manifest is unknown`, digest: c.d });
      },
    );
    return served;
  };

  /**
   * The untagged revisions whose `subject` is a reached manifest, transitively (a signature on
   * an SBOM); with `keep` they are marked, with all they reference. A revision that cannot be
   * read is no referrer the registry can serve whole, and is left as it is.
   */
  const referrersOf = async (repo: RepoScan, reached: Set<Digest>, keep: boolean): Promise<Plan['referrers']> => {
    const bySubject = new Map<Digest, Digest[]>();
    // A chunk of revisions is read at once (on S3, requests in flight together), taken in order.
    await forEachChunkedAsync(
      repo.revisions.filter((r) => r.error === undefined && !reached.has(r.named) && present(r.named)),
      (r) => settle(reader.manifest(r.named)),
      (r, read) => {
        if (!read.ok && !(read.err instanceof RegfsError)) throw read.err;
        const subject = read.ok ? read.value.subject?.digest : undefined;
        if (subject === undefined) return;
        let l = bySubject.get(subject);
        if (l === undefined) bySubject.set(subject, (l = []));
        l.push(r.named);
      },
    );
    const found: Plan['referrers'] = [];
    if (bySubject.size === 0) return found;
    const taken = new Set<Digest>();
    const work = [...reached];
    for (let i = 0; i < work.length; i++) {
      const subject = work[i]!;
      for (const d of bySubject.get(subject) ?? []) {
        if (taken.has(d) || reached.has(d)) continue;
        taken.add(d);
        found.push({ repo: repo.name, digest: d, subject, kept: keep });
        if (!keep) {
          work.push(d);
          continue;
        }
        for (const x of await mark([d], repo)) {
          if (reached.has(x)) continue;
          reached.add(x);
          work.push(x);
        }
      }
    }
    return found;
  };

  const manifests: Plan['manifests'] = [];
  const links: string[] = [];
  const referrers: Plan['referrers'] = [];
  // Each repository once from its roots, and (without deleteUntagged) once more for its _layers-served manifests.
  const progress = new PhaseProgress(onProgress, 'mark', scan.repos.length * (deleteUntagged ? 1 : 2));
  for (const repo of scan.repos) {
    progress.add(1);
    progress.report();
    if (deleteUntagged) {
      for (const t of allTags(repo)) {
        if (t.current?.error !== undefined) problems.push({ code: t.current.error.code, path: t.current.path, message: `${t.current.error.message}: what tag ${repo.name}:${t.name} holds is unknown` });
      }
    }
    const reached = await mark(roots(repo, deleteUntagged), repo);
    if (!deleteUntagged) continue;
    for (const r of await referrersOf(repo, reached, keepReferrers)) referrers.push(r);
    const doomed = new Set<Digest>();
    for (const r of repo.revisions) {
      if (r.error !== undefined || reached.has(r.named)) continue;
      doomed.add(r.named);
      manifests.push({ repo: repo.name, digest: r.named, dir: dirname(r.path) });
    }
    for (const t of allTags(repo)) for (const e of t.index) if (doomed.has(e.named)) links.push(dirname(e.path));
  }
  if (!deleteUntagged) {
    for (const repo of scan.repos) {
      await mark(await servedThroughLayers(repo), repo);
      progress.add(1);
      progress.report();
    }
  }
  const blobs: Plan['blobs'] = [];
  let bytes = 0;
  for (const b of scan.blobs.values()) {
    if (marked.has(b.digest) || b.data === undefined) continue;
    blobs.push({ digest: b.digest, dir: b.dir, size: b.data.size });
    bytes += b.data.size;
  }
  const deleted = new Set(blobs.map((b) => b.digest));
  for (const repo of scan.repos) for (const l of repo.layers) if (deleted.has(l.named)) links.push(dirname(l.path));
  blobs.sort((a, b) => a.dir.localeCompare(b.dir));
  manifests.sort((a, b) => a.dir.localeCompare(b.dir));
  links.sort();
  const temps = scan.strays.filter((x) => x.kind === 'temp' || x.kind === 'empty').map((x) => x.path);
  const strays = scan.strays.filter((x) => x.kind === 'blob-extra' || x.kind === 'link-extra' || x.kind === 'misplaced-blob').map((x) => x.path);
  return { blobs, bytes, manifests, links, temps, strays, problems, referrers, marked: marked.size };
}

/**
 * Every directory under a repository's `_manifests/tags/`, as the registry's garbage collector
 * takes them: by their names, tags or not.
 */
function allTags(repo: RepoScan): Array<{ name: string; current: CurrentLink | undefined; index: LinkEntry[] }> {
  return [...repo.tags.map((t) => ({ ...t, name: t.tag })), ...repo.otherTags];
}

/**
 * A repository's roots: every tag's current manifest (a directory under `tags/` whose name is
 * no tag too: the registry keeps what it names), and every revision link (a malformed one
 * still protects the manifest its path names) or, with `taggedOnly`, only those that cannot
 * be read. A tag is a root whatever links the manifest (the registry serves it through a
 * revision or a `_layers` link), and a revision link that cannot be read is one even when
 * untagged (an empty link is what a 2.8 crash leaves): gc deletes nothing it is not certain of.
 */
function roots(repo: RepoScan, taggedOnly: boolean): Digest[] {
  const tagged = allTags(repo).flatMap((t) => (t.current?.target !== undefined ? [t.current.target] : []));
  const revisions = taggedOnly ? repo.revisions.filter((r) => r.error !== undefined) : repo.revisions;
  return [...tagged, ...revisions.map((r) => r.named)];
}

async function sweep(driver: StorageDriver, plan: Plan, jobs: number, onProgress: OnProgress | undefined): Promise<void> {
  const { v2 } = driver;
  const s3 = driver.kind === 's3' ? (driver as S3Storage) : undefined;
  const limit = pLimit(jobs);
  const uploads = plan.uploads ?? [];
  const progress = new PhaseProgress(onProgress, 'sweep', plan.links.length + plan.manifests.length + plan.blobs.length + plan.temps.length + uploads.length);
  // On S3 the keys under the storage root, listed once: each path goes as the keys at and
  // below it, 1,000 a request (not a listing and a request per path).
  const keys: string[] = [];
  if (s3 !== undefined) for await (const page of s3.walk(v2)) for (const f of page) keys.push(f.path);
  // A link's or a blob's directory loses its `link` or `data` (and temp files): what else it
  // holds is someone's, and stays with the directory. A leftover of a write goes whole.
  const removeAll = async (dirs: string[], what: 'own' | 'whole'): Promise<unknown> => {
    if (s3 !== undefined) {
      const doomed = new Set(dirs);
      await s3.deleteKeys(keys.filter((k) => (what === 'whole' ? atOrBelow(k, doomed) : doomed.has(dirname(k)) && isOwnEntry(basename(k)))));
      progress.add(dirs.length);
      progress.report();
      return;
    }
    return Promise.all(
      dirs.map((d) =>
        limit(async () => {
          await (what === 'whole' ? rm(d, { recursive: true, force: true }) : removeOwn(d));
          progress.add(1);
          progress.report();
        }),
      ),
    );
  };
  // Links first (tag history, revisions, _layers), then the blobs they pointed at.
  await removeAll(plan.links.filter((l) => l.includes(`${join('_manifests', 'tags')}`)), 'own');
  await removeAll(plan.manifests.map((m) => m.dir), 'own');
  await removeAll(plan.links.filter((l) => !l.includes(`${join('_manifests', 'tags')}`)), 'own');
  await removeAll(plan.blobs.map((b) => b.dir), 'own');
  await removeAll(plan.temps, 'whole');
  if (s3 !== undefined) {
    await Promise.all(
      uploads.map((u) =>
        limit(async () => {
          await s3.abortUpload(u.key, u.uploadId);
          progress.add(1);
          progress.report();
        }),
      ),
    );
    // S3 has no directories: nothing is left empty.
    return;
  }
  // Directories left empty, up to (not including) blobs/, _layers/, revisions/ and a tag's index/.
  const stops = new Set([blobsDir(v2)]);
  const emptied = [...plan.links, ...plan.manifests.map((m) => m.dir), ...plan.blobs.map((b) => b.dir)].map((p) => dirname(p));
  for (const dir of new Set(emptied)) await removeEmptyUpTo(dir, stops);
}

/** What gc deletes in a link's or a blob's directory: its `link` or `data`, and temp files. */
function isOwnEntry(name: string): boolean {
  return name === 'link' || name === 'data' || isTempName(name);
}

/**
 * A link's or a blob's directory on disk: its own entries removed, then the directory if
 * that emptied it (else it stays, with what someone else put there). A directory that is a
 * symbolic link (or a file) goes itself, never what it leads to.
 */
async function removeOwn(dir: string): Promise<void> {
  let st;
  try {
    st = await lstat(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw err;
  }
  if (!st.isDirectory()) {
    await rm(dir, { force: true });
    return;
  }
  for (const e of await readdir(dir, { withFileTypes: true })) {
    // A temp file, not a directory of such a name (as on S3, where only the keys in the directory go).
    if (isOwnEntry(e.name) && !(e.isDirectory() && isTempName(e.name))) await rm(join(dir, e.name), { recursive: true, force: true });
  }
  try {
    await rmdir(dir);
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw err;
  }
}

/** True if `key` is one of `paths` or below one. */
function atOrBelow(key: string, paths: Set<string>): boolean {
  for (let p = key; ; p = p.slice(0, p.lastIndexOf('/'))) {
    if (paths.has(p)) return true;
    if (!p.includes('/')) return false;
  }
}

async function removeEmptyUpTo(start: string, stops: Set<string>): Promise<void> {
  let dir = start;
  for (;;) {
    const base = dir.slice(dir.lastIndexOf('/') + 1);
    if (stops.has(dir) || base === '_layers' || base === 'revisions' || base === 'index' || base === 'blobs') return;
    try {
      await rmdir(dir);
    } catch {
      return;
    }
    dir = dirname(dir);
  }
}

/**
 * Where a link of `repo` holds another digest than its path names (damage), the digest it
 * holds, by the digest of its path: for revision links and for `_layers` links. The registry
 * serves a manifest from its revision link, else its `_layers` link, and a blob from its
 * `_layers` link: gc marks what either holds, whichever the registry reads.
 */
function servedTargets(repo: RepoScan): { revisionTarget: Map<Digest, Digest>; layerTarget: Map<Digest, Digest> } {
  const moved = (links: LinkEntry[]): Map<Digest, Digest> => new Map(links.flatMap((l) => (l.target !== undefined && l.target !== l.named ? [[l.named, l.target] as const] : [])));
  return { revisionTarget: moved(repo.revisions), layerTarget: moved(repo.layers) };
}

/** JSON's white space, which Go's decoder skips before a value. */
const JSON_SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * False only if the first bytes at `path` cannot begin a JSON object (their first byte that
 * is not white space is not `{`), so no decoder takes it for a manifest; true otherwise, also
 * when it cannot be read (then the full read reports why).
 */
async function mayBeJsonObject(driver: StorageDriver, path: string): Promise<boolean> {
  let head;
  try {
    head = await driver.getContent(path, 512);
  } catch {
    return true;
  }
  if (head === undefined || !Buffer.isBuffer(head)) return true;
  for (const b of head) if (!JSON_SPACE.has(b)) return b === 0x7b;
  return true;
}

/** True if the bytes at `path` decode as a manifest (whatever they hash to); false if not, or unreadable as such. */
async function decodesAsManifest(driver: StorageDriver, path: string, d: Digest): Promise<boolean> {
  try {
    // On disk read as before; on S3 through the driver (the candidate is no larger than the manifest limit).
    const bytes = driver.kind === 's3' ? await driver.getContent(path, MANIFEST_MAX_BYTES + 1) : readFileSync(path);
    if (bytes === undefined || !Buffer.isBuffer(bytes)) return true;
    parseManifestContent(bytes, d, path);
    return true;
  } catch (err) {
    if (err instanceof RegfsError && err.code === 'MANIFEST_INVALID') return false;
    return true;
  }
}
