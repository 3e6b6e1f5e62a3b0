/** What every command that reads a list and writes a tree shares. */
import { join } from 'node:path';
import { RegfsError, type ProblemSink, type Problems } from '../errors.js';
import { DEFAULT_JOBS } from '../defaults.js';
import { LOCK_FILE, withLock } from '../fs/lock.js';
import { mkdirpSync, type OutputDirs } from '../fs/atomic.js';
import type { Digest } from '../digest.js';
import type { Manifest } from '../manifest.js';
import type { RepoName, Tag } from '../reference.js';
import { emptyPlan, repoWrites, type BlobSource, type WritePlan } from '../registry/write.js';
import type { OnProgress } from '../progress.js';
import type { StorageDriver } from '../storage/driver.js';
import { createLinker, type LinkFs, type Linker, type LinkMode } from '../fs/link.js';
import type { ImageSummary } from './extract.js';
import type { RepairedLink } from './resolve.js';

/** What every command that writes a tree (extract, to-dir, from-dir) takes besides its paths. */
export interface WriteCommandOptions {
  /** Write the images that resolve even if others do not (their problems are returned). */
  keepGoing?: boolean;
  link?: LinkMode;
  jobs?: number;
  /** Resolve and plan; write nothing. */
  dryRun?: boolean;
  /** Progress through the run's phases (src/progress.ts): each once, in order. */
  onProgress?: OnProgress;
  /** Things worth telling that do not stop the run (a copy fallback, an absent foreign layer). */
  onWarning?: (message: string) => void;
  /**
   * Each problem as it is found (a list line that does not parse, a missing image). With it,
   * problems are not kept: the result's (or INCOMPLETE's) `problems` is empty and
   * `problemCount` counts them, so a list of a million missing images holds none of them.
   */
  onProblem?: ProblemSink;
  /** For tests: the file operations the linker uses. */
  linkFs?: LinkFs;
  /**
   * extract, from-dir, from-oci and apply: read each image's config for its platforms (the
   * default). With false the configs are not read and each image's `platforms` is []: for a
   * caller that does not show them (the CLI's text summary of a real run), where the reads
   * cost a file each.
   */
  platforms?: boolean;
}

/** The linker for writing into `out`, which warns once if hard links give way to copies. */
export function createOutputLinker(out: string, opts: WriteCommandOptions, warn: (message: string) => void): Linker {
  return createLinker(opts.link ?? 'auto', {
    fs: opts.linkFs,
    onFallback: ({ code }) => warn(`cannot hard-link into "${out}" (${code}${code === 'EXDEV' ? ': another filesystem' : ': not permitted'}); copying blob data instead`),
  });
}

export { DEFAULT_JOBS };

/** `--link hardlink` from a source on S3: nothing there can be hard-linked (its data is streamed or copied server-side). */
export function refuseHardLinkFrom(source: StorageDriver, link: LinkMode | undefined): void {
  if (source.kind !== 'filesystem' && link === 'hardlink') {
    throw new RegfsError('USAGE', `--link hardlink: blob data on S3 (${source.location}) cannot be hard-linked; it is streamed or copied (--link auto or copy)`);
  }
}

/** `jobs` must be a whole number from 1 up. */
export function checkJobs(jobs: number | undefined): number {
  if (jobs === undefined) return DEFAULT_JOBS;
  if (!Number.isInteger(jobs) || jobs < 1) throw new RegfsError('USAGE', `--jobs must be a whole number from 1 up, not ${jobs}`);
  return jobs;
}

/** `--upload-age`: a number of hours, 0 or more (yargs makes `abc` NaN); the default 24 if unset. */
export function checkUploadAge(hours: number | undefined): number {
  if (hours === undefined) return 24;
  if (!Number.isFinite(hours) || hours < 0) throw new RegfsError('USAGE', `--upload-age must be a number of hours, 0 or more, not ${hours}`);
  return hours;
}

/** The INCOMPLETE error that carries every problem kept (none if they went to a sink); nothing was written. */
export function incomplete(problems: Problems): RegfsError {
  const n = problems.count;
  return new RegfsError('INCOMPLETE', `${n} problem${n === 1 ? '' : 's'} found; nothing was written`, { problems: problems.list });
}

