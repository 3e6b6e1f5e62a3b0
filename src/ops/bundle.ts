/**
 * `bundle`: the listed images as one tar, an OCI image layout that carries only what the far
 * side lacks (docs/bundle.md). The list is resolved exactly as for to-oci (planOciExport: the
 * same resolver, blobs, `index.json` entries and referrers); only the sink differs: a tar
 * stream instead of a layout directory.
 *
 * The tar is deterministic (src/oci/ustar.ts) and its size known before a byte is written, so
 * volumes are planned up front and a dry run gives the exact size. Written to a file by temp
 * file and rename in its directory (a symbolic link at BUNDLE is replaced, never followed),
 * every volume renamed only once the whole tar is written: a killed run leaves temp files, no
 * BUNDLE, and a re-run (which removes the temp files of dead runs) writes the same bytes. Or
 * to a stream (standard output), chunk by chunk, as its reader takes them.
 */
import { closeSync, fstatSync, lstatSync, openSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { digestAlgorithm, digestHex, type Digest } from '../digest.js';
import { errnoCode, ioError, quote, RegfsError } from '../errors.js';
import { assertOutputFileDirectory, readNames, removeMatching, tempPathFor, TEMP_SUFFIX } from '../fs/atomic.js';
import { leftByDeadProcess, MARK, ownerTag } from '../fs/owner.js';
import { readInventory } from '../inventory/read.js';
import { OCI_LAYOUT_CONTENT, OCI_LAYOUT_FILE, INDEX_FILE } from '../oci/layout.js';
import { END_OF_ARCHIVE, entryHeader, headerSize, paddedSize, type EntryType } from '../oci/ustar.js';
import { PhaseProgress } from '../progress.js';
import { RegistryReader } from '../registry/read.js';
import type { Readable } from 'node:stream';
import type { StorageDriver } from '../storage/driver.js';
import { isS3Root } from '../storage/open.js';
import type { BlobSource } from '../registry/write.js';
import type { WriteResultBase } from './common.js';
import type { ReferrersResult } from './extract.js';
import { assertOutsideSource } from './output-root.js';
import { parsePlatform } from './platform.js';
import { BUNDLE_FILE, bundleFileBytes, type BundleFile } from '../oci/bundle-file.js';
import { newIndexJson, planOciExport, type OciExportOptions } from './to-oci.js';

/** The smallest volume: below it, the volumes of a bundle of any size become too many to handle. */
export const MIN_VOLUME = 1 << 20;

export interface BundleOptions extends OciExportOptions {
  /** The source registry root (or its `docker/registry/v2`). */
  source: string;
  /** The bundle file (with `split`, the volumes' stem); `-` for `stream`. */
  output: string;
  /** Where the tar goes when `output` is `-`. */
  stream?: NodeJS.WritableStream;
  /** An inventory file of the far side: the blobs it lists (same digest and size) are left out. */
  have?: string;
  /** Volumes of at most this many bytes: `<output>.000`, `.001`, …. */
  split?: number;
  /** Plan; write nothing. */
  dryRun?: boolean;
}

/** What the bundle holds (or would). */
export interface BundlePlan {
  /** `index.json` entries. */
  entries: number;
  blobsCarried: number;
  bytesCarried: number;
  blobsAssumed: number;
  bytesAssumed: number;
  /** The tar's size in bytes, exactly. */
  size: number;
  /** The files written (or that would be): one, the volumes, or `-`. */
  volumes: string[];
}

export interface BundleResult extends WriteResultBase {
  /** The inventory's identity (`--have`), or null for a complete bundle. */
  inventory: Digest | null;
  referrers?: ReferrersResult;
  plan: BundlePlan;
  /** What the write did; undefined for a dry run. */
  stats: { tempFilesRemoved: number } | undefined;
}

/** Bytes of blob data read and written at once. */
const CHUNK = 4 << 20;

/** One entry of the tar. */
type Item = { name: string; type: EntryType; data?: Buffer; blob?: BlobSource; size: number };

/** `700M`, `4G`, `4GiB`, `1048576`: powers of 1024. */
export function parseSize(s: string): number {
  const m = /^([0-9]+)(?:([KMGT])(?:iB)?)?$/i.exec(s.trim());
  const n = m === null ? NaN : Number(m[1]) * 1024 ** (m[2] === undefined ? 0 : 'KMGT'.indexOf(m[2].toUpperCase()) + 1);
  if (!Number.isSafeInteger(n)) throw new RegfsError('USAGE', `--split ${quote(s)}: want a size such as 700M, 4G, 4GiB or a number of bytes (powers of 1024)`);
  if (n < MIN_VOLUME) throw new RegfsError('USAGE', `--split ${quote(s)}: a volume must hold at least 1 MiB`);
  return n;
}

/** Write the listed images from `source` as a bundle. */
export async function bundle(opts: BundleOptions): Promise<BundleResult> {
  const started = performance.now();
  const toStream = opts.output === '-';
  if (toStream && opts.split !== undefined) throw new RegfsError('USAGE', '--split writes volumes, which standard output is not: name a BUNDLE file');
  if (toStream && opts.dryRun !== true && opts.stream === undefined) throw new RegfsError('USAGE', 'BUNDLE "-" needs a stream to write to');
  if (opts.split !== undefined && (!Number.isSafeInteger(opts.split) || opts.split < MIN_VOLUME)) throw new RegfsError('USAGE', `split: a volume must hold at least 1 MiB, not ${opts.split} bytes`);
  if (isS3Root(opts.output)) throw new RegfsError('USAGE', `bundle writes a local file or standard output, not an object on S3 (${opts.output})`, { path: opts.output });
  if (opts.platform !== undefined) parsePlatform(opts.platform);
  const reader = await RegistryReader.open(opts.source);
  const out = toStream ? '-' : resolve(opts.output);
  if (!toStream) {
    checkOutputFile(out);
    // A link at BUNDLE is replaced, not followed; still, one that leads into the source is refused with the rest.
    await assertOutsideSource(opts.source, reader.v2, out, out);
  }
  const { blobs, entries, images, problems, leftOut, warnings, repaired, referrers } = await planOciExport(reader, opts);
  // Read after the plan, so that only the blobs of the listed images are kept of it.
  const inventory = opts.have === undefined ? undefined : readInventory(opts.have, (d) => blobs.has(d));
  const warn = (m: string): void => {
    warnings.push(m);
    opts.onWarning?.(m);
  };

  // Left out: what the inventory lists with the same size. Another size is not the same blob
  // (a damaged or truncated file on the far side): it is carried, and apply checks it.
  const carried: Array<[Digest, BlobSource]> = [];
  const assumed: Array<{ digest: Digest; size: number }> = [];
  let bytesCarried = 0;
  let bytesAssumed = 0;
  for (const [d, b] of blobs) {
    if (inventory?.blobs.get(d) === b.size) {
      assumed.push({ digest: d, size: b.size });
      bytesAssumed += b.size;
    } else {
      carried.push([d, b]);
      bytesCarried += b.size;
    }
  }
  blobs.clear();
  assumed.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  const meta: BundleFile = { inventory: inventory?.id ?? null, carried: { blobs: carried.length, bytes: bytesCarried }, assumed };
  const algorithms = [...new Set(['sha256', ...carried.map(([d]) => digestAlgorithm(d))])].sort();
  const items: Item[] = [
    fileItem(OCI_LAYOUT_FILE, Buffer.from(OCI_LAYOUT_CONTENT)),
    fileItem(BUNDLE_FILE, bundleFileBytes(meta)),
    fileItem(INDEX_FILE, Buffer.from(newIndexJson(entries))),
    { name: 'blobs/', type: 'dir', size: 0 },
    ...algorithms.map((a): Item => ({ name: `blobs/${a}/`, type: 'dir', size: 0 })),
    ...carried.map(([d, b]): Item => ({ name: `blobs/${digestAlgorithm(d)}/${digestHex(d)}`, type: 'file', blob: b, size: b.size })),
  ];
  let size = END_OF_ARCHIVE.length;
  for (const it of items) size += headerSize(it.name) + paddedSize(it.size);
  const volumes = toStream ? ['-'] : volumePaths(out, size, opts.split);
  if (!toStream) checkNotInput(volumes, [[opts.list, 'the image list'], [opts.have, 'the inventory given to --have']]);
  const plan: BundlePlan = { entries: entries.length, blobsCarried: carried.length, bytesCarried, blobsAssumed: assumed.length, bytesAssumed, size, volumes };
  const base = { output: out, inventory: inventory?.id ?? null, images, problems: problems.list, problemCount: problems.count, leftOut, warnings, repaired, referrers, plan };
  if (opts.split !== undefined) for (const stale of staleVolumes(out, volumes)) warn(`${stale} is a volume of an earlier run, not one of this bundle's ${volumes.length}: "cat ${out}.*" would read it too; remove it`);
  if (opts.dryRun === true) return { ...base, dryRun: true, stats: undefined, seconds: (performance.now() - started) / 1000 };

  const temps = toStream ? { removed: 0, unjudged: [] } : removeDeadTemps(out);
  if (temps.unjudged.length > 0) {
    const shown = temps.unjudged.slice(0, 3).map((p) => `"${p}"`).join(', ');
    warn(`${temps.unjudged.length} temp file${temps.unjudged.length === 1 ? '' : 's'} beside the bundle ${temps.unjudged.length === 1 ? 'was' : 'were'} left by a bundle run of another host or PID namespace, which this run cannot tell alive or dead (${shown}${temps.unjudged.length > 3 ? ', …' : ''}); remove ${temps.unjudged.length === 1 ? 'it' : 'them'} once no bundle writes there`);
  }
  const tempFilesRemoved = temps.removed;
  const sink = toStream ? new StreamSink(opts.stream!) : new FileSink(volumes, opts.split ?? size);
  const progress = new PhaseProgress(opts.onProgress, 'write', items.length, size);
  try {
    await writeTar(items, sink, progress, reader.driver.kind === 'filesystem' ? undefined : reader.driver);
    sink.finish();
  } catch (err) {
    sink.abort();
    throw err;
  }
  return { ...base, dryRun: false, stats: { tempFilesRemoved }, seconds: (performance.now() - started) / 1000 };
}

function fileItem(name: string, data: Buffer): Item {
  return { name, type: 'file', data, size: data.length };
}

/** Every entry, its header, its data and padding, then the end of the archive. */
async function writeTar(items: Item[], sink: Sink, progress: PhaseProgress, source: StorageDriver | undefined): Promise<void> {
  let sinceReport = 0;
  // From S3: the next blobs' GetObjects are sent while one is written (each body waits,
  // paused, until its turn), so the tar is not one round trip per blob.
  const ahead = new Map<number, Promise<Readable | undefined>>();
  const open = (j: number): void => {
    const b = items[j]?.blob;
    if (source === undefined || b === undefined || !('path' in b) || ahead.has(j)) return;
    const body = source.reader(b.path);
    body.catch(() => undefined);
    ahead.set(j, body);
  };
  try {
    for (const [i, it] of items.entries()) {
      const head = entryHeader(it.name, it.type, it.size);
      if (it.blob === undefined || 'data' in it.blob) {
        const data = it.data ?? (it.blob as { data: Buffer } | undefined)?.data ?? Buffer.alloc(0);
        await sink.write(Buffer.concat([head, data, Buffer.alloc(paddedSize(data.length) - data.length)]));
        progress.add(1, head.length + paddedSize(data.length));
      } else {
        await sink.write(head);
        progress.add(0, head.length);
        const onBytes = (n: number): void => {
          progress.add(0, n);
          sinceReport += n;
          if (sinceReport >= 64 << 20) {
            progress.report();
            sinceReport = 0;
          }
        };
        if (source === undefined) await copyBlob(it.blob.path, it.size, sink, onBytes);
        else {
          for (let j = i; j <= i + READ_AHEAD; j++) open(j);
          const body = ahead.get(i)!;
          ahead.delete(i);
          await streamBlob(source, await body, it.blob.path, it.size, sink, onBytes);
        }
        const pad = paddedSize(it.size) - it.size;
        if (pad > 0) await sink.write(Buffer.alloc(pad));
        progress.add(1, pad);
      }
      progress.report();
    }
    await sink.write(END_OF_ARCHIVE);
    progress.add(0, END_OF_ARCHIVE.length);
    progress.report();
  } finally {
    // A failure: the bodies opened ahead are let go.
    for (const body of ahead.values()) void body.then((b) => b?.destroy(), () => undefined);
  }
}

/** Blobs on S3 whose GetObject is sent before their turn in the tar. */
const READ_AHEAD = 8;

/** `size` bytes of the blob file at `path` into the sink; the file must hold exactly that many. */
async function copyBlob(path: string, size: number, sink: Sink, onBytes: (n: number) => void): Promise<void> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw ioError('reading', path, err);
  }
  try {
    const st = fstatSync(fd);
    if (st.size !== size) throw new RegfsError('SIZE_INVALID', `"${path}" holds ${st.size} bytes, not the ${size} its descriptor says (changed since it was read?)`, { path });
    let left = size;
    while (left > 0) {
      const buf = sink.buffer();
      let n: number;
      try {
        n = readSync(fd, buf, 0, Math.min(buf.length, left), null);
      } catch (err) {
        throw ioError('reading', path, err);
      }
      if (n === 0) throw new RegfsError('SIZE_INVALID', `"${path}" ended ${left} bytes short of its ${size} (changed while bundling?)`, { path });
      await sink.write(buf.subarray(0, n));
      left -= n;
      onBytes(n);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * `size` bytes of the blob at `path` of a driver (S3), its GetObject's `body`, into the sink
 * as they arrive (bounded memory: the sink is written before the next chunk is taken); the
 * object must hold exactly that many.
 */
async function streamBlob(source: StorageDriver, body: Readable | undefined, path: string, size: number, sink: Sink, onBytes: (n: number) => void): Promise<void> {
  if (body === undefined) throw new RegfsError('BLOB_UNKNOWN', `blob data "${path}" does not exist in ${source.location} (removed since it was read?)`, { path });
  let left = size;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (chunk.length > left) throw new RegfsError('SIZE_INVALID', `"${path}" in ${source.location} holds more than the ${size} bytes its descriptor says (changed since it was read?)`, { path });
      await sink.write(chunk);
      left -= chunk.length;
      onBytes(chunk.length);
    }
  } catch (err) {
    body.destroy();
    throw err instanceof RegfsError ? err : ioError('reading', `${source.location}: ${path}`, err);
  }
  if (left > 0) throw new RegfsError('SIZE_INVALID', `"${path}" in ${source.location} ended ${left} bytes short of its ${size} (changed while bundling?)`, { path });
}

