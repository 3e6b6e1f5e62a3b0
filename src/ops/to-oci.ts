/**
 * `to-oci`: one OCI image layout holding every listed image, read from registry storage.
 *
 * The list is resolved as for extract (the shared resolver: what the source repository
 * serves, all or nothing unless `keepGoing`); each image's manifests (an index with every
 * child, or one `platform`), configs and layers go to `blobs/<alg>/<hex>`, each once however
 * many images share it, placed by the shared linker (reflink, hard link or copy) and the
 * shared blob phase of the writer. Each listed reference becomes an `index.json` entry: a
 * tagged image is named by its full `repo:tag` in `org.opencontainers.image.ref.name` (see
 * src/oci/layout.ts), a digest-only image gets an entry without a name.
 *
 * Incremental and crash-safe: into an existing layout, an entry of the same name is replaced
 * in place, every other entry is kept as it is; blobs come first, then `oci-layout`, then the
 * new `index.json` by temp file and rename, so a run killed at any point leaves the old index
 * or the new one whole, each naming only blobs that are there, and a re-run completes it.
 *
 * The source may be on S3 (`s3://BUCKET/PREFIX`): its blobs then stream into the layout
 * (bounded memory), each into a temp file beside its place.
 */
import { isUtf8 } from 'node:buffer';
import { existsSync, lstatSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { forEachChunked } from '../bounded.js';
import { errnoCode, ioError, Problems, quote, RegfsError } from '../errors.js';
import type { Digest } from '../digest.js';
import { foldKey, parseJson, type JsonValue } from '../gojson.js';
import { assertOutputDirectory, isTempName, OutputDirs, readNames, removeMatching, TEMP_SUFFIX, writeFileAtomicSync } from '../fs/atomic.js';
import { LOCK_FILE } from '../fs/lock.js';
import { openImageList } from '../image-list.js';
import { MediaTypes, referencedBlobs, type Manifest } from '../manifest.js';
import { entryName, INDEX_FILE, OCI_LAYOUT_CONTENT, OCI_LAYOUT_FILE, ociBlobDir, ociBlobPath, REF_NAME, refName } from '../oci/layout.js';
import { readRegularFile } from '../registry/link-file.js';
import { RegistryReader } from '../registry/read.js';
import type { StorageDriver } from '../storage/driver.js';
import { isS3Root } from '../storage/open.js';
import { writeBlobs, type BlobSource, type BlobStats } from '../registry/write.js';
import { PhaseProgress, type OnProgress } from '../progress.js';
import type { Linker } from '../fs/link.js';
import { checkJobs, createOutputLinker, incomplete, summarizeImage, withTreeLock, type WriteCommandOptions, type WriteResultBase, refuseHardLinkFrom } from './common.js';
import type { ImageSummary, ReferrersResult } from './extract.js';
import { uniqueRepairs } from './extract.js';
import { assertOutsideSource } from './output-root.js';
import { createConfigSummarizer, effectiveArtifactType, manifestPlatforms } from './inspect.js';
import { parsePlatform, selectPlatform } from './platform.js';
import { resolveImages, type RepairedLink, type ResolvedImage } from './resolve.js';
import { findReferrers } from './referrers.js';

export interface ToOciOptions extends WriteCommandOptions {
  /** An image list: a file, `-` for standard input, or a directory of `*.list` files. */
  list: string;
  /** The source registry root (or its `docker/registry/v2`). */
  source: string;
  /** The layout directory; created if missing, merged into if it holds a layout. */
  output: string;
  /** `os/arch[/variant]`: export that image of each index, alone. */
  platform?: string;
  stripRegistry?: boolean;
  /** As for extract: take configs and layers the source repository does not link. */
  repair?: boolean;
  /** As for extract: take the referrers of every image too, each an entry of `index.json` (named if tagged). */
  withReferrers?: boolean;
  /** For tests: standard input. */
  stdin?: () => Promise<string>;
}

/** What a to-oci write did. */
export interface ToOciStats extends BlobStats {
  entriesAdded: number;
  entriesReplaced: number;
  entriesUnchanged: number;
  /** Temp files of a killed regfs run, removed. */
  tempFilesRemoved: number;
}

export interface ToOciResult extends WriteResultBase {
  /** Set with `withReferrers`. */
  referrers?: ReferrersResult;
  plan: { blobs: number; bytes: number; blobsAlreadyThere: number; entriesAdded: number; entriesReplaced: number; entriesUnchanged: number };
  /** What the write did; undefined for a dry run. */
  stats: ToOciStats | undefined;
}

/** The most `index.json` may hold: an entry is a few hundred bytes, so about 200,000 images. */
const INDEX_MAX_BYTES = 64 << 20;

/** An `index.json` descriptor, kept as read: unknown fields travel unchanged. */
export type IndexEntry = Record<string, unknown> & { mediaType?: unknown; digest?: unknown; size?: unknown; annotations?: unknown };

/** `index.json` as read, every field kept. */
type IndexDocument = Record<string, unknown> & { manifests: IndexEntry[] };

/** What resolving a list for an OCI layout gives, for to-oci's layout directory and bundle's tar alike. */
export interface OciExportPlan {
  /** Every blob of the export, each once: for each image in list order its manifests (top first), then its configs and layers; referrers last. */
  blobs: Map<Digest, BlobSource>;
  /** The `index.json` entries, in list order, referrers last. */
  entries: IndexEntry[];
  images: ImageSummary[];
  problems: Problems;
  leftOut: number;
  warnings: string[];
  repaired: RepairedLink[];
  referrers: ReferrersResult | undefined;
}

/** What to-oci and bundle take to resolve their list. */
export type OciExportOptions = Pick<ToOciOptions, 'list' | 'platform' | 'stripRegistry' | 'repair' | 'withReferrers' | 'stdin' | 'keepGoing' | 'onProgress' | 'onWarning' | 'onProblem'>;

/**
 * Resolve the list against `reader` as an OCI layout holds it: the shared resolver, each
 * image's manifests (or one platform's), configs and layers, its `index.json` entry named by
 * refName, and with `withReferrers` the referrers and their entries. Throws INCOMPLETE if an
 * image is left out without `keepGoing`.
 */
export async function planOciExport(reader: RegistryReader, opts: OciExportOptions): Promise<OciExportPlan> {
  const platform = opts.platform === undefined ? undefined : parsePlatform(opts.platform);
  const list = await openImageList(opts.list, { stripRegistry: opts.stripRegistry === true, stdin: opts.stdin });
  const problems = new Problems(opts.onProblem);
  const resolution = await resolveImages(reader, list.entries(problems), { repair: opts.repair === true, problems, onProgress: opts.onProgress });
  // Each image left out once; a list line that selects none counts as one.
  let leftOut = list.badLines + resolution.leftOut;

  const blobs = new Map<Digest, BlobSource>();
  const entries: IndexEntry[] = [];
  const images: ImageSummary[] = [];
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    opts.onWarning?.(m);
  };
  const summarize = createConfigSummarizer(reader);
  // Each image as exported (its platform's manifests alone with --platform), for the referrer search.
  const exported: ResolvedImage[] = [];
  for (const img of resolution.images) {
    const where = `${img.entry.at.file}:${img.entry.at.line}`;
    let top: Manifest;
    let manifests: Manifest[];
    try {
      ({ top, manifests } = selectPlatform(img, platform));
    } catch (err) {
      if (!(err instanceof RegfsError)) throw err;
      problems.add(new RegfsError(err.code, `${where}: ${err.message}`, { at: img.entry.at, digest: err.digest }));
      leftOut++;
      continue;
    }
    // The image's configs and layers (its summary counts them); its manifests go to blobs/ too.
    const own = new Map<Digest, BlobSource>();
    // The manifests' stored bytes, from the files their data paths lead to (a symbolic link is followed).
    const stored = await Promise.all(manifests.map((m) => reader.blobInfo(m.digest)));
    for (const [i, m] of manifests.entries()) {
      blobs.set(m.digest, { path: stored[i]!.path, size: m.raw.length });
      for (const d of referencedBlobs(m)) {
        const b = img.blobs.get(d.digest);
        if (b !== undefined) own.set(d.digest, { path: b.path, size: b.size });
      }
    }
    for (const d of img.absentForeign) warn(`${where}: ${img.repo}: foreign layer ${d.digest} is not in the source; the layout holds the manifest without it`);
    for (const [d, src] of own) blobs.set(d, src);
    const content = { repo: img.repo, tag: img.tag, digest: top.digest, manifests, blobs: own };
    images.push(summarizeImage(content, await manifestPlatforms(manifests, summarize), effectiveArtifactType(top)));
    exported.push({ ...img, digest: top.digest, manifest: top, manifests });
    entries.push({ mediaType: top.mediaType, digest: top.digest, size: top.raw.length, annotations: { [REF_NAME]: refName(img.repo, img.tag, top.digest) } });
  }
  if (problems.count > 0 && opts.keepGoing !== true) throw incomplete(problems);
  let referrers: ReferrersResult | undefined;
  const referrerRepairs: RepairedLink[] = [];
  if (opts.withReferrers === true) {
    // Referrers after the images: one that cannot be taken is reported, not a reason to write nothing.
    const closure = await findReferrers(reader, exported, { repair: opts.repair === true, problems });
    closure.byImage.forEach((found, i) => (images[i]!.referrers = found));
    for (const r of closure.images) {
      const stored = await Promise.all(r.manifests.map((m) => (closure.derived.has(m.digest) ? undefined : reader.blobInfo(m.digest))));
      for (const [i, m] of r.manifests.entries()) {
        blobs.set(m.digest, closure.derived.has(m.digest) ? { data: m.raw, size: m.raw.length } : { path: stored[i]!.path, size: m.raw.length });
      }
      for (const [d, b] of r.blobs) blobs.set(d, { path: b.path, size: b.size });
      entries.push({ mediaType: r.manifest.mediaType, digest: r.digest, size: r.manifest.raw.length, annotations: { [REF_NAME]: refName(r.repo, r.tag, r.digest) } });
      referrerRepairs.push(...r.repaired);
    }
    referrers = { images: closure.images.length, rewritten: closure.rewritten };
  }
  exported.length = 0;
  const repaired = uniqueRepairs([...resolution.images, { repaired: referrerRepairs }].flatMap((img) => img.repaired.filter((r) => r.link === 'layers')));
  resolution.images.length = 0;
  reader.dropCaches();
  return { blobs, entries, images, problems, leftOut, warnings, repaired, referrers };
}

