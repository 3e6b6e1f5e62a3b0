/**
 * `to-dir`: export images from registry storage to containers/image `dir:` directories, for
 * carrying across an air gap. One image directory per reference, named as
 * `skopeo sync --scoped` names them, so `skopeo sync --src dir` and `regfs from-dir` can
 * push or import the tree; or (`image`) one directory, as `skopeo copy docker://… dir:DIR`
 * writes it. An index is exported whole, as `skopeo copy --all` does, unless `platform`
 * selects one child, as skopeo without `--all` does.
 *
 * Blob files are reflinked from the registry where the filesystem can (their own inodes),
 * else hard-linked (one inode however many image directories hold a blob): see fs/link.ts. Exporting into an existing export brings it to exactly what a fresh export
 * would be: unchanged blobs are left alone, changed manifests replaced atomically, stale
 * files and stale image directories removed. An image directory is removed only if regfs
 * exported it: its `version` file holds exactly the dir: transport text and the export's
 * record, `digests.txt`, lists its reference. A run with problems (`--keep-going`) removes
 * no image directory, so the export of an image that did not resolve this time stays, and
 * stays in the record. A non-empty directory without a `version` file where an image goes
 * is refused, as skopeo refuses it. In each image directory, blobs and instance manifests
 * land before `manifest.json`, and stale files go only after it, so a killed run leaves
 * every image directory readable, old or new.
 */