/** Where the tar's bytes go. */
interface Sink {
  /** A buffer to read the next chunk into. */
  buffer(): Buffer;
  write(data: Buffer): Promise<void> | void;
  /** Everything written: put it in place. */
  finish(): void;
  /** A failure: leave nothing behind. */
  abort(): void;
}

/** Volumes (or the one file) written as temp files, each renamed into place once all are written. */
class FileSink implements Sink {
  private readonly chunk = Buffer.allocUnsafe(CHUNK);
  private readonly temps: string[] = [];
  private fd: number | undefined;
  /** Bytes written into the current volume. */
  private filled = 0;

  constructor(
    private readonly paths: string[],
    private readonly volumeSize: number,
  ) {}

  buffer(): Buffer {
    return this.chunk;
  }

  write(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      if (this.fd === undefined || this.filled === this.volumeSize) this.next();
      const n = Math.min(data.length - at, this.volumeSize - this.filled);
      this.writeAll(data.subarray(at, at + n));
      at += n;
      this.filled += n;
    }
  }

  private next(): void {
    this.close();
    const path = this.paths[this.temps.length];
    if (path === undefined) throw new Error('bundle: more bytes than planned');
    const tmp = tempPathFor(path);
    try {
      this.fd = openSync(tmp, 'wx', 0o644);
    } catch (err) {
      throw ioError('writing', path, err);
    }
    this.temps.push(tmp);
    this.filled = 0;
  }

  private writeAll(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      try {
        at += writeSync(this.fd!, data, at, data.length - at);
      } catch (err) {
        throw ioError('writing', this.temps.at(-1)!, err);
      }
    }
  }

  private close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      closeSync(fd);
    } catch (err) {
      throw ioError('writing', this.temps.at(-1)!, err);
    }
  }

  finish(): void {
    this.close();
    if (this.temps.length !== this.paths.length) throw new Error(`bundle: ${this.temps.length} volumes written, ${this.paths.length} planned`);
    // The last volume first, the first (which apply starts from) last. Volumes: an earlier
    // bundle's first goes before any is replaced, so that a run killed among the renames
    // leaves no first volume (a truncated set) rather than an old one before new ones.
    if (this.paths.length > 1) {
      try {
        unlinkSync(this.paths[0]!);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw ioError('removing', this.paths[0]!, err);
      }
    }
    for (let i = this.paths.length - 1; i >= 0; i--) {
      try {
        renameSync(this.temps[i]!, this.paths[i]!);
      } catch (err) {
        throw ioError('writing', this.paths[i]!, err);
      }
    }
  }

  abort(): void {
    try {
      if (this.fd !== undefined) closeSync(this.fd);
    } catch {
      // the write failed; its temp file goes below
    }
    this.fd = undefined;
    for (const tmp of this.temps) {
      try {
        unlinkSync(tmp);
      } catch {
        // renamed already, or never made
      }
    }
  }
}