/** Export the listed images from `source` into the OCI layout `output`. */
export async function toOci(opts: ToOciOptions): Promise<ToOciResult> {
  const started = performance.now();
  checkJobs(opts.jobs);
  if (isS3Root(opts.output)) throw new RegfsError('USAGE', `to-oci writes an OCI image layout into a local directory, not into S3 (${opts.output}); regfs extract writes registry storage on S3`, { path: opts.output });
  if (opts.platform !== undefined) parsePlatform(opts.platform);
  const reader = await RegistryReader.open(opts.source);
  refuseHardLinkFrom(reader.driver, opts.link);
  const layout = resolve(opts.output);
  await assertOutsideSource(opts.source, reader.v2, layout, layout);
  const existing = readLayout(layout);
  const { blobs, entries, images, problems, leftOut, warnings, repaired, referrers } = await planOciExport(reader, opts);
  const warn = (m: string): void => {
    warnings.push(m);
    opts.onWarning?.(m);
  };

  const merged = mergeIndex(existing.index, entries);
  let bytes = 0;
  for (const b of blobs.values()) bytes += b.size;
  const base = { output: layout, images, problems: problems.list, problemCount: problems.count, leftOut, warnings, repaired, referrers };
  if (opts.dryRun === true) {
    let there = 0;
    await forEachChunked([...blobs.keys()], (d) => {
      if (existsSync(ociBlobPath(layout, d))) there++;
    });
    return { ...base, dryRun: true, plan: { blobs: blobs.size, bytes, blobsAlreadyThere: there, ...merged.counts }, stats: undefined, seconds: (performance.now() - started) / 1000 };
  }

  const dirs = new OutputDirs(layout);
  const linker = createOutputLinker(layout, opts, warn);
  const source = reader.driver.kind === 'filesystem' ? undefined : reader.driver;
  const stats = await withTreeLock(layout, 'to-oci', () => writeLayout(layout, blobs, entries, { linker, dirs, onProgress: opts.onProgress, source }), dirs);
  // The entries as merged under the lock: another run may have written some meanwhile.
  const done = { entriesAdded: stats.entriesAdded, entriesReplaced: stats.entriesReplaced, entriesUnchanged: stats.entriesUnchanged };
  return { ...base, dryRun: false, plan: { blobs: blobs.size, bytes, blobsAlreadyThere: stats.blobsExisting, ...done }, stats, seconds: (performance.now() - started) / 1000 };
}

