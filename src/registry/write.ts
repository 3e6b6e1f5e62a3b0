/**
 * Writing registry storage: exactly what pushes would have left (storage-formats §3.2), in
 * an order that keeps every visible tag complete.
 *
 *   1. blob data: manifests, indexes, children, configs, layers (hard-linked or copied);
 *   2. `_layers` links (configs and layers) and the revision links of image manifests;
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
import { lstat, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import pLimit from 'p-limit';
import { forEachBounded } from '../bounded.js';
import { errnoCode, ioError, RegfsError } from '../errors.js';
import type { Digest } from '../digest.js';
import { writeFileAtomic, writeFileExclusive } from '../fs/atomic.js';
import type { Linker, PlaceOutcome } from '../fs/link.js';
import type { RepoName, Tag } from '../reference.js';
import {
  blobDataPath,
  blobDir,
  layerLinkPath,
  repoDir,
  revisionLinkPath,
  tagCurrentLinkPath,
  tagDir,
  tagIndexEntryLinkPath,
  tagsDir,
  TRASH_PREFIX,
} from './layout.js';
import { readLink, writeLink } from './link-file.js';

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

/** Progress through the phases. */
export interface WriteProgress {
  phase: 'blobs' | 'links' | 'tags' | 'hash';
  done: number;
  total: number;
}

export interface WriteOptions {
  linker: Linker;
  jobs?: number;
  /** The output was empty before: skip looking for existing files. */
  fresh?: boolean;
  onProgress?: (p: WriteProgress) => void;
}

/** What a write did. */
export interface WriteStats {
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

/** Write a plan into the storage root `v2` (`<root>/docker/registry/v2`). */
export async function writePlan(v2: string, plan: WritePlan, opts: WriteOptions): Promise<WriteStats> {
  const limit = pLimit(opts.jobs ?? 16);
  const fresh = opts.fresh === true;
  const stats: WriteStats = {
    blobsLinked: 0,
    blobsCopied: 0,
    blobsExisting: 0,
    blobsWritten: 0,
    bytes: 0,
    bytesCopied: 0,
    linksWritten: 0,
    linksUnchanged: 0,
  };

  const runPhase = async <T>(phase: WriteProgress['phase'], items: T[], work: (item: T) => Promise<void>): Promise<void> => {
    let done = 0;
    const total = items.length;
    opts.onProgress?.({ phase, done, total });
    await forEachBounded(limit, items, async (item) => {
      await work(item);
      done++;
      opts.onProgress?.({ phase, done, total });
    });
  };

  const putLink = async (path: string, d: Digest): Promise<void> => {
    if (!fresh) {
      let existing: Digest | undefined;
      try {
        existing = await readLink(path);
      } catch (err) {
        // A malformed link in the output is mended by writing it anew.
        if (!(err instanceof RegfsError && err.code === 'LINK_INVALID')) throw err;
      }
      if (existing === d) {
        stats.linksUnchanged++;
        return;
      }
    }
    try {
      await writeLink(path, d);
    } catch (err) {
      throw err instanceof RegfsError ? err : ioError('writing link', path, err);
    }
    stats.linksWritten++;
  };

  // 1. Blob data.
  await runPhase('blobs', [...plan.blobs], async ([d, src]) => {
    stats.bytes += src.size;
    const outcome = await placeBlob(v2, d, src, opts.linker);
    if (outcome === 'linked') stats.blobsLinked++;
    else if (outcome === 'copied') stats.blobsCopied++;
    else if (outcome === 'written') stats.blobsWritten++;
    else stats.blobsExisting++;
    if (outcome === 'copied' || outcome === 'written') stats.bytesCopied += src.size;
  });

  // 2. _layers links and image manifests' revision links; 3. indexes' revision links, level by level.
  const levels = new Map<number, Array<[string, Digest]>>();
  const atLevel = (n: number): Array<[string, Digest]> => {
    let l = levels.get(n);
    if (l === undefined) levels.set(n, (l = []));
    return l;
  };
  for (const [repo, r] of plan.repos) {
    for (const d of r.layers) atLevel(0).push([layerLinkPath(v2, repo, d), d]);
    for (const [d, level] of r.revisions) atLevel(level).push([revisionLinkPath(v2, repo, d), d]);
  }
  for (const n of [...levels.keys()].sort((a, b) => a - b)) await runPhase('links', levels.get(n)!, ([path, d]) => putLink(path, d));

  // 4. Tags, last: a tag becomes visible only when all it needs is there, and whole.
  const tags: Array<[RepoName, Tag, Digest]> = [];
  for (const [repo, r] of plan.repos) for (const [tag, d] of r.tags) tags.push([repo, tag, d]);
  await runPhase('tags', tags, async ([repo, tag, d]) => {
    if (!fresh && (await exists(tagDir(v2, repo, tag)))) {
      await putLink(tagIndexEntryLinkPath(v2, repo, tag, d), d);
      await putLink(tagCurrentLinkPath(v2, repo, tag), d);
      return;
    }
    await stageTag(v2, repo, tag, d);
    stats.linksWritten += 2;
  });
  return stats;
}

/**
 * Create a tag's directory whole: `current/link` and the `index/` entry are written in a
 * staging directory beside `_manifests` (its `_` keeps the catalog out), then renamed into
 * `tags/`. If the tag appeared meanwhile, its links are written in place instead.
 */
async function stageTag(v2: string, repo: RepoName, tag: Tag, d: Digest): Promise<void> {
  const stage = join(repoDir(v2, repo), `${TRASH_PREFIX}stage-${process.pid}-${randomBytes(4).toString('hex')}`);
  const staged = join(stage, tag);
  try {
    await writeLink(join(staged, 'current', 'link'), d);
    await writeLink(join(staged, relative(tagDir(v2, repo, tag), tagIndexEntryLinkPath(v2, repo, tag, d))), d);
    await mkdir(tagsDir(v2, repo), { recursive: true });
    try {
      await rename(staged, tagDir(v2, repo, tag));
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
      await writeLink(tagIndexEntryLinkPath(v2, repo, tag, d), d);
      await writeLink(tagCurrentLinkPath(v2, repo, tag), d);
    }
  } catch (err) {
    throw err instanceof RegfsError ? err : ioError('writing tag', tagDir(v2, repo, tag), err);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw ioError('reading', path, err);
  }
}

async function placeBlob(v2: string, d: Digest, src: BlobSource, linker: Linker): Promise<PlaceOutcome | 'written'> {
  const dest = blobDataPath(v2, d);
  try {
    await mkdir(blobDir(v2, d), { recursive: true });
  } catch (err) {
    throw ioError('creating blob directory', dirname(dest), err);
  }
  if ('path' in src) return linker.place(src.path, dest, src.size);
  // Bytes (a manifest regfs derived, such as a schema1 payload) replace existing data only if it is damaged.
  try {
    if (await writeFileExclusive(dest, src.data)) return 'written';
    if ((await lstat(dest)).size === src.size) return 'exists';
    await writeFileAtomic(dest, src.data, { parentExists: true });
    return 'written';
  } catch (err) {
    throw ioError('writing blob data', dest, err);
  }
}