/** A stream (standard output): each chunk handed over whole, the next read once it is taken. */
class StreamSink implements Sink {
  private failed: unknown;

  constructor(private readonly stream: NodeJS.WritableStream) {
    stream.on('error', (err: unknown) => (this.failed ??= err));
  }

  buffer(): Buffer {
    // The stream holds each chunk until it is written: a fresh one each time.
    return Buffer.allocUnsafeSlow(CHUNK);
  }

  write(data: Buffer): Promise<void> {
    if (this.failed !== undefined) return Promise.reject(this.closed());
    return new Promise((res, rej) => {
      this.stream.write(data, (err) => {
        if (err === undefined || err === null) res();
        else {
          this.failed ??= err;
          rej(this.closed());
        }
      });
    });
  }

  private closed(): RegfsError {
    const code = errnoCode(this.failed) ?? (this.failed as Error | undefined)?.message;
    return new RegfsError('IO_ERROR', `cannot write the bundle to standard output: ${code === 'EPIPE' ? 'EPIPE (its reader is gone; the bundle is incomplete)' : code}`, { cause: this.failed });
  }

  finish(): void {}

  abort(): void {}
}

/**
 * BUNDLE must be a new file or a regular file (replaced whole), or a symbolic link (replaced
 * by the bundle, its target untouched); a directory, a FIFO or a device is refused.
 */