import { readdirSync, rmdirSync, rmSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { readRegularFile } from '../registry/link-file.js';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { performance } from 'node:perf_hooks';
import { forEachChunked, forEachChunkedAsync } from '../bounded.js';
import { errnoCode, ioError, Problems, quote, RegfsError } from '../errors.js';
import type { Digest } from '../digest.js';
import { openImageList, type ImageList, type ListEntry } from '../image-list.js';
import { referencedBlobs, type Manifest, type Platform } from '../manifest.js';
import { parsePlatform, selectPlatform } from './platform.js';
import { parseImageRef } from '../reference.js';
import { assertOutputDirectory, isTempName, mkdirpSync, OutputDirs, removeMatching, TEMP_SUFFIX, writeFileAtomicSync } from '../fs/atomic.js';
import type { Linker } from '../fs/link.js';
import { LOCK_FILE, withLock } from '../fs/lock.js';
import { RegistryReader, type BlobInfo } from '../registry/read.js';
import type { StorageDriver } from '../storage/driver.js';
import { FsStorage } from '../storage/fs.js';
import { isS3Root } from '../storage/open.js';
import type { PlaceOutcome } from '../fs/link.js';
import { PhaseProgress, type OnProgress } from '../progress.js';
import { DIGEST_FILE, DIR_VERSION, MANIFEST_FILE, VERSION_FILE, blobPath, manifestFileName, manifestPath, versionPath } from '../dir/layout.js';
import { decodePortable, imageDirName } from '../dir/names.js';
import { checkJobs, incomplete, withTreeLock, createOutputLinker, type WriteCommandOptions, refuseHardLinkFrom } from './common.js';
import { assertOutsideSource } from './output-root.js';
import { resolveImages, type RepairedLink, type ResolvedImage } from './resolve.js';
import { findReferrers, type ReferrerInfo } from './referrers.js';
import type { ReferrersResult } from './extract.js';
import { uniqueRepairs } from './extract.js';
import { createConfigSummarizer, effectiveArtifactType, manifestPlatforms, type ConfigSummarizer } from './inspect.js';

export { DIGEST_FILE };

export interface ToDirOptions extends WriteCommandOptions {
  /** An image list (file, `-`, or directory of `*.list`); or set `image` instead. */
  list?: string;
  /** One reference, exported into `output` itself. */
  image?: string;
  source: string;
  output: string;
  /** `os/arch[/variant]`: export only that child of an index. */
  platform?: string;
  portableNames?: boolean;
  stripRegistry?: boolean;
  /**
   * Export configs and layers whose data the source holds but whose repository lacks its
   * `_layers` link (the source registry answers 404 for them); without it they are
   * LAYER_UNLINKED. Each is listed in `repaired`.
   */
  repair?: boolean;
  /**
   * As for extract: take the referrers of every image too, each an image directory of its
   * own (`repo:tag` if tagged, `repo@digest` if not). Not with `image` (one directory).
   */
  withReferrers?: boolean;
  stdin?: () => Promise<string>;
}

/** One exported image directory. */
export interface ExportedImage {
  ref: string;
  /** The image directory, relative to the output. */
  dir: string;
  digest: Digest;
  kind: Manifest['kind'];
  platforms: string[];
  /** OCI artifacts: `artifactType`, or the config media type when it is not an image config's (as ls gives it). */
  artifactType?: string;
  blobs: number;
  bytes: number;
  /** With referrers: every referrer that came along with the image, transitively. */
  referrers?: ReferrerInfo[];
}

export interface ToDirStats {
  /** Reflinked (`--link auto` on a filesystem that can): own inodes, shared data blocks. */
  blobsCloned: number;
  blobsLinked: number;
  blobsCopied: number;
  blobsExisting: number;
  manifestsWritten: number;
  manifestsUnchanged: number;
  staleFilesRemoved: number;
  staleImagesRemoved: number;
  /** Bytes of every blob and manifest file the image directories hold (the sum of the images' `bytes`). */
  bytes: number;
  /** Bytes of blob data copied rather than linked or kept. */
  bytesCopied: number;
}

export interface ToDirResult {
  dryRun: boolean;
  output: string;
  images: ExportedImage[];
  problems: RegfsError[];
  /** How many problems were found, kept or not (see WriteCommandOptions.onProblem). */
  problemCount: number;
  /** How many images the problems left out (keepGoing), each once: see ExtractResult.leftOut. */
  leftOut: number;
  warnings: string[];
  /** With `repair`: the configs and layers exported that the source repository does not link. */
  repaired: RepairedLink[];
  /** Image directories a fresh export would not have (removed unless a dry run). */
  staleImages: string[];
  /** Set with `withReferrers`. */
  referrers?: ReferrersResult;
  stats: ToDirStats | undefined;
  seconds: number;
}

/** What one image directory must hold. */
interface DirPlan {
  image: ExportedImage;
  path: string;
  top: Manifest;
  instances: Manifest[];
  blobs: Map<Digest, BlobInfo>;
  /** The image it was planned from. */
  source: ResolvedImage;
}

/** Export images to `dir:` directories. */
export async function toDir(opts: ToDirOptions): Promise<ToDirResult> {
  const started = performance.now();
  checkJobs(opts.jobs);
  if ((opts.list === undefined) === (opts.image === undefined)) {
    throw new RegfsError('USAGE', 'to-dir takes an image list or --image REF, not both and not neither');
  }
  if (opts.withReferrers === true && opts.image !== undefined) {
    throw new RegfsError('USAGE', '--with-referrers exports each referrer as an image directory of its own; with --image there is one directory: give a list');
  }
  if (isS3Root(opts.output)) throw new RegfsError('USAGE', `to-dir writes dir: images into a local directory, not into S3 (${opts.output}); regfs extract writes registry storage on S3`, { path: opts.output });
  const platform = opts.platform === undefined ? undefined : parsePlatform(opts.platform);
  const reader = await RegistryReader.open(opts.source);
  refuseHardLinkFrom(reader.driver, opts.link);
  const out = resolve(opts.output);
  await assertOutsideSource(opts.source, reader.v2, out, out);
  assertOutputDirectory(out);

  const problems = new Problems(opts.onProblem);
  let entries: Iterable<ListEntry>;
  let list: ImageList | undefined;
  if (opts.image !== undefined) {
    const at = { file: '--image', line: 0 };
    try {
      entries = [{ ref: parseImageRef(opts.image, { stripRegistry: opts.stripRegistry === true }), at }];
    } catch (err) {
      throw err instanceof RegfsError ? new RegfsError(err.code, `--image: ${err.message}`, { at }) : err;
    }
  } else {
    // The list is parsed as it is resolved: only the images that resolve are held.
    list = await openImageList(opts.list!, { stripRegistry: opts.stripRegistry === true, stdin: opts.stdin });
    entries = list.entries(problems);
  }
  const resolution = await resolveImages(reader, entries, { repair: opts.repair === true, problems, onProgress: opts.onProgress });
  let leftOut = (list?.badLines ?? 0) + resolution.leftOut;
  const planned: DirPlan[] = [];
  const summarize = createConfigSummarizer(reader);
  for (const img of resolution.images) {
    try {
      planned.push(await planImageDir(img, out, platform, opts, summarize));
    } catch (err) {
      if (!(err instanceof RegfsError)) throw err;
      problems.add(new RegfsError(err.code, `${where(img.entry)}: ${err.message}`, { at: img.entry.at, digest: err.digest }));
      leftOut++;
    }
  }
  if (opts.image !== undefined && planned.length > 1) {
    throw new RegfsError('USAGE', `--image ${opts.image} names ${planned.length} images (every tag of the repository); name one tag or digest`);
  }
  // An image whose directory holds what is not a dir: image is left out: never written into.
  const plans: DirPlan[] = [];
  for (const p of planned) {
    try {
      await checkImageDir(p.path);
      plans.push(p);
    } catch (err) {
      if (!(err instanceof RegfsError)) throw err;
      problems.add(err);
      leftOut++;
    }
  }
  if (problems.count > 0 && opts.keepGoing !== true) throw incomplete(problems);
  const images = plans.map((p) => p.image);
  let referrers: ReferrersResult | undefined;
  const referrerRepairs: RepairedLink[] = [];
  if (opts.withReferrers === true) {
    // Referrers after the images, of each image as exported (its platform alone with --platform).
    const exported = plans.map((p) => ({ ...p.source, digest: p.top.digest, manifest: p.top, manifests: [p.top, ...p.instances] }));
    const closure = await findReferrers(reader, exported, { repair: opts.repair === true, problems });
    closure.byImage.forEach((found, i) => (images[i]!.referrers = found));
    for (const r of closure.images) {
      const p = await planImageDir(r, out, undefined, opts, summarize);
      try {
        await checkImageDir(p.path);
        plans.push(p);
        referrerRepairs.push(...r.repaired);
      } catch (err) {
        if (!(err instanceof RegfsError)) throw err;
        problems.add(err);
      }
    }
    referrers = { images: closure.images.length, rewritten: closure.rewritten };
  }

  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    opts.onWarning?.(m);
  };
  for (const img of resolution.images) {
    for (const d of img.absentForeign) warn(`${where(img.entry)}: foreign layer ${d.digest} is not in the source; the image directory will lack it`);
  }
  // The stale image directories: only in a tree export, and only when every image resolved.
  const findStale = async (record: Map<string, string>): Promise<string[]> =>
    opts.image === undefined && problems.count === 0 ? findStaleImageDirs(out, new Set(plans.map((p) => p.path)), record) : [];
  const staleImages = await findStale(readRecord(out));
  // A manifest served through its _layers link needs no mending in a dir: export.
  const repaired = uniqueRepairs([...resolution.images, { repaired: referrerRepairs }].flatMap((img) => img.repaired.filter((r) => r.link === 'layers')));
  const result = { output: out, images, problems: problems.list, problemCount: problems.count, leftOut, warnings, repaired, staleImages: staleImages.map((s) => relative(out, s)), referrers };
  if (opts.dryRun === true) return { ...result, dryRun: true, stats: undefined, seconds: (performance.now() - started) / 1000 };

  const linker = createOutputLinker(out, opts, warn);
  // The lock of a one-image export sits beside its directory, not in it.
  const [lockRoot, lockName] = opts.image === undefined ? [out, undefined] : [dirname(out), basename(out)];
  const run = async (): Promise<ToDirStats> => {
    // Under the lock, from the record as it is now.
    const record = opts.image === undefined ? readRecord(out) : undefined;
    const stale = record === undefined ? [] : await findStale(record);
    const source = reader.driver.kind === 'filesystem' ? undefined : reader.driver;
    return writeExport(out, plans, stale, record, problems.count > 0, { linker, dirs: new OutputDirs(out), onProgress: opts.onProgress, source });
  };
  if (lockName !== undefined) mkdirpSync(lockRoot);
  const stats = lockName === undefined ? await withTreeLock(lockRoot, 'to-dir', run) : await withLock(join(lockRoot, `.${lockName}${LOCK_FILE}`), 'to-dir', run);
  return { ...result, dryRun: false, stats, seconds: (performance.now() - started) / 1000 };
}

