/**
 * Writing registry storage: exactly what pushes would have left (storage-formats §3.2), in
 * an order that keeps every visible tag complete.
 *
 *   1. blob data: manifests, indexes, children, configs, layers (hard-linked or copied);
 *   2. `_layers` links (configs and layers), then the revision links of image manifests;
 *   3. revision links of indexes, level by level: an index only after all its children
 *      (as a push must do it), so nothing is visible by digest before what it names;
 *   4. tags, last. A new tag's directory (`current/link` and its `index/` entry) is built in
 *      a staging directory and renamed into `tags/` whole, since the registry lists every
 *      directory there as a tag; an existing tag gets its `index/` entry, then its new
 *      `current/link` by rename.
 *
 * Each phase finishes before the next begins, so a run killed at any point leaves no tag
 * pointing at content that is not there, and a re-run completes the job: blob data already
 * there is kept (as the registry keeps it) unless damaged, a link with the right content is
 * left alone, and a missing or malformed one is written anew by temp file and rename.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, renameSync, rmdirSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { CHUNK, forEachChunked, forEachChunkedAsync } from '../bounded.js';
import { errnoCode, ioError, RegfsError } from '../errors.js';
import type { Digest } from '../digest.js';
import { OutputDirs, writeFileAtomicSync, writeFileExclusiveSync } from '../fs/atomic.js';
import type { Linker, PlaceOutcome } from '../fs/link.js';
import type { RepoName, Tag } from '../reference.js';
import {
  blobDataPath,
  layerLinkPath,
  repoDir,
  revisionLinkPath,
  tagCurrentLinkPath,
  tagDir,
  tagIndexEntryLinkPath,
  tagsDir,
  TRASH_PREFIX,
} from './layout.js';
import { linkContent, parseLinkContent, readLinkBytes } from './link-file.js';
import type { StorageDriver } from '../storage/driver.js';
import { FsStorage } from '../storage/fs.js';
import { PhaseProgress, type OnProgress } from '../progress.js';

/** Where a blob's bytes come from: a file to link or copy, or bytes to write. */
export type BlobSource = { path: string; size: number } | { data: Buffer; size: number };

/** The links one repository receives. */
export interface RepoWrites {
  layers: Set<Digest>;
  /** Manifest digest to level: 0 for an image manifest, an index one above its deepest child. */
  revisions: Map<Digest, number>;
  tags: Map<Tag, Digest>;
}

/** Everything to write into one storage tree. */
export interface WritePlan {
  blobs: Map<Digest, BlobSource>;
  repos: Map<RepoName, RepoWrites>;
}

export interface WriteOptions {
  linker: Linker;
  /** The output was empty before: skip looking for existing files. */
  fresh?: boolean;
  /**
   * The output's checked directories, rooted where the user named the output (a registry
   * root above `v2`, so the `docker/registry/v2` chain is checked too); by default `v2`.
   * On disk only.
   */
  dirs?: OutputDirs;
  /** Where the plan's blob paths are (an S3 source); by default the filesystem. */
  source?: StorageDriver;
  /** One `write` phase: every file (blob data, then links, then tag files) counted, blob data's bytes too. */
  onProgress?: OnProgress;
}

/** What a write did. */
export interface WriteStats {
  /** Reflinked (`--link auto` on a filesystem that can): own inodes, shared data blocks. */
  blobsCloned: number;
  blobsLinked: number;
  blobsCopied: number;
  blobsExisting: number;
  blobsWritten: number;
  /** Bytes of all blobs of the plan. */
  bytes: number;
  /** Bytes that were copied or written rather than linked or kept. */
  bytesCopied: number;
  linksWritten: number;
  linksUnchanged: number;
}

/** An empty plan, to be filled. */
export function emptyPlan(): WritePlan {
  return { blobs: new Map(), repos: new Map() };
}

/** The link set of a repository in a plan, created on first use. */
export function repoWrites(plan: WritePlan, repo: RepoName): RepoWrites {
  let r = plan.repos.get(repo);
  if (r === undefined) {
    r = { layers: new Set(), revisions: new Map(), tags: new Map() };
    plan.repos.set(repo, r);
  }
  return r;
}