/**
 * Write into the layout, its lock held (to-oci, and apply into a layout): a killed run's temp
 * files removed, then every blob, then `oci-layout`, then `index.json` with `entries` merged
 * into it as it is now, last and whole.
 */
export async function writeLayout(
  layout: string,
  blobs: Map<Digest, BlobSource>,
  entries: IndexEntry[],
  opts: { linker: Linker; dirs: OutputDirs; onProgress: OnProgress | undefined; source?: StorageDriver | undefined },
): Promise<ToOciStats> {
  const now = mergeIndex(readLayout(layout).index, entries);
  const s: ToOciStats = { blobsCloned: 0, blobsLinked: 0, blobsCopied: 0, blobsExisting: 0, blobsWritten: 0, bytes: 0, bytesCopied: 0, ...now.counts, tempFilesRemoved: 0 };
  // What a killed run left: its temp files, which no other regfs run can be writing (the lock is ours).
  s.tempFilesRemoved = removeTempFiles(layout, existsSync(join(layout, 'blobs')) ? readNames(join(layout, 'blobs')).map((a) => join(layout, 'blobs', a)) : []);
  // 1. Every blob, manifests included; 2. the layout marker; 3. index.json, last and whole.
  if (blobs.size > 0) opts.dirs.ensure(ociBlobDir(layout, blobs.keys().next().value!));
  // One write phase: every blob, then index.json.
  let bytes = 0;
  for (const b of blobs.values()) bytes += b.size;
  const progress = new PhaseProgress(opts.onProgress, 'write', blobs.size + 1, bytes);
  await writeBlobs([...blobs], (d) => ociBlobPath(layout, d), { linker: opts.linker, dirs: opts.dirs, progress, source: opts.source }, s);
  const marker = join(layout, OCI_LAYOUT_FILE);
  if (readRegularFile(marker, 4096, 'reading')?.toString() !== OCI_LAYOUT_CONTENT) write(marker, OCI_LAYOUT_CONTENT);
  if (now.changed || !existsSync(join(layout, INDEX_FILE))) write(join(layout, INDEX_FILE), `${JSON.stringify(now.index)}\n`);
  progress.add(1);
  progress.report();
  return s;
}