/**
 * Write image directories: version files, blobs and instance manifests; then each
 * `manifest.json`; then stale files, stale image directories, and the digest file last.
 */
async function writeExport(
  out: string,
  plans: DirPlan[],
  staleImages: string[],
  record: Map<string, string> | undefined,
  partial: boolean,
  opts: { linker: Linker; dirs: OutputDirs; onProgress: OnProgress | undefined; source: StorageDriver | undefined },
): Promise<ToDirStats> {
  const { linker } = opts;
  const stats: ToDirStats = {
    blobsCloned: 0,
    blobsLinked: 0,
    blobsCopied: 0,
    blobsExisting: 0,
    manifestsWritten: 0,
    manifestsUnchanged: 0,
    staleFilesRemoved: 0,
    staleImagesRemoved: 0,
    bytes: 0,
    bytesCopied: 0,
  };
  const write = (what: string, path: string, data: string | Buffer): void => {
    try {
      writeFileAtomicSync(path, data, { parentExists: true });
    } catch (err) {
      throw ioError(`writing ${what}`, path, err);
    }
  };
  const putManifest = (path: string, raw: Buffer): void => {
    stats.bytes += raw.length;
    progress.add(1, raw.length);
    if (readIfThere(path, raw.length + 1)?.equals(raw) === true) {
      stats.manifestsUnchanged++;
      return;
    }
    write('manifest', path, raw);
    stats.manifestsWritten++;
  };

  // 1. Each image directory: its version file, its blobs, its instance manifests.
  await forEachChunked(plans, (p) => {
    // A real directory of the export, every directory between it and the output too: never a link out of the export.
    opts.dirs.ensure(p.path);
    if (readIfThere(versionPath(p.path), DIR_VERSION.length + 1)?.toString('utf8') !== DIR_VERSION) write('version file', versionPath(p.path), DIR_VERSION);
  });
  const blobWork = plans.flatMap((p) => [...p.blobs].map(([d, info]) => ({ p, d, info })));
  const instances = plans.flatMap((p) => p.instances.map((m) => ({ p, m })));
  // One `write` phase: every blob file and manifest file, and their bytes (the images' sizes).
  const progress = new PhaseProgress(
    opts.onProgress,
    'write',
    blobWork.length + instances.length + plans.length,
    plans.reduce((a, p) => a + p.image.bytes, 0),
  );
  const report = (): void => progress.report();
  const placed = (info: BlobInfo, outcome: PlaceOutcome): void => {
    stats.bytes += info.size;
    if (outcome === 'cloned') stats.blobsCloned++;
    else if (outcome === 'linked') stats.blobsLinked++;
    else if (outcome === 'copied') {
      stats.blobsCopied++;
      stats.bytesCopied += info.size;
    } else stats.blobsExisting++;
    progress.add(1, info.size);
    report();
  };
  if (opts.source === undefined) {
    // Reported blob by blob: a copy of a large one takes a while.
    await forEachChunked(blobWork, ({ p, d, info }) => placed(info, linker.place(info.path, blobPath(p.path, d), info.size)));
  } else {
    // From S3: each blob streams into a temp file beside its place (bounded memory), several at once.
    const disk = new FsStorage('/', { linker, dirs: opts.dirs });
    const remote = opts.source;
    await forEachChunkedAsync(blobWork, ({ p, d, info }) => disk.placeBlob(remote, info.path, blobPath(p.path, d), info.size), ({ info }, outcome) => placed(info, outcome));
  }
  await forEachChunked(instances, ({ p, m }) => putManifest(manifestPath(p.path, m.digest), m.raw), report);
  // 2. manifest.json, last in each directory: the image is complete when it changes.
  await forEachChunked(plans, (p) => putManifest(manifestPath(p.path), p.top.raw), report);
  // 3. Stale files inside image directories, then stale image directories.
  await forEachChunked(plans, (p) => {
    stats.staleFilesRemoved += removeStaleFiles(p);
  });
  for (const dir of staleImages) {
    rmSync(dir, { recursive: true, force: true });
    removeEmptyParents(dirname(dir), out);
    stats.staleImagesRemoved++;
  }
  // 4. The digest file, last: it lists only images that are complete. After a run with
  // problems it keeps the lines of earlier exports it did not replace (their directories stay).
  if (record !== undefined) {
    const lines = new Map(plans.map((p) => [p.image.ref, `${p.image.digest} ${p.image.ref}`]));
    if (partial) for (const [ref, line] of record) if (!lines.has(ref)) lines.set(ref, line);
    const sorted = [...lines].sort(([a], [b]) => a.localeCompare(b)).map(([, line]) => line);
    write('digest file', join(out, DIGEST_FILE), sorted.length === 0 ? '' : `${sorted.join('\n')}\n`);
  }
  // The record's temp files that a killed run left (the lock is this run's: none is another's).
  stats.staleFilesRemoved += removeMatching(out, (name) => name.startsWith(`.${DIGEST_FILE}.`) && name.endsWith(TEMP_SUFFIX));
  return stats;
}

