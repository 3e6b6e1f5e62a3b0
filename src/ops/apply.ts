/**
 * `apply`: write a bundle (docs/bundle.md: an OCI layout in a tar, with `regfs-bundle.json`)
 * into registry storage as pushes would have left it, read once as a stream through
 * from-oci's archive path (src/ops/from-oci.ts, src/oci/archive.ts): blobs are staged in the
 * output's own blob tree, hashed as they come, and nothing is linked into place before every
 * blob and manifest has been read and checked; then the shared writer, under the lock.
 *
 * What apply adds:
 *   - the input: a file, `-` (standard input), or `NAME.000`, the first of the volumes
 *     `bundle --split` writes (`NAME.001`, `NAME.002`, … are read after it until the next
 *     is missing: a missing middle volume reads as a truncated tar);
 *   - `regfs-bundle.json`, read when its entry ends, before any blob entry (else the bundle
 *     is ARCHIVE_INVALID). For a delta bundle every `assumed` blob must then be a blob of
 *     the output, of its size, before anything is staged (BUNDLE_BASE_MISSING otherwise,
 *     naming the blobs and the inventory); those blobs are read from the output (a manifest
 *     among them too) and linked into the repositories as any other;
 *   - once read, the tar must hold the blobs and bytes the entry says it carries (a tar cut
 *     at an entry's end reads as whole to the tar parser);
 *   - progress by blob entries and bytes, with `carried.bytes` as the total on a pipe;
 *   - an existing OCI image layout as the output, written as to-oci merges into one
 *     (writeLayout), the staging directory in its `blobs/`.
 *
 * A tar without `regfs-bundle.json` (skopeo `oci-archive:`, a tar of `to-oci`'s layout) is
 * applied as a complete bundle.
 */