function checkOutputFile(path: string): void {
  let st;
  try {
    st = lstatSync(path);
  } catch (err) {
    // A new file: its directory must be there.
    assertOutputFileDirectory(path);
    if (errnoCode(err) !== 'ENOENT') throw ioError('reading', path, err);
    return;
  }
  if (st.isFile() || st.isSymbolicLink()) return;
  const what = st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'a device';
  throw new RegfsError('OUTPUT_NOT_FILE', `bundle "${path}" is ${what}; regfs writes a bundle as a new or regular file (or "-" for standard output)`, { path });
}

/**
 * BUNDLE (or a volume) must not be a file this run reads, the list or the inventory: its
 * rename would replace it. A symbolic link at BUNDLE is replaced, not followed: it may lead to one.
 */
function checkNotInput(paths: string[], inputs: Array<[string | undefined, string]>): void {
  for (const [input, what] of inputs) {
    if (input === undefined || input === '-') continue;
    let st;
    try {
      st = statSync(input);
    } catch {
      continue;
    }
    for (const p of paths) {
      let o;
      try {
        o = lstatSync(p);
      } catch {
        continue;
      }
      if (o.dev === st.dev && o.ino === st.ino) {
        throw new RegfsError('OUTPUT_IN_SOURCE', `bundle "${p}" is ${what} ${quote(input)}, which this run reads; regfs never writes over its input: write the bundle elsewhere`, { path: p });
      }
    }
  }
}