/**
 * A file's first `maxBytes` bytes, or undefined if it cannot be read: absent, or not a
 * regular file (refused without being opened for a blocking read; it is then replaced).
 */
function readIfThere(path: string, maxBytes: number): Buffer | undefined {
  try {
    const r = readRegularFile(path, maxBytes, 'reading');
    return Buffer.isBuffer(r) ? r : undefined;
  } catch {
    return undefined;
  }
}

function where(entry: ListEntry): string {
  return entry.at.line > 0 ? `${entry.at.file}:${entry.at.line}` : entry.at.file;
}

async function planImageDir(img: ResolvedImage, out: string, platform: Platform | undefined, opts: ToDirOptions, summarize: ConfigSummarizer): Promise<DirPlan> {
  const { top, manifests } = selectPlatform(img, platform);
  const blobs = new Map<Digest, BlobInfo>();
  for (const m of manifests) {
    for (const d of referencedBlobs(m)) {
      const info = img.blobs.get(d.digest);
      if (info !== undefined) blobs.set(d.digest, info);
    }
  }
  const ref = img.tag !== undefined ? { tag: img.tag } : { digest: top.digest };
  const dir = opts.image !== undefined ? '.' : imageDirName(img.repo, ref, opts.portableNames === true);
  let bytes = 0;
  for (const m of manifests) bytes += m.raw.length;
  for (const b of blobs.values()) bytes += b.size;
  const artifactType = effectiveArtifactType(top);
  return {
    image: {
      ref: 'tag' in ref ? `${img.repo}:${ref.tag}` : `${img.repo}@${ref.digest}`,
      dir,
      digest: top.digest,
      kind: top.kind,
      platforms: await manifestPlatforms(manifests, summarize),
      ...(artifactType === undefined ? {} : { artifactType }),
      blobs: blobs.size,
      bytes,
    },
    path: join(out, dir),
    top,
    instances: manifests.filter((m) => m !== top),
    blobs,
    source: img,
  };
}

