/**
 * `from-dir`: seed registry storage from `dir:` image directories, such as `to-dir` or
 * `skopeo copy … dir:` / `skopeo sync --scoped --dest dir` wrote them, after carrying them
 * across an air gap.
 *
 * The input came from outside, so everything is verified before anything becomes visible:
 * each manifest's digest (equal to the name for `@digest` directories), each index instance,
 * each blob's presence and size, and (unless `noVerify`) each blob's sha256. Then the same
 * writer as `extract` writes exactly what a push would have left, blob files hard-linked
 * where the filesystem allows, manifests written as the registry stores them.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import pLimit from 'p-limit';
import { errnoCode, ioError, Problems, RegfsError } from '../errors.js';
import { digestAlgorithm, digestRegularFile, digestRegularFileSync, SMALL_FILE_BYTES, type Digest, type DigestAlgorithm } from '../digest.js';
import { indexTooDeep, isIndexKind, MAX_INDEX_DEPTH, referencedBlobs, type Descriptor, type Manifest } from '../manifest.js';
import { checkStorableName, looksLikeDomain, parseRepoName, type RepoName } from '../reference.js';
import { inputRoot } from '../registry/follow.js';
import { findStorageRoot, type BlobInfo } from '../registry/read.js';
import { countPlanFiles, writePlan } from '../registry/write.js';
import { MANIFEST_FILE, VERSION_FILE, manifestPath } from '../dir/layout.js';
import { parseImageDirName } from '../dir/names.js';
import { findDirBlob, readDirManifest } from '../dir/read.js';
import { checkJobs, incomplete, manifestLevels, planWrites, withTreeLock, type ImageContent, createOutputLinker, type WriteCommandOptions } from './common.js';
import { countExisting, countExistingOn, summarizeImages, type ExtractResult } from './extract.js';
import { blobDataPath } from '../registry/layout.js';
import { assertOutsideSource, outputStorageRoot, s3OutputRoot } from './output-root.js';
import { isS3Root, openS3Root } from '../storage/open.js';
import { PhaseProgress } from '../progress.js';
import { forEachChunked } from '../bounded.js';

export interface FromDirOptions extends WriteCommandOptions {
  /** A tree of image directories, or one image directory. */
  input: string;
  /** The registry root to write (or its `docker/registry/v2`), or `s3://BUCKET/PREFIX`; created if missing. */
  output: string;
  /** `repo:tag` (or `repo@digest`) for a single image directory; else its name is its path. */
  name?: string;
  /** Skip hashing blobs (presence and sizes are still checked). */
  noVerify?: boolean;
  /** Drop a leading registry host from directory names (`skopeo sync --scoped` keeps it). */
  stripRegistry?: boolean;
}

export interface FromDirResult extends ExtractResult {
  /** Bytes hashed to verify blobs (0 with noVerify). */
  bytesVerified: number;
}

/** One image directory found in the input. */
interface DirImage {
  path: string;
  /** Where the name came from, for messages: the directory, relative to the input. */
  label: string;
  name: string;
}

