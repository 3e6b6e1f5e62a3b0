/**
 * `extract`: a new registry tree holding only the listed images, blob data hard-linked.
 *
 * All or nothing: the whole list is resolved against the source first; if any line does not
 * parse or any image is missing or broken, every problem is reported and nothing is written
 * (unless `keepGoing`, which writes the images that resolved and still reports the rest).
 */
import { performance } from 'node:perf_hooks';
import { existsSync } from 'node:fs';
import { forEachChunked, forEachChunkedAsync } from '../bounded.js';
import { Problems } from '../errors.js';
import type { Digest } from '../digest.js';
import { openImageList } from '../image-list.js';
import type { ManifestKind } from '../manifest.js';
import { blobDataPath } from '../registry/layout.js';
import { RegistryReader } from '../registry/read.js';
import { countPlanFiles, writePlan, type WritePlan, type WriteStats } from '../registry/write.js';
import { resolveImages, type RepairedLink } from './resolve.js';
import { findReferrers, type ReferrerInfo, type RewrittenIndex } from './referrers.js';
import { assertOutsideSource, outputStorageRoot, s3OutputRoot } from './output-root.js';
import type { StorageDriver } from '../storage/driver.js';
import { isS3Root, openS3Root } from '../storage/open.js';
import { checkJobs, incomplete, planWrites, summarizeImage, withTreeLock, createOutputLinker, type ImageContent, type WriteCommandOptions, type WriteResultBase, refuseHardLinkFrom } from './common.js';
import { createConfigSummarizer, effectiveArtifactType, manifestPlatforms } from './inspect.js';

export interface ExtractOptions extends WriteCommandOptions {
  /** An image list: a file, `-` for standard input, or a directory of `*.list` files. */
  list: string;
  /** The source registry root (or its `docker/registry/v2`). */
  source: string;
  /** The output registry root (or a `docker/registry/v2`); created if missing. */
  output: string;
  stripRegistry?: boolean;
  /**
   * Take configs and layers whose data the source holds but whose repository lacks its
   * `_layers` link (the source registry answers 404 for them), and write the link in the
   * output; without it they are LAYER_UNLINKED. Each is listed in `repaired`.
   */
  repair?: boolean;
  /**
   * Take the referrers of every image too (signatures, SBOMs, attestations), transitively:
   * docs/referrers.md.
   */
  withReferrers?: boolean;
  /** For tests: standard input. */
  stdin?: () => Promise<string>;
}

/** One extracted (or planned) image. */
export interface ImageSummary {
  ref: string;
  repo: string;
  tag: string | undefined;
  digest: Digest;
  kind: ManifestKind;
  platforms: string[];
  /** OCI artifacts: `artifactType`, or the config media type when it is not an image config's (as ls gives it). */
  artifactType?: string;
  manifests: number;
  blobs: number;
  bytes: number;
  /** With referrers: every referrer that came along with the image, transitively. */
  referrers?: ReferrerInfo[];
}

/** What `withReferrers` took besides the images. */
export interface ReferrersResult {
  /** Referrer images written (or planned), fallback indexes included, each once. */
  images: number;
  /** Fallback indexes rewritten because the source lacks something they list (REFERRER_MISSING). */
  rewritten: RewrittenIndex[];
}

export interface ExtractResult extends WriteResultBase {
  /** Set with `withReferrers`. */
  referrers?: ReferrersResult;
  plan: { blobs: number; links: number; bytes: number; blobsAlreadyThere: number };
  /** What the write did; undefined for a dry run. */
  stats: WriteStats | undefined;
}

