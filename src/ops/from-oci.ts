/**
 * `from-oci`: seed registry storage from an OCI image layout, a directory (skopeo `oci:`,
 * crane, regctl, oras, to-oci) or a tar of one (skopeo `oci-archive:`, `docker save` 25+),
 * the tar read as a stream (src/oci/archive.ts).
 *
 * The input came from outside, so everything is verified before anything becomes visible:
 * `index.json` must be an image index; each entry's name must be usable (src/oci/layout.ts
 * `entryName`); every manifest and index, every child, config and layer is present (a layer
 * with `urls` may be absent: it is foreign), has its descriptor's size and (unless `noVerify`;
 * manifests always) hashes to its digest. Blobs the layout holds but no selected image
 * references are ignored. Then the shared writer (planWrites, writePlan) writes exactly what
 * pushes would have left, in the crash-safe order, under the output's lock: blob data first
 * (hard-linked from a directory by the `--link` modes; from a tar, the blobs staged in the
 * output's own blob tree are linked into place), then links, then tags.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, type Dirent } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import pLimit from 'p-limit';
import { errnoCode, ioError, Problems, quote, RegfsError } from '../errors.js';
import { goDecode, parseJson, sliceItems, type GoType } from '../gojson.js';
import { digestAlgorithm, digestOf, digestRegularFile, type Digest } from '../digest.js';
import { indexTooDeep, isIndexKind, MAX_INDEX_DEPTH, MediaTypes, parseManifest, parseManifestContent, referencedBlobs, type Descriptor, type Manifest } from '../manifest.js';
import { checkStorableName, parseImageRef, parseRepoName, type RepoName, type Tag } from '../reference.js';
import { assertInsideInput, inputRoot, statData } from '../registry/follow.js';
import { blobDataPath, blobsDir } from '../registry/layout.js';
import { findStorageRoot, MANIFEST_MAX_BYTES } from '../registry/read.js';
import { countPlanFiles, writePlan, type BlobSource, type WritePlan, type WriteStats } from '../registry/write.js';
import { tempPathFor, TEMP_SUFFIX, type OutputDirs } from '../fs/atomic.js';
import type { Linker } from '../fs/link.js';
import { leftByDeadProcess, MARK, processMark } from '../fs/owner.js';
import type { OnProgress } from '../progress.js';
import { MANIFEST_FILE, VERSION_FILE } from '../dir/layout.js';
import { entryName, INDEX_FILE, OCI_LAYOUT_FILE, ociBlobPath, type EntryName } from '../oci/layout.js';
import { readArchive, type ArchiveContent } from '../oci/archive.js';
import { checkJobs, createOutputLinker, incomplete, manifestLevels, planWrites, withTreeLock, type ImageContent, type WriteCommandOptions } from './common.js';
import { countExisting, countExistingOn, summarizeImages, type ExtractResult } from './extract.js';
import { assertOutsideSource, existingAncestor, outputStorageRoot, removeEmptyChain, s3OutputRoot } from './output-root.js';
import { FsStorage } from '../storage/fs.js';
import { isS3Root, openS3Root } from '../storage/open.js';
import type { S3Storage } from '../storage/s3.js';

export interface FromOciOptions extends WriteCommandOptions {
  /** An OCI layout directory, a tar of one, or `-` for a tar on standard input. */
  input: string;
  /** The registry root to write (or its `docker/registry/v2`), or `s3://BUCKET/PREFIX`; created if missing. */
  output: string;
  /** `repo:tag` (or `repo@digest`) for the one image of a layout whose index.json has one entry. */
  name?: string;
  /** The repository of entries named by a bare tag (docker save, regctl), and of unnamed entries (imported by digest). */
  repo?: string;
  /** Skip hashing configs and layers (sizes are still checked; manifests are always hashed). */
  noVerify?: boolean;
  /** Drop a leading registry host from names. */
  stripRegistry?: boolean;
  /** For `-`: the stream to read (standard input by default). */
  stdin?: Readable;
  /** Into S3, the local directory a tar's blobs are staged in before they are written (by default the system's temp directory). */
  staging?: string | undefined;
}

export interface FromOciResult extends ExtractResult {
  /** Bytes hashed to verify blobs (0 with noVerify). */
  bytesVerified: number;
  /** What the input was: a layout directory or a tar of one. */
  format: 'directory' | 'archive';
}

/** The largest index.json regfs reads (a layout of tens of thousands of images fits). */
export const INDEX_MAX_BYTES = 64 << 20;

/** A blob of the layout: its file (or its bytes), its size. */
export interface LayoutBlob {
  path: string | undefined;
  data: Buffer | undefined;
  size: number;
  /** What its bytes hash to, when they were hashed as they were read (a tar's). */
  hashed?: Digest | undefined;
  /** A dry run's JSON blob of a tar that was not kept in memory (src/oci/archive.ts, KEEP_UNNAMED_MAX_BYTES). */
  overBudget?: boolean;
}

/** Reading one layout, a directory or an archive already read. */
interface LayoutReader {
  /** The blob's path, for messages: `<layout>/blobs/<alg>/<hex>` (an archive: `<tar>:blobs/...`). */
  where(d: Digest): string;
  /** The blob, or undefined if the layout lacks it; BLOB_INVALID if it is no regular file. */
  find(d: Digest): LayoutBlob | undefined;
  /** A manifest's bytes. */
  bytes(b: LayoutBlob, d: Digest): Buffer;
  /** Check that a blob's bytes hash to `d` (DIGEST_MISMATCH otherwise). */
  check(d: Digest, b: LayoutBlob): Promise<void>;
}