/** An existing, non-empty directory must carry the dir: version file; anything else is someone's data. */
async function checkImageDir(path: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new RegfsError('NOT_DIR_TRANSPORT', `"${path}" exists and is not a directory`, { path });
    throw ioError('reading', path, err);
  }
  // What a killed run of regfs left (its temp files) is not someone's data.
  if (names.every(isTempName)) return;
  const read = readRegularFile(versionPath(path), VERSION_MAX_BYTES, 'reading');
  const version = Buffer.isBuffer(read) ? read.toString('utf8') : read;
  if (version !== DIR_VERSION) {
    const why =
      version === undefined
        ? 'has no version file'
        : typeof version === 'string'
          ? `has version ${quote(version.trim())}, not 1.1`
          : `its version file is ${version.notRegular}, not a regular file`;
    throw new RegfsError('NOT_DIR_TRANSPORT', `"${path}" is not empty and ${why}: not a dir: image directory, so regfs will not overwrite it`, { path });
  }
}

/** Files in an image directory that the new export does not have (and leftover temp files). */
function removeStaleFiles(p: DirPlan): number {
  const keep = new Set([VERSION_FILE, MANIFEST_FILE, ...p.instances.map((m) => manifestFileName(m.digest)), ...[...p.blobs.keys()].map((d) => d.slice(d.indexOf(':') + 1))]);
  let removed = 0;
  for (const e of readdirSync(p.path, { withFileTypes: true })) {
    if (keep.has(e.name) || !e.isFile()) continue;
    rmSync(join(p.path, e.name), { force: true });
    removed++;
  }
  return removed;
}