/** Extract the listed images from `source` into `output`. */
export async function extract(opts: ExtractOptions): Promise<ExtractResult> {
  const started = performance.now();
  checkJobs(opts.jobs);
  const reader = await RegistryReader.open(opts.source);
  refuseHardLinkFrom(reader.driver, opts.link);
  // The output: a directory, or a root on S3 (then written through its driver, without a lock).
  const s3 = isS3Root(opts.output) ? await openS3Root(opts.output) : undefined;
  const disk = s3 === undefined ? await outputStorageRoot(opts.output) : undefined;
  const out = disk ?? (await s3OutputRoot(s3!, reader.driver));
  if (disk !== undefined) await assertOutsideSource(opts.source, reader.v2, opts.output, disk.v2);

  const list = await openImageList(opts.list, { stripRegistry: opts.stripRegistry === true, stdin: opts.stdin });
  const problems = new Problems(opts.onProblem);
  // The list is parsed as it is resolved: only the images that resolve are held.
  const resolution = await resolveImages(reader, list.entries(problems), { repair: opts.repair === true, problems, onProgress: opts.onProgress });
  // A list problem is a line that does not parse: one a line.
  const leftOut = list.badLines + resolution.leftOut;
  if (problems.count > 0 && opts.keepGoing !== true) {
    throw incomplete(problems);
  }
  // Referrers after the images: one that cannot be taken is reported, not a reason to write nothing.
  const closure = opts.withReferrers === true ? await findReferrers(reader, resolution.images, { repair: opts.repair === true, problems }) : undefined;
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    opts.onWarning?.(m);
  };
  const all = closure === undefined ? resolution.images : [...resolution.images, ...closure.images];
  for (const img of all) {
    for (const d of img.absentForeign) {
      warn(`${img.entry.at.file}:${img.entry.at.line}: ${img.repo}: foreign layer ${d.digest} is not served by the source (it is fetched from ${d.urls?.[0] ?? 'its URL'}); the image is extracted without it`);
    }
  }
  const repaired = uniqueRepairs(all.flatMap((img) => img.repaired));
  // A manifest's bytes come from the file its data path leads to: a symbolic link there is
  // followed (blobInfo gives the real file), so the output gets content, never the link. A
  // rewritten referrers index is written from its new bytes. The paths are looked up first,
  // a chunk at once (resolve read the manifests, so blobInfo has them cached).
  const stored = new Set<Digest>();
  for (const img of all) for (const m of img.manifests) if (closure?.derived.has(m.digest) !== true) stored.add(m.digest);
  const storedPaths = new Map<Digest, string>();
  await forEachChunkedAsync(stored, (d) => reader.blobInfo(d), (d, info) => {
    if (info !== undefined) storedPaths.set(d, info.path);
  });
  stored.clear();
  const plan = planWrites(all, (m) =>
    closure?.derived.has(m.digest) === true ? { data: m.raw, size: m.raw.length } : { path: storedPaths.get(m.digest) ?? blobDataPath(reader.v2, m.digest), size: m.raw.length },
  );
  const counts = countPlanFiles(plan);
  const images = await summarizeImages(resolution.images, plan, opts.platforms);
  if (closure !== undefined) images.forEach((img, i) => (img.referrers = closure.byImage[i]!));
  const referrers = closure === undefined ? undefined : { images: closure.images.length, rewritten: closure.rewritten };
  if (closure !== undefined) closure.images.length = 0;
  // From here on only the plan is needed: let the manifests go before the write allocates.
  resolution.images.length = 0;
  reader.dropCaches();

  if (opts.dryRun === true) {
    const blobsAlreadyThere = !out.exists ? 0 : s3 === undefined ? await countExisting(plan, (d) => blobDataPath(out.v2, d)) : await countExistingOn(s3, plan);
    return {
      dryRun: true,
      output: s3 === undefined ? out.v2 : s3.urlOf(out.v2),
      images,
      problems: problems.list,
      problemCount: problems.count,
      leftOut,
      warnings,
      repaired,
      referrers,
      plan: { ...counts, blobsAlreadyThere },
      stats: undefined,
      seconds: (performance.now() - started) / 1000,
    };
  }

  const linker = createOutputLinker(out.v2, opts, warn);
  const write = { linker, fresh: !out.exists, source: reader.driver, onProgress: opts.onProgress };
  const stats =
    disk === undefined
      ? await writePlan(s3!, plan, write)
      : await withTreeLock(disk.v2, 'extract', () => writePlan(disk.v2, plan, { ...write, dirs: disk.dirs }), disk.dirs);
  return {
    dryRun: false,
    output: s3 === undefined ? out.v2 : s3.urlOf(out.v2),
    images,
    problems: problems.list,
    problemCount: problems.count,
    leftOut,
    warnings,
    repaired,
    referrers,
    plan: { ...counts, blobsAlreadyThere: stats.blobsExisting },
    stats,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Each image's summary, its platforms read from the configs the plan takes, on disk or in memory (as ls reads them from storage). */
export async function summarizeImages(images: ImageContent[], plan: WritePlan, platforms = true): Promise<ImageSummary[]> {
  if (!platforms) return images.map((img) => summarizeImage(img, [], effectiveArtifactType(img.manifests[0]!)));
  // A blob on disk, or in memory (a dry run of a tar keeps its configs' bytes, staging nothing).
  const summarize = createConfigSummarizer((d) => plan.blobs.get(d));
  return Promise.all(images.map(async (img) => summarizeImage(img, await manifestPlatforms(img.manifests, summarize), effectiveArtifactType(img.manifests[0]!))));
}

/** How many of the plan's blobs the output holds already. */
export async function countExisting(plan: WritePlan, dataPath: (d: Digest) => string): Promise<number> {
  let n = 0;
  await forEachChunked([...plan.blobs.keys()], (d) => {
    if (existsSync(dataPath(d))) n++;
  });
  return n;
}

/** How many of the plan's blobs an output on S3 holds already, of their size. */
export async function countExistingOn(driver: StorageDriver, plan: WritePlan): Promise<number> {
  let n = 0;
  await forEachChunkedAsync(
    [...plan.blobs],
    async ([d, b]) => {
      const st = await driver.stat(blobDataPath(driver.v2, d));
      return st?.kind === 'file' && st.size === b.size;
    },
    (_, there) => void (there && n++),
  );
  return n;
}

/** Each repaired link once (images of one repository share layers). */
export function uniqueRepairs(repairs: RepairedLink[]): RepairedLink[] {
  const seen = new Set<string>();
  return repairs.filter((r) => {
    const key = `${r.link}\0${r.missing}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