/**
 * How `apply` (src/ops/apply.ts) reads a bundle through the archive path below: its own
 * input (volumes, a pipe) and progress, its command name on the lock and the staging
 * directory, the `regfs-bundle.json` entry, the blobs a delta bundle leaves out (found in
 * the output), and a check of what was read before any image is read or anything written.
 */
export interface ArchiveHooks {
  command: string;
  source: string | Readable;
  /** Bytes of the tar read, and blob entries begun (each new digest once). */
  onProgress: (consumed: number, blobEntries: number) => void;
  /** A blob entry begins (each new digest once): its digest, and the blob entries and bytes their headers declare so far; throws to refuse the tar. */
  onBlobEntry: (d: Digest, blobEntries: number, blobBytes: number) => void;
  onBundleFile: (raw: Buffer, blobsBefore: number) => void;
  /** A blob the archive does not hold: the output's, if the bundle assumed it there. */
  assumed: (d: Digest) => LayoutBlob | undefined;
  /** The archive as read; throws to refuse it. */
  checkRead: (content: ArchiveContent) => void;
  /** Once the archive is read and checked, before its images are: fetch what `assumed` gives as bytes (on S3: blobs that may be manifests). */
  loadAssumed: () => Promise<void>;
  /** Where the images go: registry storage (storageOutput) or an OCI layout; by default the storage `output` names. */
  into?: ArchiveOutput;
}

/** Where imported images are written: registry storage on disk (storageOutput) or on S3 (s3StorageOutput), or an OCI layout (apply). */
export interface ArchiveOutput {
  /** The output as the result names it. */
  output: string;
  /**
   * On disk: the tree locked while writing (created if missing), checked directory by
   * directory by `dirs`, and the blob tree a tar's staging directory goes in. Undefined on
   * S3: no lock, and a tar's blobs are staged in a local directory (`staging`).
   */
  disk: { root: string; dirs: OutputDirs; blobs: string } | undefined;
  /** Whether it existed: only then are blobs looked for in it. */
  exists: boolean;
  /** Where the output keeps a blob's data. */
  dataPath: (d: Digest) => string;
  /** The size of the output's data for a digest, if a regular file (or a link to one) is there; on S3 as `prepare`'s listing found it. */
  blobSize: (d: Digest) => number | undefined;
  /** Before a tar is read: on S3, the output's blobs listed once, so that blobSize answers without a request. */
  prepare: () => Promise<void>;
  /** How many of a plan's blobs the output holds already (a dry run's plan). */
  countExisting: (plan: WritePlan) => Promise<number>;
  /** The files a plan writes: blobs, links (or index entries), bytes. */
  count: (plan: WritePlan, images: ImageContent[]) => { blobs: number; links: number; bytes: number };
  /** Write the images (the lock held). */
  write: (plan: WritePlan, images: ImageContent[], opts: { linker: Linker; fresh: boolean; onProgress: OnProgress | undefined }) => Promise<WriteStats>;
}

/** Registry storage as an output: the shared writer. */
export function storageOutput(out: { v2: string; exists: boolean; dirs: OutputDirs }): ArchiveOutput {
  const dataPath = (d: Digest): string => blobDataPath(out.v2, d);
  return {
    output: out.v2,
    disk: { root: out.v2, dirs: out.dirs, blobs: blobsDir(out.v2) },
    exists: out.exists,
    dataPath,
    blobSize: (d) => regularSize(dataPath(d)),
    prepare: async () => undefined,
    countExisting: (plan) => countExisting(plan, dataPath),
    count: (plan) => countPlanFiles(plan),
    write: (plan, _images, o) => writePlan(out.v2, plan, { ...o, dirs: out.dirs }),
  };
}

/**
 * Registry storage on S3 as an output: the shared writer through the driver. A plan's blob
 * paths are local files (a layout's blobs, a tar's staged ones) or, for blobs the output
 * holds already (skipped in a tar, assumed by a delta bundle), the output's own data keys.
 */
export function s3StorageOutput(s3: S3Storage, exists: boolean): ArchiveOutput {
  const dataPath = (d: Digest): string => blobDataPath(s3.v2, d);
  const source = new LocalOrOutput(s3);
  return {
    output: s3.urlOf(s3.v2),
    disk: undefined,
    exists,
    dataPath,
    blobSize(d) {
      const size = s3.listedSize(dataPath(d));
      return typeof size === 'number' ? size : undefined;
    },
    prepare: async () => {
      if (exists) await s3.prefetch(blobsDir(s3.v2));
    },
    countExisting: (plan) => countExistingOn(s3, plan),
    count: (plan) => countPlanFiles(plan),
    write: (plan, _images, o) => writePlan(s3, plan, { ...o, source }),
  };
}

/**
 * Where an import into S3 reads blob data: a local file (an absolute path), or a key of the
 * output itself (a blob it holds already, which the writer finds there and keeps; should it
 * be gone meanwhile, the read finds nothing and the write stops with BLOB_UNKNOWN).
 */
class LocalOrOutput extends FsStorage {
  constructor(private readonly output: S3Storage) {
    super('/');
  }

  override async reader(path: string): Promise<Readable | undefined> {
    return isAbsolute(path) ? super.reader(path) : this.output.reader(path);
  }
}