/** How many files a plan writes: blob data and links. */
export function countPlanFiles(plan: WritePlan): { blobs: number; links: number; bytes: number } {
  let links = 0;
  let bytes = 0;
  for (const b of plan.blobs.values()) bytes += b.size;
  for (const r of plan.repos.values()) links += r.layers.size + r.revisions.size + 2 * r.tags.size;
  return { blobs: plan.blobs.size, links, bytes };
}

/**
 * Write a plan into registry storage: a storage root `v2` (`<root>/docker/registry/v2`) on
 * disk, or a StorageDriver (S3). The phases are one for both; what differs is the sink that
 * makes each step (FsSink, DriverSink below). On disk the work is metadata syscalls, made
 * synchronously in chunks with the event loop running between chunks (a threadpool round
 * trip per call costs more than the call: see docs/performance.md); through a driver the
 * steps of a chunk are requests in flight together. The first failure stops the write.
 *
 * Every directory written into on disk is a real directory of the output (OutputDirs): a
 * symbolic link anywhere below the output root (a repository, a tag, `_layers/sha256`, a
 * blob fan-out directory, the `docker/registry/v2` chain) stops the write with OUTPUT_SYMLINK
 * before anything is written through it.
 */
export async function writePlan(dest: string | StorageDriver, plan: WritePlan, opts: WriteOptions): Promise<WriteStats> {
  const stats: WriteStats = {
    blobsCloned: 0,
    blobsLinked: 0,
    blobsCopied: 0,
    blobsExisting: 0,
    blobsWritten: 0,
    bytes: 0,
    bytesCopied: 0,
    linksWritten: 0,
    linksUnchanged: 0,
  };
  const counts = countPlanFiles(plan);
  const progress = new PhaseProgress(opts.onProgress, 'write', counts.blobs + counts.links, counts.bytes);
  const sink = typeof dest === 'string' || dest.kind === 'filesystem' ? new FsSink(typeof dest === 'string' ? dest : dest.v2, opts, stats) : new DriverSink(dest, opts, stats);
  const v2 = sink.v2;
  try {
    // 1. Blob data. Reported blob by blob: a copy of a large one takes a while.
    await sink.placeBlobs([...plan.blobs], progress);

    // 2. _layers links and image manifests' revision links; 3. indexes' revision links, level by level.
    // Paths are made as each chunk of links is written, not held for all of them at once.
    type LinkItem = [RepoName, Digest, typeof layerLinkPath];
    const levels = new Map<number, LinkItem[]>();
    const atLevel = (n: number): LinkItem[] => {
      let l = levels.get(n);
      if (l === undefined) levels.set(n, (l = []));
      return l;
    };
    // Level 0: every _layers link; then revisions one level above their manifest's own
    // (images, then indexes by depth), so nothing is visible by digest before what it names.
    for (const [repo, r] of plan.repos) {
      for (const d of r.layers) atLevel(0).push([repo, d, layerLinkPath]);
      for (const [d, level] of r.revisions) atLevel(level + 1).push([repo, d, revisionLinkPath]);
    }
    for (const n of [...levels.keys()].sort((a, b) => a - b)) {
      await inChunks(levels.get(n)!, async (chunk) => {
        await sink.putLinks(chunk.map(([repo, d, pathOf]) => [pathOf(v2, repo, d), d]));
        progress.add(chunk.length);
        progress.report();
      });
      levels.delete(n);
    }

    // 4. Tags, last: a tag becomes visible only when all it needs is there, and whole.
    const tags: Array<[RepoName, Tag, Digest]> = [];
    for (const [repo, r] of plan.repos) for (const [tag, d] of r.tags) tags.push([repo, tag, d]);
    await inChunks(tags, async (chunk) => {
      await sink.putTags(chunk);
      progress.add(2 * chunk.length);
      progress.report();
    });
  } finally {
    sink.finish();
  }
  return stats;
}