function write(path: string, data: string): void {
  try {
    writeFileAtomicSync(path, data, { parentExists: true });
  } catch (err) {
    throw ioError('writing', path, err);
  }
}

/**
 * The layout at `dir` as it is: none yet (a missing or empty directory), or its `index.json`.
 * A directory that holds other things, or a layout whose `index.json` is not an image index,
 * is NOT_OCI_LAYOUT: regfs does not write into what it cannot read.
 */
export function readLayout(dir: string): { index: IndexDocument | undefined } {
  let st;
  try {
    // The layout's own path is the user's choice and may go through symbolic links (as an
    // extract's OUT may); below it, nothing is followed. A link to nothing is made no
    // directory through: the write refuses it (OUTPUT_UNWRITABLE).
    st = statSync(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { index: undefined };
    assertOutputDirectory(dir); // below a file, or through a loop: OUTPUT_UNWRITABLE
    throw ioError('reading', dir, err);
  }
  if (!st.isDirectory()) throw new RegfsError('NOT_OCI_LAYOUT', `"${dir}" exists and is not a directory`, { path: dir });
  // An oci-layout that is not a regular file (a FIFO, a directory) is someone's, never replaced.
  const marker = join(dir, OCI_LAYOUT_FILE);
  const layoutFile = readRegularFile(marker, 4096, 'reading');
  if (layoutFile !== undefined && !Buffer.isBuffer(layoutFile)) {
    throw new RegfsError('NOT_OCI_LAYOUT', `"${marker}" is ${layoutFile.notRegular}, not a regular file`, { path: marker });
  }
  const indexPath = join(dir, INDEX_FILE);
  const raw = readRegularFile(indexPath, INDEX_MAX_BYTES + 1, 'reading');
  if (raw === undefined) {
    // No index yet: a new directory, or what a first run killed before its index left.
    const names = readNames(dir);
    const others = names.filter((n) => n !== 'blobs' && n !== OCI_LAYOUT_FILE && n !== LOCK_FILE && !isTempName(n));
    if (others.length > 0) {
      const storage = existsSync(join(dir, 'docker', 'registry', 'v2')) ? ': it is registry storage, which regfs extract writes' : '';
      throw new RegfsError(
        'NOT_OCI_LAYOUT',
        `"${dir}" holds ${quote(others[0]!)} and is not an OCI image layout (no ${INDEX_FILE})${storage}; name a new or empty directory, or a layout`,
        { path: dir },
      );
    }
    return { index: undefined };
  }
  if (!Buffer.isBuffer(raw)) throw new RegfsError('NOT_OCI_LAYOUT', `"${indexPath}" is ${raw.notRegular}, not a regular file`, { path: indexPath });
  if (raw.length > INDEX_MAX_BYTES) throw new RegfsError('NOT_OCI_LAYOUT', `"${indexPath}" is larger than ${INDEX_MAX_BYTES >> 20} MiB`, { path: indexPath });
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new RegfsError('NOT_OCI_LAYOUT', `"${indexPath}" is not JSON: ${(err as Error).message}`, { path: indexPath });
  }
  // index.json is written back whole: what the rewrite would not keep as it is, refuses it.
  if (!isUtf8(raw)) throw new RegfsError('NOT_OCI_LAYOUT', `"${indexPath}" holds bytes that are not UTF-8, which regfs would not write back as they are (it rewrites index.json whole); nothing was written`, { path: indexPath });
  let parsed: JsonValue;
  try {
    parsed = parseJson(raw.toString('utf8'));
  } catch (err) {
    throw new RegfsError('NOT_OCI_LAYOUT', `"${indexPath}" is not JSON as Go reads it: ${(err as Error).message}`, { path: indexPath });
  }
  const lost = notKept(parsed, 'index.json') ?? fieldInAnotherCase(parsed, INDEX_FIELDS, 'index.json');
  if (lost !== undefined) throw new RegfsError('NOT_OCI_LAYOUT', `"${indexPath}" holds ${lost}, which regfs would not write back as it is (it rewrites index.json whole); nothing was written`, { path: indexPath });
  const manifests = (doc as { manifests?: unknown } | null)?.manifests;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || (doc as { schemaVersion?: unknown }).schemaVersion !== 2 || !(Array.isArray(manifests) || manifests === undefined || manifests === null)) {
    throw new RegfsError('NOT_OCI_LAYOUT', `"${indexPath}" is not an OCI image index (schemaVersion 2 and a manifests list)`, { path: indexPath });
  }
  // No manifests, or null: an index with no entries, as Go decodes it (and from-oci reads it).
  if (!Array.isArray(manifests)) (doc as { manifests: unknown[] }).manifests = [];
  for (const [i, e] of (doc as { manifests: unknown[] }).manifests.entries()) {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new RegfsError('NOT_OCI_LAYOUT', `"${indexPath}": manifests[${i}] is not a descriptor`, { path: indexPath });
  }
  return { index: doc as IndexDocument };
}