/** The size of a regular file (or of the file a symbolic link leads to); undefined if there is none, or something else. */
function regularSize(path: string): number | undefined {
  const st = statData(path);
  return st === undefined || st.notRegular !== undefined ? undefined : st.size;
}

/** Import the images of an OCI layout into registry storage. */
export async function fromOci(opts: FromOciOptions): Promise<FromOciResult> {
  const out = await registryOutput(opts.output);
  // Into a directory that holds no storage yet, a refused run removes the directories it made
  // (a tar's blobs are staged in the output's blob tree), below the nearest that was there.
  const existed = out.disk !== undefined && !out.exists && opts.dryRun !== true ? await existingAncestor(out.disk.root) : undefined;
  try {
    return await importOci(opts, undefined, out);
  } catch (err) {
    if (existed !== undefined && !(err instanceof RegfsError && err.code === 'LOCKED')) removeEmptyChain(out.disk!.root, existed);
    throw err;
  }
}

/** fromOci (into `into`), or with `hooks` a bundle read by apply (src/ops/apply.ts). */
export async function importOci(opts: FromOciOptions, hooks: ArchiveHooks | undefined, into?: ArchiveOutput): Promise<FromOciResult> {
  const started = performance.now();
  const jobs = checkJobs(opts.jobs);
  const out = into ?? hooks?.into ?? (await registryOutput(opts.output));
  if (opts.staging !== undefined && out.disk !== undefined) {
    throw new RegfsError('USAGE', `--staging is for an s3:// output; into "${opts.output}" a tar's blobs are staged in the output's own blob tree`, { path: opts.staging });
  }
  const repo = opts.repo === undefined ? undefined : parseRepoName(opts.repo);
  const rename = opts.name === undefined ? undefined : parseRename(opts.name, opts.stripRegistry === true);
  const format = hooks !== undefined ? 'archive' : await inputFormat(opts.input);
  const problems = new Problems(opts.onProblem);
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    opts.onWarning?.(m);
  };
  const naming: Naming = { repo, rename, stripRegistry: opts.stripRegistry === true };
  const result = async (images: ImageContent[], plan: WritePlan, bytesVerified: number, leftOut: number) => ({
    output: out.output,
    images: await summarizeImages(images, plan, opts.platforms),
    problems: problems.list,
    problemCount: problems.count,
    leftOut,
    warnings,
    repaired: [],
    bytesVerified,
    format,
  });
  const dryResult = async (images: ImageContent[], plan: WritePlan, bytesVerified: number, leftOut: number): Promise<FromOciResult> => ({
    ...(await result(images, plan, bytesVerified, leftOut)),
    dryRun: true,
    plan: { ...out.count(plan, images), blobsAlreadyThere: out.exists ? await out.countExisting(plan) : 0 },
    stats: undefined,
    seconds: (performance.now() - started) / 1000,
  });

  if (format === 'directory') {
    const input = resolve(opts.input);
    if (out.disk !== undefined) await assertOutsideSource(input, input, opts.output, out.disk.root);
    const index = readLayoutFiles(input);
    // Not hashed, a blob must lie inside the layout (its real path).
    const unhashedRoot = opts.noVerify === true ? inputRoot(input) : undefined;
    const limit = pLimit(jobs);
    const hashed = new Map<string, Promise<Digest>>();
    let bytesVerified = 0;
    const reader: LayoutReader = {
      where: (d) => ociBlobPath(input, d),
      find(d) {
        const path = ociBlobPath(input, d);
        const st = statData(path);
        if (st === undefined) return undefined;
        if (st.notRegular !== undefined) {
          throw new RegfsError('BLOB_INVALID', `blob "${path}" is ${st.notRegular}; a blob must be a regular file (or a symbolic link to one)`, { path, digest: d });
        }
        if (unhashedRoot !== undefined) assertInsideInput(path, unhashedRoot, d);
        return { path: st.path, data: undefined, size: st.size };
      },
      bytes: (b) => readBytes(b.path!),
      async check(d, b) {
        const path = b.path!;
        let key: string;
        try {
          const st = statSync(path);
          key = `${st.dev}:${st.ino}`;
        } catch (err) {
          throw ioError('reading blob', path, err);
        }
        let p = hashed.get(key);
        if (p === undefined) {
          // Hashed on this thread from one reused buffer, one file at a time (jobs bounds the files open while a large one yields).
          p = limit(() => digestRegularFile(path, digestAlgorithm(d)));
          bytesVerified += b.size;
          hashed.set(key, p);
        }
        const actual = await p.catch((err: unknown) => {
          throw err instanceof RegfsError ? err : ioError('reading blob', path, err);
        });
        if (actual !== d) throw mismatch(ociBlobPath(input, d), d, actual);
      },
    };
    const { images, leftOut } = await readImages(index, reader, naming, opts, problems, warn);
    const plan = planWrites(images, (m) => ({ data: m.raw, size: m.raw.length }));
    if (opts.dryRun === true) return dryResult(images, plan, bytesVerified, leftOut);
    const linker = createOutputLinker(out.output, opts, warn);
    // On S3 the blob files stream up from the layout (multipart above the part size), without a lock.
    const write = (): Promise<WriteStats> => out.write(plan, images, { linker, fresh: !out.exists, onProgress: opts.onProgress });
    const stats = out.disk === undefined ? await write() : await withTreeLock(out.disk.root, 'from-oci', write, out.disk.dirs);
    return { ...(await result(images, plan, bytesVerified, leftOut)), dryRun: false, plan: { ...out.count(plan, images), blobsAlreadyThere: stats.blobsExisting }, stats, seconds: (performance.now() - started) / 1000 };
  }

  // An archive: read as a stream, once; its blobs staged inside the output's blob tree (on S3
  // in a local directory; a dry run stages nothing: it keeps what may be a manifest in memory
  // and hashes the rest).
  const label = opts.input;
  // Standard input, or a named pipe opened here: its open waits for a writer, which must not
  // happen with the output's lock held (no other writer could run meanwhile).
  const inputStream = hooks !== undefined ? undefined : opts.input === '-' ? (opts.stdin ?? process.stdin) : await openIfPipe(opts.input);
  const totalBytes = hooks !== undefined || inputStream !== undefined ? undefined : (await stat(opts.input)).size;
  // The reader asks for each new blob entry whether the output holds it: so blob entries are counted, for apply's progress.
  let blobEntries = 0;
  let blobBytes = 0;
  const readOpts = (stageDir: string | undefined) => ({
    label,
    stageDir,
    hash: opts.noVerify !== true,
    existing: (d: Digest, size: number) => {
      blobEntries++;
      blobBytes += size;
      hooks?.onBlobEntry(d, blobEntries, blobBytes);
      if (!out.exists) return undefined;
      // On S3 a blob that may be a manifest is staged all the same: its bytes are read here, not
      // fetched from the output (the writer keeps the output's copy, of its size, and uploads nothing).
      if (out.disk === undefined && size <= MANIFEST_MAX_BYTES) return undefined;
      const there = out.blobSize(d);
      return there === undefined ? undefined : { path: out.dataPath(d), size: there };
    },
    keepBytes: MANIFEST_MAX_BYTES,
    indexMaxBytes: INDEX_MAX_BYTES,
    totalBytes,
    // Blob entries met (their number is known only at the end), bytes against the input's size when known.
    onProgress: (consumed: number, total: number | undefined) =>
      hooks !== undefined
        ? hooks.onProgress(consumed, blobEntries)
        : opts.onProgress?.({ phase: 'hash', done: blobEntries, total: blobEntries, ...(total === undefined ? {} : { bytes: Math.min(consumed, total), totalBytes: total }) }),
    onBundleFile: hooks?.onBundleFile,
  });
  const importArchive = async (content: ArchiveContent): Promise<{ images: ImageContent[]; plan: WritePlan; bytesVerified: number; leftOut: number }> => {
    hooks?.checkRead(content);
    await hooks?.loadAssumed();
    const index = archiveLayoutFiles(content, label);
    // A blob of the tar by its entry; one a delta left out by the output's file it is read from.
    const where = (d: Digest): string => (content.blobs.has(d) ? undefined : hooks?.assumed(d)?.path) ?? `${label}:${ociBlobPath('', d).replace(/^\//, '')}`;
    const reader: LayoutReader = {
      where,
      find: (d) => content.blobs.get(d) ?? hooks?.assumed(d),
      bytes(b, d) {
        if (b.data !== undefined) return b.data;
        // A dry run keeps only blobs that may be manifests (JSON); this one cannot be, or came too late.
        if (b.path === undefined && b.overBudget === true) {
          throw new RegfsError(
            'ARCHIVE_INVALID',
            `manifest "${where(d)}" (${d}) comes in the tar before any entry that names it, after more JSON blobs than a dry run keeps in memory; the run without --dry-run reads it`,
            { path: where(d), digest: d },
          );
        }
        if (b.path === undefined) throw new RegfsError('MANIFEST_INVALID', `manifest "${where(d)}" (${d}) is not JSON`, { path: where(d), digest: d });
        return readBytes(b.path);
      },
      async check(d, b) {
        if (b.hashed !== undefined && b.hashed !== d) throw mismatch(where(d), d, b.hashed);
      },
    };
    const { images, leftOut } = await readImages(index, reader, naming, opts, problems, warn);
    // A manifest staged from the archive (its bytes are those parsed and hashed) is linked into
    // place as the other blobs are, not written a second time; a dry run's is in memory.
    const plan = planWrites(images, (m) => {
      const b = content.blobs.get(m.digest);
      return b?.path !== undefined && !b.existing ? { path: b.path, size: b.size } : { data: m.raw, size: m.raw.length };
    });
    let bytesVerified = 0;
    if (opts.noVerify !== true) for (const b of content.blobs.values()) if (!b.existing) bytesVerified += b.size;
    return { images, plan, bytesVerified, leftOut };
  };
  const source = (): string | Readable => hooks?.source ?? inputStream ?? opts.input;
  const command = hooks?.command ?? 'from-oci';

  // On S3: the output's blobs listed once, before the tar is read (each blob entry is looked up in that listing).
  await out.prepare();
  if (opts.dryRun === true) {
    const { images, plan, bytesVerified, leftOut } = await importArchive(await readArchive(source(), readOpts(undefined)));
    return dryResult(images, plan, bytesVerified, leftOut);
  }
  // Read, check, then write from the staging directory; it is removed whatever happens.
  const importStaged = async (stage: string, linker: Linker): Promise<FromOciResult> => {
    try {
      const { images, plan, bytesVerified, leftOut } = await importArchive(await readArchive(source(), readOpts(stage)));
      // An output that did not exist holds no link to look for (only this run's staging directory).
      const stats = await out.write(plan, images, { linker, fresh: !out.exists, onProgress: opts.onProgress });
      return {
        ...(await result(images, plan, bytesVerified, leftOut)),
        dryRun: false,
        plan: { ...out.count(plan, images), blobsAlreadyThere: stats.blobsExisting },
        stats,
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
  };
  const disk = out.disk;
  if (disk === undefined) {
    // On S3 a directory of its own in a local one (--staging, else the system's temp directory),
    // then every staged blob streamed up; nothing is written to S3 before the tar checks out.
    return importStaged(localStage(opts.staging, command), createOutputLinker(out.output, opts, warn));
  }
  return withTreeLock(
    disk.root,
    command,
    async () => {
      // A directory of its own in the blob tree, named as regfs temp files are: the registry
      // reads only `data` files there, and verify and gc know it for a leftover if a run dies.
      disk.dirs.ensure(disk.blobs);
      removeDeadStages(disk.blobs);
      const stage = tempPathFor(join(disk.blobs, command));
      try {
        mkdirSync(stage);
      } catch (err) {
        throw ioError('creating', stage, err);
      }
      // Staged blobs are in the output's filesystem: linked into place whatever --link says.
      return importStaged(stage, createOutputLinker(disk.root, { ...opts, link: 'auto' }, warn));
    },
    disk.dirs,
  );
}

/**
 * A named pipe (a FIFO, `<(…)`) as a stream, opened now: the open waits until a writer opens
 * it, as `cat` waits. Undefined for anything else, which the archive reader opens itself.
 */
export async function openIfPipe(path: string): Promise<Readable | undefined> {
  try {
    if (!(await stat(path)).isFIFO()) return undefined;
    return (await open(path, 'r')).createReadStream();
  } catch (err) {
    // A path that is not there (or not readable) is the archive reader's to report.
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw ioError('opening', path, err);
  }
}

/** Registry storage to import into: a directory, or `s3://BUCKET/PREFIX`. */
async function registryOutput(output: string): Promise<ArchiveOutput> {
  if (!isS3Root(output)) return storageOutput(await outputStorageRoot(output));
  const s3 = await openS3Root(output);
  return s3StorageOutput(s3, (await s3OutputRoot(s3, undefined)).exists);
}

/**
 * A fresh staging directory for a tar's blobs on its way to S3, in `base` (which must exist), by
 * default the system's temp directory: `regfs-<command>-<pid>-<tag>-XXXXXX` (the run's mark,
 * owner.ts). The staging directories killed runs of this host and PID namespace left there go
 * first: they may hold a whole tar's blobs.
 */
function localStage(base: string | undefined, command: string): string {
  const dir = resolve(base ?? tmpdir());
  removeDeadLocalStages(dir);
  try {
    return mkdtempSync(join(dir, `regfs-${command}-${processMark()}-`));
  } catch (err) {
    if (base !== undefined && (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR')) {
      throw new RegfsError('USAGE', `--staging "${base}": no such directory`, { path: base });
    }
    throw ioError('creating a staging directory in', dir, err);
  }
}

/**
 * Remove the local staging directories in `dir` of from-oci and apply runs of this host and
 * PID namespace whose process is gone. A live one's (this process's too: a library may run
 * two imports at once), another host's or namespace's (a temp directory shared between
 * machines or containers), one that cannot be removed (another user's), and any entry that is
 * not a directory stay. No lock covers a local temp directory: the mark in the name is what
 * tells a killed run's directory from a live one's, as for a bundle's temp files.
 */
function removeDeadLocalStages(dir: string): void {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return; // A missing or unreadable directory: creating the stage there says what is wrong.
  }
  const stage = new RegExp(`^regfs-(?:from-oci|apply)-${MARK}-[A-Za-z0-9]{6}$`);
  for (const e of entries) {
    const m = stage.exec(e.name);
    if (m === null || !e.isDirectory() || !leftByDeadProcess(m[1]!, m[2]!)) continue;
    try {
      rmSync(join(dir, e.name), { recursive: true, force: true });
    } catch {
      // Not ours to remove (another user's, made 0700 by mkdtemp): left to its owner.
    }
  }
}

/** The staging directories of a tar's blobs: `<v2>/blobs/.<command>.<pid>-<tag>-<random>-<n>.regfs-tmp`, by from-oci and apply. */
const STAGE_NAMES = ['from-oci', 'apply'];

/**
 * Remove the staging directories killed runs left (with the lock held, no live run has one):
 * they may hold as many bytes as the archive, and a re-run would stage them all again.
 */
function removeDeadStages(blobs: string): void {
  try {
    for (const name of readdirSync(blobs)) {
      if (STAGE_NAMES.some((s) => name.startsWith(`.${s}.`)) && name.endsWith(TEMP_SUFFIX)) rmSync(join(blobs, name), { recursive: true, force: true });
    }
  } catch (err) {
    throw ioError('removing staging directories of killed runs in', blobs, err);
  }
}

/** How entries get their names. */
interface Naming {
  repo: RepoName | undefined;
  rename: EntryName & { digest: Digest | undefined } | undefined;
  stripRegistry: boolean;
}

/** `--name`: `repo:tag` or `repo@digest`. */
function parseRename(name: string, stripRegistry: boolean): EntryName & { digest: Digest | undefined } {
  const ref = parseImageRef(name, { stripRegistry });
  if (ref.tag === undefined && ref.digest === undefined) throw new RegfsError('USAGE', `--name ${quote(name)} names no tag or digest: want <repo>:<tag> or <repo>@sha256:<hex>`);
  return { repo: ref.repo, tag: ref.tag, digest: ref.digest };
}

/** Whether the input is a layout directory or an archive; NOT_OCI_LAYOUT, with the command to use, for what is neither. */
async function inputFormat(input: string): Promise<'directory' | 'archive'> {
  if (input === '-') return 'archive';
  let st;
  try {
    st = await stat(input);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') throw new RegfsError('NOT_OCI_LAYOUT', `"${input}": no such file or directory`, { path: input });
    throw ioError('reading', input, err);
  }
  if (!st.isDirectory()) return 'archive';
  const has = (name: string): boolean => statData(join(input, name)) !== undefined;
  if (has(OCI_LAYOUT_FILE) || has(INDEX_FILE)) return 'directory';
  if ((await findStorageRoot(input)) !== undefined) {
    throw new RegfsError(
      'NOT_OCI_LAYOUT',
      `"${input}" is registry storage, not an OCI image layout: to copy its images into other registry storage use "regfs extract LIST ${input} DEST"`,
      { path: input },
    );
  }
  if (has(MANIFEST_FILE) || has(VERSION_FILE)) {
    throw new RegfsError('NOT_OCI_LAYOUT', `"${input}" is a dir: image directory, not an OCI image layout: import it with "regfs from-dir ${input} DEST --name REPO:TAG"`, { path: input });
  }
  throw new RegfsError('NOT_OCI_LAYOUT', `"${input}" is not an OCI image layout: it holds no ${OCI_LAYOUT_FILE} and no ${INDEX_FILE}`, { path: input });
}

/** A layout directory's `oci-layout` (checked) and `index.json` (returned), without opening anything that is not a regular file. */
export function readLayoutFiles(layout: string): { raw: Buffer; where: string } {
  const read = (name: string, max: number): { raw: Buffer; where: string } | undefined => {
    const path = join(layout, name);
    const st = statData(path);
    if (st === undefined) return undefined;
    if (st.notRegular !== undefined) throw new RegfsError('NOT_OCI_LAYOUT', `"${path}" is ${st.notRegular}, not a regular file`, { path });
    if (st.size > max) throw new RegfsError('MANIFEST_INVALID', `"${path}" is ${st.size} bytes, more than regfs reads (${max})`, { path });
    return { raw: readBytes(st.path), where: path };
  };
  checkOciLayout(read(OCI_LAYOUT_FILE, 64 << 10), join(layout, OCI_LAYOUT_FILE));
  const index = read(INDEX_FILE, INDEX_MAX_BYTES);
  if (index === undefined) throw new RegfsError('NOT_OCI_LAYOUT', `OCI layout "${layout}" has no ${INDEX_FILE}`, { path: layout });
  return index;
}

function archiveLayoutFiles(content: ArchiveContent, label: string): { raw: Buffer; where: string } {
  checkOciLayout(content.ociLayout === undefined ? undefined : { raw: content.ociLayout, where: `${label}:${OCI_LAYOUT_FILE}` }, `${label}:${OCI_LAYOUT_FILE}`);
  if (content.index === undefined) {
    throw new RegfsError('NOT_OCI_LAYOUT', `archive "${label}" holds no ${INDEX_FILE}: it is no OCI layout (a docker save before Docker 25, or skopeo docker-archive:, is not one)`, { path: label });
  }
  return { raw: content.index, where: `${label}:${INDEX_FILE}` };
}

/** The `oci-layout` file must be there, and say a 1.x layout. */
function checkOciLayout(file: { raw: Buffer; where: string } | undefined, where: string): void {
  if (file === undefined) throw new RegfsError('NOT_OCI_LAYOUT', `"${where}" is missing: not an OCI image layout`, { path: where });
  let version: unknown;
  try {
    version = (JSON.parse(file.raw.toString('utf8')) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch {
    version = undefined;
  }
  if (typeof version !== 'string' || !/^1\.\d+\.\d+$/.test(version)) {
    throw new RegfsError('NOT_OCI_LAYOUT', `"${file.where}" does not give an imageLayoutVersion 1.x.y; regfs reads image layout version 1`, { path: file.where });
  }
}

function readBytes(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw ioError('reading', path, err);
  }
}

function mismatch(where: string, d: Digest, actual: Digest): RegfsError {
  return new RegfsError('DIGEST_MISMATCH', `blob "${where}" does not match its digest: its bytes hash to ${actual}`, { path: where, digest: d });
}

const MANIFEST_TYPES = new Set<string>([MediaTypes.dockerManifest, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.ociIndex, MediaTypes.schema1, MediaTypes.schema1Signed]);

/**
 * Every importable entry of index.json, read and verified; the problems of the others go to
 * `problems` (each prefixed with the entry it concerns), and INCOMPLETE is thrown if there
 * are any and `keepGoing` is off.
 */
async function readImages(
  index: { raw: Buffer; where: string },
  reader: LayoutReader,
  naming: Naming,
  opts: FromOciOptions,
  problems: Problems,
  warn: (m: string) => void,
): Promise<{ images: ImageContent[]; leftOut: number }> {
  const entries = parseIndex(index);
  let skipped = 0;
  if (naming.rename !== undefined && entries.length !== 1) {
    throw new RegfsError('USAGE', `--name is for a layout of one image, and "${index.where}" has ${entries.length} entries`, { path: index.where });
  }
  const found = await Promise.all(
    entries.map(async ({ desc, annotations }, i): Promise<{ label: string; img: ImageContent } | undefined> => {
      const label = `${index.where} entry ${i} (${desc.digest})`;
      const errs: RegfsError[] = [];
      const fail = (err: unknown): void => {
        if (!(err instanceof RegfsError)) throw err;
        errs.push(new RegfsError(err.code, `${label}: ${err.message}`, { path: err.path ?? index.where, digest: err.digest }));
      };
      try {
        if (desc.mediaType !== undefined && !MANIFEST_TYPES.has(desc.mediaType)) {
          warn(`${label} is ${quote(desc.mediaType)}, not an image manifest or index; skipped`);
          skipped++;
          return undefined;
        }
        const name = nameOf(desc, annotations, naming);
        const img = await readImage(reader, desc, name, opts, fail, warn);
        if (errs.length === 0) return { label, img };
      } catch (err) {
        fail(err);
      }
      for (const e of errs) problems.add(e);
      return undefined;
    }),
  );
  const images = withoutConflicts(found, problems, index.where);
  if (problems.count > 0 && opts.keepGoing !== true) throw incomplete(problems);
  // Each entry is one image: those read with problems, and both of a conflicting pair.
  return { images, leftOut: entries.length - skipped - images.length };
}

/** index.json's entries: each a descriptor and its annotations. MANIFEST_INVALID if it is not an image index. */
export function parseIndex(index: { raw: Buffer; where: string }): Array<{ desc: Descriptor; annotations: Record<string, string> | undefined }> {
  let m: Manifest;
  try {
    m = parseManifestContent(index.raw, digestOf(index.raw), index.where);
  } catch (err) {
    if (!(err instanceof RegfsError)) throw err;
    // Without manifests the registry's rules read it as an image manifest, which it is not.
    if (isEmptyIndex(index.raw)) return [];
    throw new RegfsError('MANIFEST_INVALID', `"${index.where}" is not an OCI image index: ${err.message.replace(/^manifest "[^"]*" \([^)]*\) /, '')}`, { path: index.where });
  }
  if (!isIndexKind(m.kind)) throw new RegfsError('MANIFEST_INVALID', `"${index.where}" is not an OCI image index: it reads as an image manifest (it has no manifests array)`, { path: index.where });
  // Annotations are not in the parsed descriptors: decoded here as Go decodes them, entry for
  // entry (`Manifests` is manifests; of `annotations` and `Annotations`, both fill one map, the
  // last value of a key wins), so that a name goes with the descriptor skopeo gives it to.
  const { value } = goDecode(parseJson(index.raw.toString('utf8')), INDEX_ANNOTATIONS);
  const entries = sliceItems((value as { manifests: unknown }).manifests) as Array<{ annotations: Map<string, string> | null } | undefined>;
  return m.manifests.map((desc, i) => {
    const a = entries[i]?.annotations;
    return { desc, annotations: a === null || a === undefined ? undefined : Object.fromEntries(a) };
  });
}

/**
 * index.json with no manifests (none, or null), nor an image manifest's config or layers:
 * Go decodes it into an image index with no entries, as skopeo reads it. (A manifest without
 * a media type reads as an image manifest when it has no manifests array; index.json is an
 * index by what it is.)
 */
function isEmptyIndex(raw: Buffer): boolean {
  let doc;
  try {
    doc = parseJson(raw.toString('utf8'));
  } catch {
    return false;
  }
  const { value, errors } = goDecode(doc, EMPTY_INDEX_CHECK);
  const v = value as { schemaVersion: bigint; mediaType: string; manifests: unknown; config: unknown; layers: unknown };
  return errors.length === 0 && v.schemaVersion === 2n && (v.mediaType === '' || v.mediaType === MediaTypes.ociIndex) && v.manifests === null && v.config === null && v.layers === null;
}

const ANY_STRUCT: GoType = { k: 'struct', fields: {} };
const EMPTY_INDEX_CHECK: GoType = {
  k: 'struct',
  fields: { schemaVersion: { k: 'int' }, mediaType: { k: 'string' }, manifests: { k: 'slice', elem: ANY_STRUCT }, config: { k: 'ptr', elem: ANY_STRUCT }, layers: { k: 'slice', elem: ANY_STRUCT } },
};

/** What of index.json parseIndex reads besides the descriptors: each entry's annotations. */
const INDEX_ANNOTATIONS: GoType = { k: 'struct', fields: { manifests: { k: 'slice', elem: { k: 'struct', fields: { annotations: { k: 'map', elem: { k: 'string' } } } } } } };

/** The name an entry is imported under: --name, else its annotations, else by digest into --repo. */
function nameOf(desc: Descriptor, annotations: Record<string, string> | undefined, naming: Naming): EntryName {
  let name: EntryName | undefined;
  if (naming.rename !== undefined) {
    if (naming.rename.digest !== undefined && naming.rename.digest !== desc.digest) {
      throw new RegfsError('DIGEST_MISMATCH', `--name names ${naming.rename.digest}, but the layout's image is ${desc.digest}`, { digest: naming.rename.digest });
    }
    name = { repo: naming.rename.repo, tag: naming.rename.tag };
  } else {
    name = entryName(annotations, naming.repo, { stripRegistry: naming.stripRegistry });
    if (name?.digest !== undefined && name.digest !== desc.digest) {
      throw new RegfsError('DIGEST_MISMATCH', `is named ${name.repo}${name.tag === undefined ? '' : `:${name.tag}`}@${name.digest}, but its manifest is ${desc.digest}`, { digest: desc.digest });
    }
    if (name === undefined) {
      if (naming.repo === undefined) {
        throw new RegfsError('NAME_INVALID', `has no name (no org.opencontainers.image.ref.name nor io.containerd.image.name): give --repo to import it by digest, or --name`, { digest: desc.digest });
      }
      name = { repo: naming.repo, tag: undefined };
    }
  }
  checkStorableName(name.repo);
  return name;
}

/** The images, less every pair of entries that name the same `repo:tag` with different manifests (a problem naming both); exact repeats once. */
function withoutConflicts(found: Array<{ label: string; img: ImageContent } | undefined>, problems: Problems, where: string): ImageContent[] {
  const byName = new Map<string, number>();
  const dropped = new Set<number>();
  found.forEach((f, i) => {
    if (f === undefined) return;
    const key = f.img.tag === undefined ? `${f.img.repo}@${f.img.digest}` : `${f.img.repo}:${f.img.tag}`;
    const first = byName.get(key);
    if (first === undefined) {
      byName.set(key, i);
      return;
    }
    const other = found[first]!;
    if (other.img.digest === f.img.digest) {
      dropped.add(i);
      return;
    }
    dropped.add(first).add(i);
    problems.add(new RegfsError('TAG_CONFLICT', `${other.label} and ${f.label} both name ${key}, with different manifests; rename one (--name, or fix index.json)`, { path: where }));
  });
  return found.flatMap((f, i) => (f === undefined || dropped.has(i) ? [] : [f.img]));
}

/** Read and verify one entry's image: every manifest, child, config and layer. */
async function readImage(reader: LayoutReader, top: Descriptor, name: EntryName, opts: FromOciOptions, fail: (err: unknown) => void, warn: (m: string) => void): Promise<ImageContent> {
  const topM = readLayoutManifest(reader, top);
  const manifests: Manifest[] = [];
  const blobs = new Map<Digest, BlobSource>();
  const checks: Array<Promise<void>> = [];
  // Breadth first, each manifest once (as from-dir walks): an index deeper than MAX_INDEX_DEPTH is refused.
  const visited = new Set<Digest>([topM.digest]);
  const work: Array<{ m: Manifest; depth: number }> = [{ m: topM, depth: 0 }];
  let tooDeep = false;
  for (let i = 0; i < work.length; i++) {
    const { m, depth } = work[i]!;
    manifests.push(m);
    if (!isIndexKind(m.kind)) {
      for (const d of referencedBlobs(m)) checks.push(checkBlob(reader, d, blobs, opts, warn).catch(fail));
      continue;
    }
    if (m.manifests.length > 0 && depth >= MAX_INDEX_DEPTH) {
      tooDeep = true;
      fail(indexTooDeep(m.digest, reader.where(m.digest)));
      continue;
    }
    for (const c of m.manifests) {
      if (visited.has(c.digest)) continue;
      visited.add(c.digest);
      try {
        work.push({ m: readLayoutManifest(reader, c), depth: depth + 1 });
      } catch (err) {
        fail(err);
      }
    }
  }
  if (!tooDeep && (manifestLevels(manifests).get(topM.digest) ?? 0) > MAX_INDEX_DEPTH) fail(indexTooDeep(topM.digest, reader.where(topM.digest)));
  await Promise.all(checks);
  return { repo: name.repo, tag: name.tag as Tag | undefined, digest: topM.digest, manifests, blobs };
}

/** A manifest or index the layout holds for a descriptor: present, of its size, hashing to its digest. */
function readLayoutManifest(reader: LayoutReader, d: Descriptor): Manifest {
  const where = reader.where(d.digest);
  const b = reader.find(d.digest);
  if (b === undefined) throw new RegfsError('BLOB_UNKNOWN', `manifest ${d.digest} is missing from the layout: no "${where}"`, { path: where, digest: d.digest });
  if (b.size !== d.size) throw new RegfsError('SIZE_INVALID', `manifest "${where}" has ${b.size} bytes, its descriptor says ${d.size}`, { path: where, digest: d.digest });
  if (b.size > MANIFEST_MAX_BYTES) {
    throw new RegfsError('MANIFEST_INVALID', `manifest "${where}" is ${b.size} bytes, larger than the registry's ${MANIFEST_MAX_BYTES}-byte limit for a manifest`, { path: where, digest: d.digest });
  }
  return parseManifest(reader.bytes(b, d.digest), d.digest, where);
}

async function checkBlob(reader: LayoutReader, d: Descriptor, blobs: Map<Digest, BlobSource>, opts: FromOciOptions, warn: (m: string) => void): Promise<void> {
  const where = reader.where(d.digest);
  const b = reader.find(d.digest);
  if (b === undefined) {
    if (d.urls !== undefined) {
      warn(`foreign layer ${d.digest} is not in the layout; the image is imported without it`);
      return;
    }
    throw new RegfsError('BLOB_UNKNOWN', `blob ${d.digest} is missing from the layout: no "${where}"`, { path: where, digest: d.digest });
  }
  // schema1 gives no sizes (-1): its blobs are checked by their digests alone.
  if (d.size >= 0 && b.size !== d.size) throw new RegfsError('SIZE_INVALID', `blob "${where}" has ${b.size} bytes, the manifest says ${d.size}`, { path: where, digest: d.digest });
  if (opts.noVerify !== true) await reader.check(d.digest, b);
  // A dry run of an archive keeps no large blob: the plan names where it is, nothing is written.
  blobs.set(d.digest, b.data !== undefined ? { data: b.data, size: b.size } : { path: b.path ?? where, size: b.size });
}