/** Import `dir:` image directories into registry storage. */
export async function fromDir(opts: FromDirOptions): Promise<FromDirResult> {
  const started = performance.now();
  const jobs = checkJobs(opts.jobs);
  const input = resolve(opts.input);
  // The output: a directory (locked while written), or a root on S3 (written through its driver, without a lock).
  const s3 = isS3Root(opts.output) ? await openS3Root(opts.output) : undefined;
  const disk = s3 === undefined ? await outputStorageRoot(opts.output) : undefined;
  const out = disk ?? (await s3OutputRoot(s3!, undefined));
  if (disk !== undefined) await assertOutsideSource(input, input, opts.output, disk.v2);
  const found = await findImageDirs(input, opts.name);

  const problems = new Problems(opts.onProblem);
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    opts.onWarning?.(m);
  };
  // First every directory's manifests, then (their number known) every blob they reference.
  const dirs = await Promise.all(
    found.map(async (dir) => {
      const errs: RegfsError[] = [];
      const ctx: ReadContext = {
        fail: (err: unknown): void => {
          if (!(err instanceof RegfsError)) throw err;
          errs.push(new RegfsError(err.code, `${dir.label}: ${err.message}`, { path: err.path ?? dir.path, digest: err.digest }));
        },
        warn,
      };
      try {
        return { dir, errs, ctx, read: await readImageDir(dir, opts, ctx) };
      } catch (err) {
        ctx.fail(err);
        return { dir, errs, ctx, read: undefined };
      }
    }),
  );
  // Every blob's presence and size; then each file (an inode: to-dir hard-links a blob shared
  // by images) hashed once, so the hash phase's totals are what is verified. Not hashed, a blob
  // must lie inside the input (its real path, `unhashedRoot`).
  let unhashedRoot: string | undefined;
  const located = (
    await Promise.all(
      dirs.flatMap((x) =>
        x.read === undefined
          ? []
          : x.read.refs.map(async (d) => {
              try {
                const found = await locateBlob(x.dir, d, x.ctx, opts.noVerify !== true ? undefined : (unhashedRoot ??= inputRoot(input)));
                return found === undefined ? [] : [{ x, blobs: x.read!.blobs, d, ...found }];
              } catch (err) {
                x.ctx.fail(err);
                return [];
              }
            }),
      ),
    )
  ).flat();
  const files = new Map<string, { path: string; size: number; algorithm: DigestAlgorithm; actual?: Digest; error?: unknown }>();
  for (const l of located) {
    if (l.key !== undefined && !files.has(l.key)) files.set(l.key, { path: l.blob.path, size: l.blob.size, algorithm: digestAlgorithm(l.d.digest) });
  }
  let bytesVerified = 0;
  for (const f of files.values()) bytesVerified += f.size;
  if (files.size > 0) await hashFiles([...files.values()], jobs, new PhaseProgress(opts.onProgress, 'hash', files.size, bytesVerified));
  for (const { x, blobs, d, blob, key } of located) {
    const f = key === undefined ? undefined : files.get(key);
    try {
      if (f?.error !== undefined) throw f.error instanceof RegfsError ? f.error : ioError('reading', blob.path, f.error);
      if (f !== undefined && f.actual !== d.digest) {
        throw new RegfsError('DIGEST_MISMATCH', `blob "${blob.path}" does not match its digest: its bytes hash to ${f.actual}`, { path: blob.path, digest: d.digest });
      }
      blobs.set(d.digest, blob);
    } catch (err) {
      x.ctx.fail(err);
    }
  }
  const read = dirs.map((x) => {
    if (x.read !== undefined && x.errs.length === 0) return x.read.content;
    for (const e of x.errs) problems.add(e);
    return undefined;
  });
  const images = withoutConflicts(found, read, problems);
  if (problems.count > 0 && opts.keepGoing !== true) throw incomplete(problems);

  const plan = planWrites(images, (m) => ({ data: m.raw, size: m.raw.length }));
  const counts = countPlanFiles(plan);
  const summaries = await summarizeImages(images, plan, opts.platforms);
  // Each image directory is one image: those read with problems, and both of a conflicting pair.
  const base = { output: s3 === undefined ? out.v2 : s3.urlOf(out.v2), images: summaries, problems: problems.list, problemCount: problems.count, leftOut: found.length - images.length, warnings, repaired: [], bytesVerified };
  if (opts.dryRun === true) {
    const blobsAlreadyThere = !out.exists ? 0 : s3 === undefined ? await countExisting(plan, (d) => blobDataPath(out.v2, d)) : await countExistingOn(s3, plan);
    return { ...base, dryRun: true, plan: { ...counts, blobsAlreadyThere }, stats: undefined, seconds: (performance.now() - started) / 1000 };
  }
  const linker = createOutputLinker(out.v2, opts, warn);
  // On S3 the blob files stream up from the directories (multipart above the part size).
  const write = { linker, fresh: !out.exists, onProgress: opts.onProgress };
  const stats = disk === undefined ? await writePlan(s3!, plan, write) : await withTreeLock(disk.v2, 'from-dir', () => writePlan(disk.v2, plan, { ...write, dirs: disk.dirs }), disk.dirs);
  return { ...base, dryRun: false, plan: { ...counts, blobsAlreadyThere: stats.blobsExisting }, stats, seconds: (performance.now() - started) / 1000 };
}

/**
 * The images read, less every pair of directories that name the same `repo:tag` with
 * different manifests (two portable spellings of one name, or a host `--strip-registry`
 * dropped): neither wins, each such pair is a problem naming both.
 */