/**
 * The first value of a JSON document that parsing and writing it again would change, described
 * with where it is: an integer past 2^53 (rounded), a number past a double's range (null), a
 * key given twice in one object (once, with its last value). Undefined if there is none.
 * Iterative: a document may nest 10,000 deep.
 */
function notKept(doc: JsonValue, name: string): string | undefined {
  const todo: Array<[JsonValue, string]> = [[doc, name]];
  for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
    const [v, at] = next;
    if (v.t === 'number') {
      const n = Number(v.raw);
      if (!Number.isFinite(n)) return `the number ${v.raw} at ${at}, past a double's range`;
      if (decimalValue(v.raw) !== decimalValue(String(n))) return `the number ${v.raw} at ${at}, which a double holds only as ${String(n)}`;
    } else if (v.t === 'array') {
      v.items.forEach((item, i) => todo.push([item, `${at}[${i}]`]));
    } else if (v.t === 'object') {
      const keys = new Set<string>();
      for (const [k, item] of v.entries) {
        if (keys.has(k)) return `the key ${quote(k)} twice in ${at}`;
        keys.add(k);
        todo.push([item, `${at}.${k}`]);
      }
    }
  }
  return undefined;
}

/** The fields of index.json's structs as Go decodes them (image-spec's Index, Descriptor, Platform): name → nested struct, or null. */
type Fields = { readonly [name: string]: Fields | null };
const PLATFORM_FIELDS: Fields = { architecture: null, os: null, 'os.version': null, 'os.features': null, variant: null, features: null };
const DESCRIPTOR_FIELDS: Fields = { mediaType: null, digest: null, size: null, urls: null, annotations: null, data: null, platform: PLATFORM_FIELDS, artifactType: null };
const INDEX_FIELDS: Fields = { schemaVersion: null, mediaType: null, artifactType: null, manifests: DESCRIPTOR_FIELDS, subject: DESCRIPTOR_FIELDS, annotations: null };