/**
 * The export's record: `digests.txt`, reference to line. A line that is not `<digest> <ref>`
 * is ignored; no file, no record (then regfs removes no image directory).
 */
function readRecord(out: string): Map<string, string> {
  const record = new Map<string, string>();
  const path = join(out, DIGEST_FILE);
  let read;
  try {
    read = readRegularFile(path, RECORD_MAX_BYTES + 1, 'reading');
  } catch {
    return record;
  }
  // Its own record is a small regular file; anything else is not.
  if (!Buffer.isBuffer(read) || read.length > RECORD_MAX_BYTES) return record;
  for (const line of read.toString('utf8').split('\n')) {
    const m = /^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128}) (\S+)$/.exec(line);
    if (m !== null) record.set(m[2]!, line);
  }
  return record;
}

/** Far more than any version file; a longer one is not the dir: transport's. */
const VERSION_MAX_BYTES = 4096;

/** Far more than the record of any export (a line is under 400 bytes). */
const RECORD_MAX_BYTES = 256 << 20;

/** True if `dir/version` is a regular file holding exactly the dir: transport text. */
function hasOwnVersion(dir: string): boolean {
  return readIfThere(versionPath(dir), VERSION_MAX_BYTES)?.toString('utf8') === DIR_VERSION;
}

/**
 * Image directories under `out` (directories holding a `version` file) that are not in
 * `keep` and that regfs exported: the record lists the reference their path names (either
 * spelling) and their `version` is exactly the dir: text. Any other is someone else's and is
 * left alone. The walk does not descend into image directories, nor follow links.
 */
async function findStaleImageDirs(out: string, keep: Set<string>, record: Map<string, string>): Promise<string[]> {
  const stale: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return;
      throw ioError('reading', dir, err);
    }
    if (dir !== out && entries.some((e) => e.name === VERSION_FILE && e.isFile())) {
      if (!keep.has(dir) && record.has(decodePortable(relative(out, dir))) && hasOwnVersion(dir)) stale.push(dir);
      return;
    }
    for (const e of entries) if (e.isDirectory()) await walk(join(dir, e.name));
  };
  await walk(out);
  return stale.sort();
}

function removeEmptyParents(dir: string, stop: string): void {
  let d = dir;
  while (d !== stop && d.startsWith(stop + sep)) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
    d = dirname(d);
  }
}