function withoutConflicts(found: DirImage[], read: Array<ImageContent | undefined>, problems: Problems): ImageContent[] {
  const byTag = new Map<string, number>();
  const conflicting = new Set<number>();
  read.forEach((img, i) => {
    if (img?.tag === undefined) return;
    const key = `${img.repo}:${img.tag}`;
    const first = byTag.get(key);
    if (first === undefined) {
      byTag.set(key, i);
      return;
    }
    const other = read[first]!;
    if (other.digest === img.digest) return;
    conflicting.add(first).add(i);
    problems.add(
      new RegfsError(
        'TAG_CONFLICT',
        `${found[first]!.label} and ${found[i]!.label} both name ${key}, with different manifests (${other.digest} and ${img.digest}); remove or rename one`,
        { path: found[i]!.path },
      ),
    );
  });
  return read.filter((img, i): img is ImageContent => img !== undefined && !conflicting.has(i));
}

interface ReadContext {
  fail: (err: unknown) => void;
  warn: (m: string) => void;
}

/**
 * Read one image directory's manifests, and the configs and layers they reference (to be
 * checked with checkBlob, which fills `content.blobs`); problems go to `ctx.fail`.
 */
async function readImageDir(dir: DirImage, opts: FromDirOptions, ctx: ReadContext): Promise<{ content: ImageContent; blobs: Map<Digest, BlobInfo>; refs: Descriptor[] }> {
  const ref = parseImageDirName(dir.name);
  const repo = stripHost(ref.repo, opts.stripRegistry === true);
  checkStorableName(repo, dir.path);
  const top = await readDirManifest(dir.path);
  if (top === undefined) {
    throw new RegfsError('MANIFEST_UNKNOWN', `image directory "${dir.path}" holds no ${MANIFEST_FILE}: a copy cut short?`, { path: dir.path });
  }
  if (ref.digest !== undefined && ref.digest !== top.digest) {
    throw new RegfsError('DIGEST_MISMATCH', `the directory is named for ${ref.digest}, but its manifest's digest is ${top.digest}`, { digest: ref.digest });
  }
  const manifests: Manifest[] = [];
  const refs: Descriptor[] = [];

  // Breadth first, with a worklist (as the resolver walks storage): each manifest once, at
  // the depth it is first reached; an index deeper than MAX_INDEX_DEPTH is refused.
  const visited = new Set<Digest>([top.digest]);
  const work: Array<{ m: Manifest; depth: number }> = [{ m: top, depth: 0 }];
  let tooDeep = false;
  for (let i = 0; i < work.length; i++) {
    const { m, depth } = work[i]!;
    manifests.push(m);
    if (!isIndexKind(m.kind)) {
      for (const d of referencedBlobs(m)) refs.push(d);
      continue;
    }
    if (m.manifests.length > 0 && depth >= MAX_INDEX_DEPTH) {
      tooDeep = true;
      ctx.fail(indexTooDeep(m.digest, manifestPath(dir.path, m.digest === top.digest ? undefined : m.digest)));
      continue;
    }
    for (const c of m.manifests) {
      if (visited.has(c.digest)) continue;
      visited.add(c.digest);
      try {
        const child = await readDirManifest(dir.path, c.digest);
        if (child === undefined) throw new RegfsError('BLOB_UNKNOWN', `index ${m.digest} names instance ${c.digest}, which has no ${c.digest.slice(c.digest.indexOf(':') + 1)}.${MANIFEST_FILE}`, { digest: c.digest });
        if (child.raw.length !== c.size) throw new RegfsError('SIZE_INVALID', `instance ${c.digest} has ${child.raw.length} bytes, its index says ${c.size}`, { digest: c.digest });
        work.push({ m: child, depth: depth + 1 });
      } catch (err) {
        ctx.fail(err);
      }
    }
  }
  // The worklist bounds the depth it reached first; a longer path through shared children counts too.
  if (!tooDeep && (manifestLevels(manifests).get(top.digest) ?? 0) > MAX_INDEX_DEPTH) ctx.fail(indexTooDeep(top.digest, manifestPath(dir.path)));
  const blobs = new Map<Digest, BlobInfo>();
  return { content: { repo, tag: ref.tag, digest: top.digest, manifests, blobs }, blobs, refs };
}

/**
 * A blob of the directory, present with the size its descriptor gives, and (when it is to be
 * hashed) the file it is, as the key of its hash: device, inode and the digest's algorithm (one
 * hash serves every image directory that hard-links it). Not to be hashed (`unhashedRoot`: the
 * input's real path), it must lie inside the input. Undefined for an absent foreign layer (a
 * warning).
 */