/**
 * A key of index.json's structs spelled in another case than its field (`"Manifests"`), which
 * Go's encoding/json (skopeo, and regfs's own from-oci) reads as that field, where the
 * rewrite would keep it as a key of its own: described with where it is. Undefined if none.
 */
function fieldInAnotherCase(v: JsonValue, fields: Fields, at: string): string | undefined {
  if (v.t !== 'object') return undefined;
  for (const [k, item] of v.entries) {
    const nested = Object.hasOwn(fields, k) ? fields[k] : undefined;
    if (nested === undefined) {
      const field = Object.keys(fields).find((f) => foldKey(f) === foldKey(k));
      if (field !== undefined) return `the key ${quote(k)} in ${at} (Go's JSON decoder, skopeo's and from-oci's, reads it as ${quote(field)})`;
      continue;
    }
    if (nested === null) continue;
    // A struct, or a list of them (manifests): structs nest three deep at most, whatever the document does.
    const items = item.t === 'array' ? item.items.map((e, i) => [e, `${at}.${k}[${i}]`] as const) : [[item, `${at}.${k}`] as const];
    for (const [e, where] of items) {
      const found = fieldInAnotherCase(e, nested, where);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** A JSON number's exact decimal value, in one spelling: `1.50e2`, `150` and `1.5E+2` are all `15e1`. */
function decimalValue(raw: string): string {
  const m = /^(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/.exec(raw);
  if (m === null) return raw;
  const fraction = m[3] ?? '';
  let digits = `${m[2]}${fraction}`.replace(/^0+/, '');
  if (digits === '') return '0';
  let exponent = BigInt(m[4] ?? '0') - BigInt(fraction.length);
  const zeros = digits.length - digits.replace(/0+$/, '').length;
  digits = digits.slice(0, digits.length - zeros);
  exponent += BigInt(zeros);
  return `${m[1]}${digits}e${exponent}`;
}

/**
 * Remove regfs's own temp files (`.<name>.<pid>-<tag>-<hex>-<n>.regfs-tmp`) from the directories;
 * how many. Not the lock's (`.regfs.lock.<pid>-<tag>.<hex>.regfs-tmp`): another run, alive, writes one
 * before it finds the lock taken, and the lock removes those of runs that are gone.
 */
function removeTempFiles(layout: string, below: string[]): number {
  let n = 0;
  // The layout itself as named (through links, as the user chose it); below it, real directories only.
  for (const [dir, st] of [[layout, statSync(layout)], ...below.map((d) => [d, lstatSync(d)] as const)] as const) {
    if (st.isDirectory()) n += removeMatching(dir, (name) => name.startsWith('.') && name.endsWith(TEMP_SUFFIX) && !name.startsWith(`${LOCK_FILE}.`));
  }
  return n;
}

/** A new layout's `index.json` (as to-oci writes into an empty directory), its bytes. */
export function newIndexJson(entries: IndexEntry[]): string {
  return `${JSON.stringify(mergeIndex(undefined, entries).index)}\n`;
}

/**
 * `index.json` with the new entries: an entry that names the same image (by any naming
 * convention) is replaced where it stands, an unnamed entry of the same digest is kept, and
 * the rest are appended in list order; every other entry is left as it was.
 */
function mergeIndex(
  index: IndexDocument | undefined,
  entries: IndexEntry[],
): { index: IndexDocument; changed: boolean; counts: { entriesAdded: number; entriesReplaced: number; entriesUnchanged: number } } {
  const doc: IndexDocument = index === undefined ? { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] } : { ...index, manifests: [...index.manifests] };
  const counts = { entriesAdded: 0, entriesReplaced: 0, entriesUnchanged: 0 };
  const nameOf = (e: IndexEntry): string | undefined => {
    try {
      const n = entryName(e.annotations as Record<string, string> | undefined, undefined);
      return n === undefined ? undefined : refName(n.repo, n.tag, (n.digest ?? e.digest) as Digest);
    } catch {
      // A bare tag or a name regfs cannot read: never the full name regfs writes.
      return undefined;
    }
  };
  // Each existing entry's name once: a merge of n entries into m is n + m, not n * m.
  const byName = new Map<string, number>();
  doc.manifests.forEach((x, i) => {
    const n = nameOf(x);
    if (n !== undefined && !byName.has(n)) byName.set(n, i);
  });
  for (const e of entries) {
    const name = (e.annotations as Record<string, string>)[REF_NAME]!;
    const at = byName.get(name);
    if (at === undefined) {
      byName.set(name, doc.manifests.length);
      doc.manifests.push(e);
      counts.entriesAdded++;
    } else if (doc.manifests[at]!.digest === e.digest && doc.manifests[at]!.mediaType === e.mediaType) {
      counts.entriesUnchanged++;
    } else {
      doc.manifests[at] = e;
      counts.entriesReplaced++;
    }
  }
  return { index: doc, changed: counts.entriesAdded + counts.entriesReplaced > 0 || index === undefined, counts };
}