/** What every command that writes a tree (extract, from-dir, from-oci, to-oci) returns besides its plan and stats. */
export interface WriteResultBase {
  dryRun: boolean;
  /** What was written (or would be): a storage root, a layout. */
  output: string;
  images: ImageSummary[];
  /** Problems of images left out (only with keepGoing; otherwise they are thrown); none kept with `onProblem`. */
  problems: RegfsError[];
  /** How many problems were found, kept or not. */
  problemCount: number;
  /**
   * How many images the problems left out (keepGoing): each image once, however many
   * problems it has; a list line that selects none (a missing repository, a line that does
   * not parse) counts as one.
   */
  leftOut: number;
  warnings: string[];
  /** Links the output gets (or would get) that the source lacks, each once. */
  repaired: RepairedLink[];
  seconds: number;
}

/** An image's content, wherever it was read from. */
export interface ImageContent {
  repo: RepoName;
  /** Set for a tagged image; a digest-only image gets no tag files. */
  tag: Tag | undefined;
  digest: Digest;
  /** The top manifest first, then every descendant, each once. */
  manifests: Manifest[];
  /** Configs and layers present, each once, and where their bytes come from. */
  blobs: Map<Digest, BlobSource>;
}

/**
 * The files images need in a storage tree: every manifest's data and revision link, every
 * config's and layer's data and `_layers` link, a tag for tagged images. `manifestSource`
 * says where a manifest's stored bytes come from.
 */
export function planWrites(images: ImageContent[], manifestSource: (m: Manifest) => BlobSource): WritePlan {
  const plan = emptyPlan();
  for (const img of images) {
    const repo = repoWrites(plan, img.repo);
    const levels = manifestLevels(img.manifests);
    for (const m of img.manifests) {
      plan.blobs.set(m.digest, manifestSource(m));
      repo.revisions.set(m.digest, Math.max(repo.revisions.get(m.digest) ?? 0, levels.get(m.digest)!));
    }
    for (const [d, info] of img.blobs) {
      plan.blobs.set(d, info);
      repo.layers.add(d);
    }
    if (img.tag !== undefined) repo.tags.set(img.tag, img.digest);
  }
  return plan;
}

/**
 * Each manifest's level: 0 for an image manifest, an index one above its deepest child (of
 * those in `manifests`). Walked with an explicit stack, not by recursion, so no chain of
 * indexes can overflow the JS stack; a manifest is levelled once all its children are.
 * Content addressing makes a cycle impossible (an index cannot name its own digest).
 */
export function manifestLevels(manifests: Manifest[]): Map<Digest, number> {
  const byDigest = new Map(manifests.map((m) => [m.digest, m]));
  const levels = new Map<Digest, number>();
  for (const root of manifests) {
    if (levels.has(root.digest)) continue;
    // A depth-first walk whose frames keep their place in the child list: the stack is the
    // path from the root, each manifest is entered once and each child entry read once, so
    // an index naming one child thousands of times costs one pass over its list.
    const stack: Array<{ m: Manifest; next: number; level: number }> = [{ m: root, next: 0, level: 0 }];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      const list = frame.m.manifests;
      let descended = false;
      while (frame.next < list.length && !descended) {
        const child = byDigest.get(list[frame.next]!.digest);
        if (child === undefined) frame.next++;
        else {
          const l = levels.get(child.digest);
          if (l === undefined) {
            stack.push({ m: child, next: 0, level: 0 });
            descended = true;
          } else {
            frame.level = Math.max(frame.level, l + 1);
            frame.next++;
          }
        }
      }
      if (!descended) {
        levels.set(frame.m.digest, frame.level);
        stack.pop();
      }
    }
  }
  return levels;
}

/**
 * What the summary says of one image; `platforms` and `artifactType` as manifestPlatforms and
 * effectiveArtifactType (ops/inspect.ts) give them, as ls shows them.
 */
export function summarizeImage(img: ImageContent, platforms: string[], artifactType: string | undefined): ImageSummary {
  const top = img.manifests[0]!;
  let bytes = 0;
  for (const m of img.manifests) bytes += m.raw.length;
  for (const b of img.blobs.values()) bytes += b.size;
  return {
    ref: `${img.repo}${img.tag === undefined ? `@${img.digest}` : `:${img.tag}`}`,
    repo: img.repo,
    tag: img.tag,
    digest: img.digest,
    kind: top.kind,
    platforms,
    ...(artifactType === undefined ? {} : { artifactType }),
    manifests: img.manifests.length,
    blobs: img.blobs.size,
    bytes,
  };
}

/** Run `fn` holding the lock of the tree `root`, which is created if missing (checked by `dirs` when given). */
export async function withTreeLock<T>(root: string, command: string, fn: () => Promise<T>, dirs?: OutputDirs): Promise<T> {
  if (dirs === undefined) mkdirpSync(root);
  else dirs.ensure(root);
  return withLock(join(root, LOCK_FILE), command, fn);
}