/** `<out>` alone, or its volumes `<out>.000`…, numbered with at least three digits, all of one width so that `cat <out>.*` reads them in order. */
function volumePaths(out: string, size: number, split: number | undefined): string[] {
  if (split === undefined) return [out];
  const count = Math.max(1, Math.ceil(size / split));
  const width = Math.max(3, String(count - 1).length);
  const paths = Array.from({ length: count }, (_, i) => `${out}.${String(i).padStart(width, '0')}`);
  for (const p of paths) checkOutputFile(p);
  return paths;
}

/** Volumes of an earlier run that this one does not replace: numbered beyond its last, or with another number of digits. */
function staleVolumes(out: string, volumes: string[]): string[] {
  const base = basename(out);
  const ours = new Set(volumes.map((v) => basename(v)));
  return readNames(dirname(out))
    .filter((n) => n.startsWith(`${base}.`) && /^[0-9]{3,}$/.test(n.slice(base.length + 1)) && !ours.has(n))
    .sort()
    .map((n) => join(dirname(out), n));
}

/**
 * Remove the temp files a killed bundle run left beside `out` (its volumes' too): regfs's temp
 * names carry the writer's mark (`<pid>-<tag>`, owner.ts), and one whose writer was of this
 * host and PID namespace and is gone is removed; a live run's are left to it (two runs to one
 * BUNDLE each write their own and rename the same bytes). Those of another host or namespace
 * (or of a run that could not read its own) are left too, and named: whether their writer
 * lives cannot be told from here, and each may be as large as the bundle.
 */
function removeDeadTemps(out: string): { removed: number; unjudged: string[] } {
  const base = basename(out);
  const temp = new RegExp(`^\\.(.+)\\.${MARK}-[0-9a-f]{8}-[0-9a-z]+\\.regfs-tmp$`);
  const unjudged: string[] = [];
  const removed = removeMatching(dirname(out), (name) => {
    if (!name.startsWith(`.${base}.`) || !name.endsWith(TEMP_SUFFIX)) return false;
    const m = temp.exec(name);
    if (m === null || (m[1] !== base && !(m[1]!.startsWith(`${base}.`) && /^[0-9]{3,}$/.test(m[1]!.slice(base.length + 1))))) return false;
    if (m[3] !== ownerTag()) unjudged.push(join(dirname(out), name));
    return leftByDeadProcess(m[2]!, m[3]!);
  });
  return { removed, unjudged };
}