/** `fn` for CHUNK items at a time, the event loop running between chunks. */
async function inChunks<T>(items: T[], fn: (chunk: T[]) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += CHUNK) {
    await fn(items.slice(i, i + CHUNK));
    if (i + CHUNK < items.length) await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The steps of a write, made on disk or through a driver. */
interface Sink {
  readonly v2: string;
  placeBlobs(blobs: Array<[Digest, BlobSource]>, progress: PhaseProgress): Promise<void>;
  /** Links, each written unless it already names its digest. */
  putLinks(links: Array<[string, Digest]>): Promise<void>;
  /** Tags: each visible complete or not at all. */
  putTags(tags: Array<[RepoName, Tag, Digest]>): Promise<void>;
  /** Clean up (staging directories), success or not. */
  finish(): void;
}

/** Writing on disk: temp files and renames in checked directories, a new tag staged whole. */
class FsSink implements Sink {
  private readonly fresh: boolean;
  private readonly dirs: OutputDirs;
  private readonly stages = new Map<RepoName, string>();

  constructor(
    readonly v2: string,
    private readonly opts: WriteOptions,
    private readonly stats: WriteStats,
  ) {
    this.fresh = opts.fresh === true;
    this.dirs = opts.dirs ?? new OutputDirs(v2);
    this.dirs.ensure(v2);
  }

  placeBlobs(blobs: Array<[Digest, BlobSource]>, progress: PhaseProgress): Promise<void> {
    const { v2 } = this;
    return writeBlobs(blobs, (d) => blobDataPath(v2, d), { linker: this.opts.linker, dirs: this.dirs, progress, source: this.opts.source }, this.stats);
  }

  async putLinks(links: Array<[string, Digest]>): Promise<void> {
    for (const [path, d] of links) this.putLink(path, d);
  }

  private putLink(path: string, d: Digest): void {
    const { dirs, stats } = this;
    if (!this.fresh) {
      dirs.checkExisting(dirname(path));
      let existing: Digest | undefined;
      try {
        existing = parseLinkContent(readLinkBytes(path), path);
      } catch (err) {
        // A malformed link in the output is mended by writing it anew.
        if (!(err instanceof RegfsError && err.code === 'LINK_INVALID')) throw err;
      }
      if (existing === d) {
        stats.linksUnchanged++;
        return;
      }
    }
    // A link's directory holds that link alone.
    dirs.ensure(dirname(path), false);
    try {
      writeFileAtomicSync(path, d, { parentExists: true });
    } catch (err) {
      throw ioError('writing link', path, err);
    }
    stats.linksWritten++;
  }

  async putTags(tags: Array<[RepoName, Tag, Digest]>): Promise<void> {
    const { v2, dirs } = this;
    for (const [repo, tag, d] of tags) {
      dirs.ensure(tagsDir(v2, repo));
      if (!this.fresh && exists(tagDir(v2, repo, tag))) {
        this.putLink(tagIndexEntryLinkPath(v2, repo, tag, d), d);
        this.putLink(tagCurrentLinkPath(v2, repo, tag), d);
        continue;
      }
      let stage = this.stages.get(repo);
      if (stage === undefined) {
        // A fresh directory of its own, made by one mkdir in the checked repository directory.
        stage = join(repoDir(v2, repo), `${TRASH_PREFIX}stage-${process.pid}-${randomBytes(4).toString('hex')}`);
        try {
          mkdirSync(stage);
        } catch (err) {
          throw ioError('creating', stage, err);
        }
        this.stages.set(repo, stage);
      }
      if (stageTag(v2, stage, repo, tag, d)) this.stats.linksWritten += 2;
      else {
        this.putLink(tagIndexEntryLinkPath(v2, repo, tag, d), d);
        this.putLink(tagCurrentLinkPath(v2, repo, tag), d);
      }
    }
  }

  finish(): void {
    for (const stage of this.stages.values()) rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * Writing through a driver (S3): one PUT a link, blob data placed by the driver (a server-side
 * copy between roots of one service, else a streamed upload). An object store has no rename
 * and no directories: a tag is visible once its `current/link` is, so that is written first,
 * then the tag's `index/` entry (the registry keeps it as history); a re-run writes what a
 * killed run left out.
 */
class DriverSink implements Sink {
  readonly v2: string;
  private readonly fresh: boolean;
  private readonly source: StorageDriver;

  constructor(
    private readonly dest: StorageDriver,
    opts: WriteOptions,
    private readonly stats: WriteStats,
  ) {
    this.v2 = dest.v2;
    this.fresh = opts.fresh === true;
    this.source = opts.source ?? new FsStorage('/', { linker: opts.linker });
  }

  async placeBlobs(blobs: Array<[Digest, BlobSource]>, progress: PhaseProgress): Promise<void> {
    const { stats } = this;
    await forEachChunkedAsync(
      blobs,
      async ([d, src]) => {
        const path = blobDataPath(this.v2, d);
        if ('path' in src) return this.dest.placeBlob(this.source, src.path, path, src.size, { absent: this.fresh });
        if (!this.fresh) {
          const there = await this.dest.stat(path);
          if (there?.kind === 'file' && there.size === src.size) return 'exists';
        }
        await this.dest.putContent(path, src.data);
        return 'written';
      },
      ([, src], outcome) => {
        count(stats, outcome, src.size);
        progress.add(1, src.size);
      },
      () => progress.report(),
    );
  }

  async putLinks(links: Array<[string, Digest]>): Promise<void> {
    await Promise.all(links.map(([path, d]) => this.putLink(path, d)));
  }

  private async putLink(path: string, d: Digest): Promise<void> {
    if (!this.fresh) {
      let existing: Digest | undefined;
      try {
        existing = parseLinkContent(await linkContent(this.dest, path), path);
      } catch (err) {
        // A malformed link in the output is mended by writing it anew.
        if (!(err instanceof RegfsError && err.code === 'LINK_INVALID')) throw err;
      }
      if (existing === d) {
        this.stats.linksUnchanged++;
        return;
      }
    }
    await this.dest.putContent(path, Buffer.from(d, 'latin1'));
    this.stats.linksWritten++;
  }

  async putTags(tags: Array<[RepoName, Tag, Digest]>): Promise<void> {
    await Promise.all(
      tags.map(async ([repo, tag, d]) => {
        await this.putLink(tagCurrentLinkPath(this.v2, repo, tag), d);
        await this.putLink(tagIndexEntryLinkPath(this.v2, repo, tag, d), d);
      }),
    );
  }

  finish(): void {}
}

/**
 * Build a new tag's directory (`current/link` and its `index/` entry) in the repository's
 * staging directory and rename it into `tags/` whole: the registry lists every directory
 * there as a tag, so the tag appears complete or not at all. The staged files need no temp
 * files of their own; the rename is the atomic step. False if the tag appeared meanwhile.
 */
function stageTag(v2: string, stage: string, repo: RepoName, tag: Tag, d: Digest): boolean {
  const final = tagDir(v2, repo, tag);
  const staged = `${stage}/${tag}`;
  try {
    // The tag's `index/<alg>/<hex>/link`, below the staged directory instead of the final one.
    const entry = `${staged}${tagIndexEntryLinkPath(v2, repo, tag, d).slice(final.length)}`;
    // Parents first, one mkdir each (a recursive mkdir would first fail on every missing parent).
    for (const dir of [staged, `${staged}/current`, `${staged}/index`, dirname(dirname(entry)), dirname(entry)]) mkdirSync(dir);
    writeFileSync(`${staged}/current/link`, d, { flag: 'wx', mode: 0o644 });
    writeFileSync(entry, d, { flag: 'wx', mode: 0o644 });
    renameSync(staged, final);
    return true;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EEXIST' || code === 'ENOTEMPTY') {
      rmSync(staged, { recursive: true, force: true });
      return false;
    }
    throw ioError('writing tag', final, err);
  }
}

function exists(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch (err) {
    throw ioError('reading', path, err);
  }
}

/** What placing blob data did, for every writer. */
export type BlobStats = Pick<WriteStats, 'blobsCloned' | 'blobsLinked' | 'blobsCopied' | 'blobsExisting' | 'blobsWritten' | 'bytes' | 'bytesCopied'>;

/**
 * Phase 1 of every writer (registry storage, an OCI layout): each blob's data placed at
 * `pathOf(digest)` (reflinked, hard-linked, copied or written; existing data kept unless
 * damaged), its directory a checked real directory of the output, counted into `stats` and,
 * blob by blob, into the write phase's `progress`.
 */
export async function writeBlobs(
  blobs: Array<[Digest, BlobSource]>,
  pathOf: (d: Digest) => string,
  opts: { linker: Linker; dirs: OutputDirs; progress: PhaseProgress; source?: StorageDriver | undefined },
  stats: BlobStats,
): Promise<void> {
  const remote = opts.source !== undefined && opts.source.kind !== 'filesystem' ? opts.source : undefined;
  if (remote !== undefined) {
    // From S3: each blob streams into a temp file beside its place, several at once.
    const disk = new FsStorage('/', { linker: opts.linker, dirs: opts.dirs });
    await forEachChunkedAsync(
      blobs,
      async ([d, src]) => ('path' in src ? disk.placeBlob(remote, src.path, pathOf(d), src.size) : placeBlob(pathOf(d), opts.dirs, src, opts.linker)),
      ([, src], outcome) => {
        count(stats, outcome, src.size);
        opts.progress.add(1, src.size);
      },
      () => opts.progress.report(),
    );
    return;
  }
  await forEachChunked(blobs, ([d, src]) => {
    count(stats, placeBlob(pathOf(d), opts.dirs, src, opts.linker), src.size);
    opts.progress.add(1, src.size);
    opts.progress.report();
  });
}

function count(stats: BlobStats, outcome: PlaceOutcome | 'written', size: number): void {
  stats.bytes += size;
  if (outcome === 'cloned') stats.blobsCloned++;
  else if (outcome === 'linked') stats.blobsLinked++;
  else if (outcome === 'copied') stats.blobsCopied++;
  else if (outcome === 'written') stats.blobsWritten++;
  else stats.blobsExisting++;
  if (outcome === 'copied' || outcome === 'written') stats.bytesCopied += size;
}

function placeBlob(dest: string, dirs: OutputDirs, src: BlobSource, linker: Linker): PlaceOutcome | 'written' {
  const dir = dirname(dest);
  dirs.ensure(dir, false);
  try {
    return placeBlobData(dest, src, linker);
  } catch (err) {
    // Leave no blob directory without data behind (verify would report it, and a registry's
    // stat of the blob would find a directory and no data).
    try {
      rmdirSync(dir);
    } catch {
      // not empty (the data was there before), or gone
    }
    throw err;
  }
}

function placeBlobData(dest: string, src: BlobSource, linker: Linker): PlaceOutcome | 'written' {
  // A hard link makes no temp file: link(2) itself says EEXIST for data already there, which
  // the linker then checks for its size (no lstat first: a new output has none).
  if ('path' in src && linker.current === 'hardlink') return linker.place(src.path, dest, src.size);
  // Data already there, of its size, is kept without a temp file beside it (a re-run, from-oci
  // and apply of blobs the output holds), so its directory is left as it was, mtime too.
  if (isFileOfSize(dest, src.size)) return 'exists';
  if ('path' in src) return linker.place(src.path, dest, src.size);
  // Bytes (a manifest regfs derived, such as a schema1 payload) replace existing data only if it is damaged.
  try {
    if (writeFileExclusiveSync(dest, src.data)) return 'written';
    const st = lstatSync(dest);
    if (st.isFile() && st.size === src.size) return 'exists';
    writeFileAtomicSync(dest, src.data, { parentExists: true });
    return 'written';
  } catch (err) {
    throw ioError('writing blob data', dest, err);
  }
}

function isFileOfSize(path: string, size: number): boolean {
  let st: Stats | undefined;
  try {
    // Absent is the common case (a new output): answered without an exception built and caught.
    st = lstatSync(path, { throwIfNoEntry: false });
  } catch (err) {
    throw ioError('reading', path, err);
  }
  return st !== undefined && st.isFile() && st.size === size;
}