async function locateBlob(dir: DirImage, d: Descriptor, ctx: ReadContext, unhashedRoot: string | undefined): Promise<{ blob: BlobInfo; key: string | undefined } | undefined> {
  const blob = await findDirBlob(dir.path, d.digest, unhashedRoot);
  if (blob === undefined) {
    if (d.urls !== undefined) {
      ctx.warn(`${dir.label}: foreign layer ${d.digest} is not in the directory; the image is imported without it`);
      return undefined;
    }
    throw new RegfsError('BLOB_UNKNOWN', `blob ${d.digest} is missing from the directory`, { digest: d.digest });
  }
  if (d.size >= 0 && blob.size !== d.size) {
    throw new RegfsError('SIZE_INVALID', `blob "${blob.path}" has ${blob.size} bytes, the manifest says ${d.size}`, { path: blob.path, digest: d.digest });
  }
  if (unhashedRoot !== undefined) return { blob, key: undefined };
  const st = await stat(blob.path);
  return { blob, key: `${st.dev}:${st.ino}:${digestAlgorithm(d.digest)}` };
}

/**
 * Hash files, recording each one's digest (or why it could not be read), each read into one
 * reused buffer (digestRegularFile): small ones in chunks; large ones `jobs` at once, each
 * letting the event loop run as it goes.
 */
async function hashFiles(files: Array<{ path: string; size: number; algorithm: DigestAlgorithm; actual?: Digest; error?: unknown }>, jobs: number, progress: PhaseProgress): Promise<void> {
  await forEachChunked(
    files.filter((f) => f.size <= SMALL_FILE_BYTES),
    (f) => {
      try {
        f.actual = digestRegularFileSync(f.path, f.algorithm);
      } catch (err) {
        f.error = err;
      }
      progress.add(1, f.size);
    },
    () => progress.report(),
  );
  const limit = pLimit(jobs);
  await Promise.all(
    files
      .filter((f) => f.size > SMALL_FILE_BYTES)
      .map((f) =>
        limit(async () => {
          try {
            f.actual = await digestRegularFile(f.path, f.algorithm);
          } catch (err) {
            f.error = err;
          }
          progress.add(1, f.size);
          progress.report();
        }),
      ),
  );
}

function stripHost(repo: RepoName, strip: boolean): RepoName {
  if (!strip) return repo;
  const slash = repo.indexOf('/');
  return slash > 0 && looksLikeDomain(repo.slice(0, slash)) ? parseRepoName(repo.slice(slash + 1)) : repo;
}

/**
 * The image directories of the input: the input itself if it holds `manifest.json` or a
 * `version` file (named by `name`, else by its own basename), otherwise every directory below
 * it that holds one (named by its path relative to the input; the walk does not descend into
 * image directories, as `skopeo sync --src dir` does not).
 */
async function findImageDirs(input: string, name: string | undefined): Promise<DirImage[]> {
  const entries = await readdir(input, { withFileTypes: true }).catch((err: unknown) => {
    const why = errnoCode(err) === 'ENOENT' ? 'no such directory' : errnoCode(err) === 'ENOTDIR' ? 'not a directory' : undefined;
    if (why !== undefined) throw new RegfsError('NOT_DIR_TRANSPORT', `input "${input}": ${why}`, { path: input });
    throw ioError('reading', input, err);
  });
  const isImage = (list: typeof entries): boolean => list.some((e) => e.name === MANIFEST_FILE || e.name === VERSION_FILE);
  if (isImage(entries)) return [{ path: input, label: input, name: name ?? basename(input) }];
  if (name !== undefined) throw new RegfsError('USAGE', `--name is for one image directory, and "${input}" is none (no ${MANIFEST_FILE}, no ${VERSION_FILE})`, { path: input });
  const out: DirImage[] = [];
  const walk = async (dir: string, list: typeof entries): Promise<void> => {
    for (const e of list) {
      if (!e.isDirectory()) continue;
      const path = join(dir, e.name);
      const sub = await readdir(path, { withFileTypes: true }).catch((err: unknown) => {
        throw ioError('reading', path, err);
      });
      // A directory with a version file but no manifest.json is an image directory whose copy
      // was cut short: it is reported, not skipped.
      if (isImage(sub)) out.push({ path, label: relative(input, path), name: relative(input, path) });
      else await walk(path, sub);
    }
  };
  await walk(input, entries);
  if (out.length === 0) {
    const storage = (await findStorageRoot(input)) !== undefined;
    const hint = storage ? ': it is registry storage; are the arguments in the wrong order? (regfs from-dir IN DEST; regfs to-dir exports registry storage as dir: images)' : '';
    throw new RegfsError('NOT_DIR_TRANSPORT', `input "${input}" holds no image directories (none has a ${MANIFEST_FILE})${hint}`, { path: input });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