import { createReadStream, existsSync, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { errnoCode, ioError, quote, RegfsError } from '../errors.js';
import type { Digest } from '../digest.js';
import { STORAGE_PREFIX } from '../registry/layout.js';
import { OutputDirs } from '../fs/atomic.js';
import { INDEX_FILE, OCI_LAYOUT_FILE, ociBlobPath, REF_NAME, refName } from '../oci/layout.js';
import { readLayout, writeLayout } from './to-oci.js';
import { statData } from '../registry/follow.js';
import { BUNDLE_FILE, parseBundleFile, type BundleFile } from '../oci/bundle-file.js';
import type { ArchiveContent } from '../oci/archive.js';
import { importOci, openIfPipe, s3StorageOutput, storageOutput, type ArchiveHooks, type ArchiveOutput, type FromOciResult } from './from-oci.js';
import { countExisting } from './extract.js';
import { existingAncestor, outputStorageRoot, removeEmptyChain, s3OutputRoot } from './output-root.js';
import { isS3Root, openS3Root } from '../storage/open.js';
import { forEachChunkedAsync } from '../bounded.js';
import { MANIFEST_MAX_BYTES } from '../registry/read.js';
import type { WriteCommandOptions } from './common.js';

export interface ApplyOptions extends Omit<WriteCommandOptions, 'link' | 'jobs'> {
  /** The bundle: a file, `NAME.000` of volumes, or `-` for standard input. */
  input: string;
  /** The registry root to write (or its `docker/registry/v2`), or `s3://BUCKET/PREFIX`; created if missing. */
  output: string;
  /** Into S3, the local directory the bundle's blobs are staged in before they are written (by default the system's temp directory). */
  staging?: string | undefined;
  /** For `-`: the stream to read (standard input by default). */
  stdin?: Readable;
}

/** What `regfs-bundle.json` said; null for a tar without it (applied as a complete bundle). */
export interface BundleSummary {
  inventory: Digest | null;
  carried: { blobs: number; bytes: number };
  /** Blobs the bundle left out, each found in the output. */
  assumed: number;
}

export interface ApplyResult extends Omit<FromOciResult, 'format'> {
  /** What was written: registry storage, or an existing OCI image layout (its index.json entries are the `links`). */
  into: 'storage' | 'layout';
  /** Files read: the volumes of `NAME.000`, else 1. */
  volumes: number;
  bundle: BundleSummary | null;
}

/** BUNDLE_BASE_MISSING names this many missing blobs, then counts the rest. */
const MISSING_SHOWN = 5;

/** Apply a bundle to registry storage, or to an existing OCI image layout. */
export async function apply(opts: ApplyOptions): Promise<ApplyResult> {
  const input = await openBundle(opts);
  const label = opts.input;
  // On S3: registry storage, written through its driver once the whole bundle checks out.
  const s3 = isS3Root(opts.output) ? await openS3Root(opts.output) : undefined;
  const dest = resolve(opts.output);
  // The nearest directory that exists before the run: a refused run removes what it made below it.
  const existed = s3 === undefined ? await existingAncestor(dest) : undefined;
  // An existing OCI image layout is written as to-oci merges into one; anything else is registry storage.
  const storage = s3 !== undefined || isLayout(dest) ? undefined : await outputStorageRoot(opts.output);
  const out = s3 !== undefined ? s3StorageOutput(s3, (await s3OutputRoot(s3, undefined)).exists) : storage === undefined ? layoutOutput(dest) : storageOutput(storage);
  let bundle: BundleFile | undefined;
  let assumed = new Map<Digest, number>();
  const assumedBytes = new Map<Digest, Buffer>();
  let total = input.totalBytes;

  const hooks: ArchiveHooks = {
    command: 'apply',
    source: input.source,
    onProgress(consumed, blobEntries) {
      // Blob entries against those the bundle says it carries; bytes against the input's size, or
      // on a pipe against the blob bytes it carries (the tar's headers make a little more).
      const blobs = Math.max(blobEntries, bundle?.carried.blobs ?? 0);
      const done = Math.min(blobEntries, blobs);
      if (total === undefined) opts.onProgress?.({ phase: 'hash', done, total: blobs });
      else opts.onProgress?.({ phase: 'hash', done, total: blobs, bytes: Math.min(consumed, total), totalBytes: total });
    },
    // A blob entry beyond what the bundle carries is refused at its header, before its bytes are staged.
    onBlobEntry(d, blobs, bytes) {
      if (bundle === undefined || (blobs <= bundle.carried.blobs && bytes <= bundle.carried.bytes)) return;
      throw new RegfsError(
        'ARCHIVE_INVALID',
        `archive "${label}": with the entry blobs/${d.replace(':', '/')} it holds ${blobs} blobs of ${bytes} bytes, more than its ${BUNDLE_FILE} says it carries (${bundle.carried.blobs} of ${bundle.carried.bytes} bytes): it is not the tar that entry was written for`,
        { path: label },
      );
    },
    onBundleFile(raw, blobsBefore) {
      const where = `${label}:${BUNDLE_FILE}`;
      if (bundle !== undefined) throw new RegfsError('ARCHIVE_INVALID', `archive "${label}" holds ${BUNDLE_FILE} twice`, { path: label });
      if (blobsBefore > 0) {
        throw new RegfsError('ARCHIVE_INVALID', `"${where}" comes after ${blobsBefore} blob entr${blobsBefore === 1 ? 'y' : 'ies'}; a bundle gives it before any blob, so that it is checked before anything is written`, {
          path: where,
        });
      }
      const b = parseBundleFile(raw, where);
      checkBase(b, out.exists ? out.blobSize : undefined, label, opts.output);
      bundle = b;
      assumed = new Map(b.assumed.map((a) => [a.digest, a.size]));
      if (total === undefined) total = b.carried.bytes;
    },
    assumed(d) {
      const size = assumed.get(d);
      return size === undefined ? undefined : { path: out.dataPath(d), data: assumedBytes.get(d), size, hashed: undefined };
    },
    checkRead: (content) => {
      if (bundle !== undefined) checkCarried(content, bundle, label);
    },
    // On S3 a manifest among the assumed blobs is read from the output: each blob small enough
    // to be one is fetched (the others, configs and layers, are only checked for presence and size).
    async loadAssumed() {
      if (s3 === undefined) return;
      await forEachChunkedAsync(
        [...assumed].filter(([, size]) => size <= MANIFEST_MAX_BYTES),
        async ([d, size]) => {
          const path = out.dataPath(d);
          const got = await s3.getContent(path, size + 1);
          if (got === undefined || !Buffer.isBuffer(got) || got.length !== size) {
            throw new RegfsError('BUNDLE_BASE_MISSING', `blob ${d} that bundle "${label}" assumes the output holds is no longer in ${s3.location} with its ${size} bytes ("${path}"); nothing was written`, { path, digest: d });
          }
          return got;
        },
        (item, got) => void assumedBytes.set(item[0], got),
      );
    },
    into: out,
  };

  try {
    const { format: _format, ...result } = await importOci({ ...opts, input: label, link: 'auto' }, hooks);
    const summary: BundleSummary | null = bundle === undefined ? null : { inventory: bundle.inventory, carried: bundle.carried, assumed: bundle.assumed.length };
    return { ...result, into: s3 === undefined && storage === undefined ? 'layout' : 'storage', volumes: input.volumes, bundle: summary };
  } catch (err) {
    if (storage !== undefined && existed !== undefined && !storage.exists && opts.dryRun !== true && !(err instanceof RegfsError && err.code === 'LOCKED')) removeEmptyChain(storage.v2, existed);
    throw err;
  } finally {
    // Volumes are not read on (standard input is drained by the reader, so that its writer is not cut off).
    if (opts.input !== '-' && input.source instanceof Readable) input.source.destroy();
  }
}

/** The bundle to read: its source, its size when known, the number of files. */
async function openBundle(opts: ApplyOptions): Promise<{ source: string | Readable; totalBytes: number | undefined; volumes: number }> {
  if (opts.input === '-') return { source: opts.stdin ?? process.stdin, totalBytes: undefined, volumes: 1 };
  const first = await statInput(opts.input);
  if (first.isDirectory()) {
    throw new RegfsError('ARCHIVE_INVALID', `"${opts.input}" is a directory; apply reads a bundle file (a tar): an OCI layout directory is imported with "regfs from-oci"`, { path: opts.input });
  }
  const m = /^(.*)\.(0{3,})$/.exec(opts.input);
  // A named pipe is opened here, before the output's lock is taken: its open waits for a writer.
  if (m === null) return { source: first.isFIFO() ? ((await openIfPipe(opts.input)) ?? opts.input) : opts.input, totalBytes: first.isFile() ? first.size : undefined, volumes: 1 };
  // Volumes: NAME.000, NAME.001, … as long as the next exists, each a regular file.
  const [, base, zeros] = m as unknown as [string, string, string];
  const paths: string[] = [];
  let bytes = 0;
  for (let n = 0; n < 10 ** zeros.length; n++) {
    const path = `${base}.${String(n).padStart(zeros.length, '0')}`;
    const st = n === 0 ? first : await statInput(path).catch((err: unknown) => (err instanceof RegfsError && err.code === 'ARCHIVE_INVALID' ? undefined : Promise.reject(err)));
    if (st === undefined) break;
    if (!st.isFile()) throw new RegfsError('ARCHIVE_INVALID', `volume "${path}" is not a regular file`, { path });
    paths.push(path);
    bytes += st.size;
  }
  return { source: volumeStream(paths), totalBytes: bytes, volumes: paths.length };
}

/** `stat` of a bundle file; ARCHIVE_INVALID if there is none. */
async function statInput(path: string): Promise<Stats> {
  try {
    return await stat(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') throw new RegfsError('ARCHIVE_INVALID', `bundle "${path}": no such file`, { path });
    throw ioError('reading', path, err);
  }
}

/** The volumes as one stream, read one after the other. */
function volumeStream(paths: string[]): Readable {
  return Readable.from(
    (async function* () {
      for (const p of paths) yield* createReadStream(p, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
    })(),
    { objectMode: false },
  );
}

/**
 * A delta bundle's base: every assumed blob must be a blob of the output (`blobSize`: the
 * size of its data, a regular file or a link to one; undefined if it holds nothing yet), of
 * its size.
 */
function checkBase(b: BundleFile, blobSize: ((d: Digest) => number | undefined) | undefined, label: string, output: string): void {
  if (b.assumed.length === 0) return;
  const missing: Array<{ digest: Digest; why: string }> = [];
  for (const a of b.assumed) {
    const size = blobSize?.(a.digest);
    if (size === undefined) missing.push({ digest: a.digest, why: '' });
    else if (size !== a.size) missing.push({ digest: a.digest, why: ` (${size} bytes, not ${a.size})` });
  }
  if (missing.length === 0) return;
  const shown = missing.slice(0, MISSING_SHOWN).map((m) => `${m.digest}${m.why}`).join(', ');
  const more = missing.length > MISSING_SHOWN ? ` and ${missing.length - MISSING_SHOWN} more` : '';
  throw new RegfsError(
    'BUNDLE_BASE_MISSING',
    `bundle "${label}" was made against inventory ${b.inventory} and leaves out ${b.assumed.length} blob${b.assumed.length === 1 ? '' : 's'} it assumes the output holds; ` +
      `${quote(output)} lacks ${missing.length} of them: ${shown}${more}. Nothing was written: apply it to the storage that inventory was taken of, or make the bundle against an inventory of this one`,
    { path: output, digest: missing[0]!.digest },
  );
}

/**
 * The tar holds the blobs and bytes `regfs-bundle.json` says it carries: a tar cut at the
 * end of an entry (or inside a header) reads as whole to the tar parser.
 */
function checkCarried(content: ArchiveContent, b: BundleFile, label: string): void {
  let bytes = 0;
  for (const blob of content.blobs.values()) bytes += blob.size;
  const blobs = content.blobs.size;
  if (blobs === b.carried.blobs && bytes === b.carried.bytes) return;
  const last = [...content.blobs.keys()].at(-1);
  const after = last === undefined ? 'before its first blob entry' : `after the entry blobs/${last.replace(':', '/')}`;
  throw new RegfsError(
    'ARCHIVE_INVALID',
    `archive "${label}" holds ${blobs} blobs of ${bytes} bytes, but its ${BUNDLE_FILE} says it carries ${b.carried.blobs} of ${b.carried.bytes} bytes: ` +
      (blobs < b.carried.blobs ? `it ends ${after} (truncated)` : 'it is not the tar that entry was written for'),
    { path: label },
  );
}


/** An existing OCI image layout (an `oci-layout` or `index.json`, and no registry storage in it). */
function isLayout(dir: string): boolean {
  return (existsSync(join(dir, OCI_LAYOUT_FILE)) || existsSync(join(dir, INDEX_FILE))) && !existsSync(join(dir, STORAGE_PREFIX));
}

/**
 * An OCI image layout as apply's output, written as to-oci merges into one (writeLayout):
 * blobs, then `oci-layout`, then `index.json`, an entry per image named `repo:tag` (or
 * `repo@sha256:…`), replacing an entry of the same name. The staging directory goes in its
 * `blobs/`. Its stats count index entries as links.
 */
function layoutOutput(layout: string): ArchiveOutput {
  // Refused before the bundle is read: a layout whose index.json regfs cannot read, or a file.
  readLayout(layout);
  const dirs = new OutputDirs(layout);
  const dataPath = (d: Digest): string => ociBlobPath(layout, d);
  return {
    output: layout,
    disk: { root: layout, dirs, blobs: join(layout, 'blobs') },
    exists: true,
    dataPath,
    blobSize(d) {
      const st = statData(dataPath(d));
      return st === undefined || st.notRegular !== undefined ? undefined : st.size;
    },
    prepare: async () => undefined,
    countExisting: (plan) => countExisting(plan, dataPath),
    count(plan, images) {
      let bytes = 0;
      for (const b of plan.blobs.values()) bytes += b.size;
      return { blobs: plan.blobs.size, links: images.length, bytes };
    },
    async write(plan, images, o) {
      const entries = images.map((img) => ({ mediaType: img.manifests[0]!.mediaType, digest: img.digest, size: img.manifests[0]!.raw.length, annotations: { [REF_NAME]: refName(img.repo, img.tag, img.digest) } }));
      const s = await writeLayout(layout, plan.blobs, entries, { linker: o.linker, dirs, onProgress: o.onProgress });
      return {
        blobsCloned: s.blobsCloned,
        blobsLinked: s.blobsLinked,
        blobsCopied: s.blobsCopied,
        blobsExisting: s.blobsExisting,
        blobsWritten: s.blobsWritten,
        bytes: s.bytes,
        bytesCopied: s.bytesCopied,
        linksWritten: s.entriesAdded + s.entriesReplaced,
        linksUnchanged: s.entriesUnchanged,
      };
    },
  };
}
