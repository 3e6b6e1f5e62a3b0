/**
 * Reading an OCI image layout from a tar stream (skopeo `oci-archive:`, `docker save` 25+,
 * `tar -cf` of a layout directory), in one pass and without unpacking it anywhere: the tar
 * library (isaacs `tar`, the one npm itself uses) parses the stream, and regfs decides what
 * each entry is. A tar's entries come in any order (index.json often after the blobs), so
 * every blob entry is streamed into a file of a staging directory the caller gives (inside
 * the output's own blob tree, on its filesystem), hashed as it goes; `oci-layout` and
 * `index.json` are kept in memory. Blobs the output already holds (same size) are skipped,
 * so the extra disk is the new blobs only.
 *
 * Nothing of the archive is ever written where its names say: an entry's name is only
 * compared with the layout's own names (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`).
 * Still, an archive with an entry outside the layout (an absolute name, a `..` component)
 * or a link or special file where a layout file belongs is refused as ARCHIVE_INVALID, and
 * so is a truncated or damaged tar. Links and other entries elsewhere (docker save's
 * `manifest.json`, `repositories`, legacy layer directories) are skipped.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, createReadStream, fstatSync, openSync, read, ReadStream, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadEntry } from 'tar/read-entry';
import { ioError, PATH_QUOTE_MAX, quote, RegfsError } from '../errors.js';
import { digestAlgorithm, isDigest, type Digest } from '../digest.js';
import { INDEX_FILE, OCI_LAYOUT_FILE } from './layout.js';
import { BUNDLE_FILE } from './bundle-file.js';

/** A blob of the archive: where its bytes are now, and what they hash to (when hashed). */
export interface ArchiveBlob {
  /** A staged file, a file the output already holds, or undefined when `data` holds the bytes. */
  path: string | undefined;
  /** The bytes, for a blob kept in memory (a dry run keeps small JSON blobs so: possible manifests; the others are dropped). */
  data: Buffer | undefined;
  size: number;
  /** The digest of the bytes read; undefined if not hashed (noVerify, or taken from the output). */
  hashed: Digest | undefined;
  /** True if the output already held it, with this size: its bytes in the archive were skipped. */
  existing: boolean;
  /** A dry run's JSON blob not kept: no entry read before it named it, and KEEP_UNNAMED_MAX_BYTES were kept already. */
  overBudget?: boolean;
}

/** What an archive holds of a layout. */
export interface ArchiveContent {
  ociLayout: Buffer | undefined;
  index: Buffer | undefined;
  blobs: Map<Digest, ArchiveBlob>;
  /** Bytes of blob entries read (hashed or not). */
  bytesRead: number;
}

export interface ReadArchiveOptions {
  /** For messages: the archive as the user named it. */
  label: string;
  /** Where blob entries are staged; undefined for a dry run (nothing is written). */
  stageDir: string | undefined;
  /** Hash every blob entry (off with noVerify). */
  hash: boolean;
  /** The output's data file for a digest, if it holds one: such blobs are not staged. Asked once for each blob entry, with the size its header gives; what it throws stops the read. */
  existing: (d: Digest, size: number) => { path: string; size: number } | undefined;
  /** Bytes up to which a dry run keeps a JSON blob in memory (a manifest must be read). */
  keepBytes: number;
  /** The largest index.json read. */
  indexMaxBytes: number;
  onProgress?: (bytes: number, total: number | undefined) => void;
  /** The total size of the input, when known, for progress. */
  totalBytes?: number | undefined;
  /**
   * With it, a `regfs-bundle.json` entry (src/oci/bundle-file.ts) is read into memory (up to
   * indexMaxBytes) and given to it when it ends, with the number of blob entries read before
   * it; what it throws stops the read. Without it the entry is skipped, as any other.
   */
  onBundleFile?: (raw: Buffer, blobsBefore: number) => void;
}

/**
 * What a dry run keeps in memory of JSON blobs that may be manifests but that no entry read
 * before them names (index.json, or an index kept): beyond it they are only hashed, so that
 * a tar of large JSON layers (attestations, SBOMs) is planned in bounded memory.
 */
const KEEP_UNNAMED_MAX_BYTES = 128 << 20;

/** The largest `oci-layout` file read (it holds `{"imageLayoutVersion":"1.0.0"}`). */
const OCI_LAYOUT_MAX_BYTES = 64 << 10;

/** An archive's entry name, relative to the layout: leading `./` and empty components dropped. */
export function archiveEntryName(name: string, label: string): string {
  const bad = (why: string): RegfsError =>
    new RegfsError('ARCHIVE_INVALID', `archive "${label}": entry ${quote(name, PATH_QUOTE_MAX)} ${why}; an OCI layout archive holds the layout's own files only`, { path: label });
  if (name.startsWith('/')) throw bad('is an absolute path');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw bad('leads outside the layout (a ".." component)');
  return parts.join('/');
}

/** `blobs/<alg>/<encoded>` as a digest; undefined for any other name. */
function blobName(rel: string): Digest | undefined {
  const parts = rel.split('/');
  if (parts.length !== 3 || parts[0] !== 'blobs') return undefined;
  const d = `${parts[1]}:${parts[2]}`;
  return isDigest(d) ? d : undefined;
}

/** Read a layout archive from a file (or a stream), staging its blobs. */
export async function readArchive(input: string | Readable, opts: ReadArchiveOptions): Promise<ArchiveContent> {
  // Loaded here, not at start-up: only this command reads tars.
  const { Parser } = await import('tar/parse');
  const content: ArchiveContent = { ociLayout: undefined, index: undefined, blobs: new Map(), bytesRead: 0 };
  const keep: Keep = { named: new Set(), unnamedBytes: 0 };
  // gzip is undone (a .tar.gz of a layout); brotli and zstd are not: Node 20 has no zstd, and
  // brotli has no magic number, so a damaged tar would be taken for it.
  const parser = new Parser({ strict: true, brotli: false, zstd: false });
  const source = typeof input === 'string' ? openInput(input) : input;
  let failed: unknown;
  let consumed = 0;

  return new Promise<ArchiveContent>((resolve, reject) => {
    let reading = true;
    const stop = (): void => {
      reading = false;
      // A named input is not read on, nor a file or device given as standard input (`< /dev/zero`).
      // A pipe is drained while the run goes on, so that its writer is not cut off, but it does
      // not keep the process alive after it (`yes | regfs apply - DEST` never ends).
      if (typeof input === 'string' || source instanceof ReadStream) source.destroy();
      else {
        source.resume();
        (source as Readable & { unref?: () => void }).unref?.();
      }
    };
    const fail = (err: unknown): void => {
      if (failed !== undefined) return;
      failed = err;
      stop();
      reject(toArchiveError(err, opts.label));
    };
    source.on('error', (err: Error) => fail(err instanceof RegfsError ? err : ioError('reading', typeof input === 'string' ? input : opts.label, err)));
    // The parser is fed here, not piped, so that anything it throws is this run's failure,
    // never an uncaught exception; its backpressure pauses the input.
    source.on('data', (c: Buffer) => {
      if (!reading) return;
      consumed += c.length;
      opts.onProgress?.(consumed, opts.totalBytes);
      try {
        if (!parser.write(c)) source.pause();
      } catch (err) {
        fail(err);
      }
    });
    parser.on('drain', () => {
      if (reading) source.resume();
    });
    source.on('end', () => {
      if (!reading) return;
      try {
        parser.end();
      } catch (err) {
        fail(err);
      }
    });
    parser.on('error', fail);
    // The end-of-archive blocks: whatever follows is padding, and is not parsed (a device such
    // as /dev/zero never ends; the writer of a pipe, tar or docker save, may still be writing).
    parser.on('eof', () => {
      if (!reading) return;
      stop();
      parser.end();
    });
    parser.on('end', () => {
      if (failed === undefined) resolve(content);
    });
    parser.on('entry', (entry: ReadEntry) => {
      if (failed !== undefined) {
        entry.resume();
        return;
      }
      try {
        onEntry(entry, content, opts, keep, fail);
      } catch (err) {
        entry.resume();
        fail(err);
      }
    });
  });
}

/** Bytes of one read of a named archive. */
const READ_BYTES = 1 << 20;
/** Reads of a regular file in flight at once: the next are read (on the threadpool) while one is hashed and written here. */
const READ_AHEAD = 4;

/**
 * A named archive as a stream. A regular file is read ahead, READ_AHEAD reads at their offsets
 * in flight at once, so that reading overlaps the hashing and writing done on this thread (a
 * file stream issues its next read only after the last chunk was handled). Anything else (a
 * FIFO, a device such as /dev/zero) is read as a stream, in order.
 */
function openInput(path: string): Readable {
  const failed = (err: unknown): Readable => new Readable({ read: () => undefined }).destroy(err as Error);
  let regular: boolean;
  try {
    // Typed by its path, not by opening it: an open and close of a FIFO would cut off its writer.
    regular = statSync(path).isFile();
  } catch (err) {
    return failed(err);
  }
  if (!regular) return createReadStream(path, { highWaterMark: READ_BYTES });
  let fd: number;
  try {
    // Not blocking, and checked again on the descriptor: a FIFO put in its place meanwhile is refused, not waited on.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    return failed(err);
  }
  try {
    regular = fstatSync(fd).isFile();
  } catch (err) {
    closeSync(fd);
    return failed(err);
  }
  if (!regular) {
    closeSync(fd);
    return failed(new RegfsError('ARCHIVE_INVALID', `archive "${path}" was replaced by something other than a regular file while being opened`, { path }));
  }
  return Readable.from(readAhead(fd), { objectMode: false, highWaterMark: READ_BYTES });
}

/**
 * A regular file's bytes, chunk by chunk in order, with READ_AHEAD reads in flight. A short
 * read is the end (a file still being written is read to where it ends, as a stream reads it,
 * never with a gap). The file is closed only once no read is in flight.
 */
async function* readAhead(fd: number): AsyncGenerator<Buffer> {
  const pending: Array<Promise<Buffer>> = [];
  let position = 0;
  const issue = (): void => {
    const buf = Buffer.allocUnsafe(READ_BYTES);
    const at = position;
    position += READ_BYTES;
    const p = new Promise<Buffer>((resolve, reject) => read(fd, buf, 0, READ_BYTES, at, (err, n) => (err === null ? resolve(buf.subarray(0, n)) : reject(err))));
    // Settled in order below; a failure of a read not yet awaited is not unhandled meanwhile.
    p.catch(() => undefined);
    pending.push(p);
  };
  try {
    for (let i = 0; i < READ_AHEAD; i++) issue();
    for (;;) {
      const chunk = await pending.shift()!;
      if (chunk.length < READ_BYTES) {
        if (chunk.length > 0) yield chunk;
        return;
      }
      issue();
      yield chunk;
    }
  } finally {
    await Promise.allSettled(pending);
    closeSync(fd);
  }
}

/** A dry run's memory of manifests: the digests entries read so far name as manifests, and the bytes kept of others. */
interface Keep {
  named: Set<string>;
  unnamedBytes: number;
}

/** Note the digests an index (index.json, or an image index kept) names: those blobs are kept when they come. */
function noteNamed(raw: Buffer, keep: Keep): void {
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch {
    return;
  }
  const list = (doc as { manifests?: unknown } | null)?.manifests;
  if (!Array.isArray(list)) return;
  for (const m of list) {
    const d = (m as { digest?: unknown } | null)?.digest;
    if (typeof d === 'string') keep.named.add(d);
  }
}

function onEntry(entry: ReadEntry, content: ArchiveContent, opts: ReadArchiveOptions, keep: Keep, fail: (err: unknown) => void): void {
  const rel = archiveEntryName(entry.path, opts.label);
  const d = blobName(rel);
  const isBundleFile = rel === BUNDLE_FILE && opts.onBundleFile !== undefined;
  const isLayoutFile = rel === INDEX_FILE || rel === OCI_LAYOUT_FILE || d !== undefined || isBundleFile;
  const isFile = entry.type === 'File' || entry.type === 'OldFile' || entry.type === 'ContiguousFile';
  if (!isFile) {
    if (isLayoutFile) {
      throw new RegfsError('ARCHIVE_INVALID', `archive "${opts.label}": ${quote(rel, PATH_QUOTE_MAX)} is a ${entry.type} entry; a layout's files must be regular files`, { path: opts.label });
    }
    entry.resume();
    return;
  }
  if (isBundleFile) {
    if ((entry.size ?? 0) > opts.indexMaxBytes) throw new RegfsError('ARCHIVE_INVALID', `archive "${opts.label}": ${rel} is ${entry.size} bytes, more than regfs reads (${opts.indexMaxBytes})`, { path: opts.label });
    const chunks: Buffer[] = [];
    const blobsBefore = content.blobs.size;
    entry.on('data', (c: Buffer) => chunks.push(c));
    entry.on('end', () => {
      try {
        opts.onBundleFile!(Buffer.concat(chunks), blobsBefore);
      } catch (err) {
        fail(err);
      }
    });
    return;
  }
  if (rel === INDEX_FILE || rel === OCI_LAYOUT_FILE) {
    // Readers disagree on which of two copies counts (tar and skopeo take the last): refused.
    if ((rel === INDEX_FILE ? content.index : content.ociLayout) !== undefined) {
      throw new RegfsError('ARCHIVE_INVALID', `archive "${opts.label}" holds ${rel} twice; a layout has one`, { path: opts.label });
    }
    const max = rel === INDEX_FILE ? opts.indexMaxBytes : OCI_LAYOUT_MAX_BYTES;
    if ((entry.size ?? 0) > max) throw new RegfsError('MANIFEST_INVALID', `archive "${opts.label}": ${rel} is ${entry.size} bytes, more than regfs reads (${max})`, { path: opts.label });
    const chunks: Buffer[] = [];
    entry.on('data', (c: Buffer) => chunks.push(c));
    entry.on('end', () => {
      if (rel === INDEX_FILE) {
        content.index = Buffer.concat(chunks);
        if (opts.stageDir === undefined) noteNamed(content.index, keep);
      } else content.ociLayout = Buffer.concat(chunks);
    });
    return;
  }
  if (d === undefined || content.blobs.has(d)) {
    // Not a layout file (manifest.json, repositories, a name that is no digest), or a blob seen
    // before under the same name (content addressed: the first copy is checked like any other).
    entry.resume();
    return;
  }
  const size = entry.size ?? 0;
  const there = opts.existing(d, size);
  if (there !== undefined && there.size === size) {
    content.blobs.set(d, { path: there.path, data: undefined, size, hashed: undefined, existing: true });
    content.bytesRead += size;
    entry.resume();
    return;
  }
  const hash: Hash | undefined = opts.hash ? createHash(digestAlgorithm(d)) : undefined;
  // A dry run keeps a JSON blob an entry before it named, and others within KEEP_UNNAMED_MAX_BYTES.
  let overBudget = false;
  const mayKeep = (): boolean => {
    if (keep.named.has(d)) return true;
    if (keep.unnamedBytes + size > KEEP_UNNAMED_MAX_BYTES) return !(overBudget = true);
    keep.unnamedBytes += size;
    return true;
  };
  const sink = opts.stageDir === undefined ? memorySink(size <= opts.keepBytes, mayKeep) : fileSink(join(opts.stageDir, `${digestAlgorithm(d)}-${d.slice(d.indexOf(':') + 1)}`));
  let written = 0;
  entry.on('data', (c: Buffer) => {
    if (sink.failed) return;
    try {
      hash?.update(c);
      sink.write(c);
      written += c.length;
    } catch (err) {
      sink.failed = true;
      sink.abandon();
      fail(err);
    }
  });
  entry.on('end', () => {
    if (sink.failed) return;
    try {
      const out = sink.close();
      content.bytesRead += written;
      // A truncated archive ends its last entry early; the parser reports that too.
      if (written !== size) throw new RegfsError('ARCHIVE_INVALID', `archive "${opts.label}": ${rel} ends after ${written} of its ${size} bytes (truncated)`, { path: opts.label });
      content.blobs.set(d, { path: out.path, data: out.data, size, hashed: hash === undefined ? undefined : (`${digestAlgorithm(d)}:${hash.digest('hex')}` as Digest), existing: false, overBudget });
      if (out.data !== undefined) noteNamed(out.data, keep);
    } catch (err) {
      fail(err);
    }
  });
}

interface Sink {
  failed: boolean;
  write(c: Buffer): void;
  close(): { path: string | undefined; data: Buffer | undefined };
  abandon(): void;
}

/** A staged file, written synchronously chunk by chunk (the parser waits meanwhile). */
function fileSink(path: string): Sink {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o644);
  } catch (err) {
    throw ioError('creating', path, err);
  }
  let open = true;
  const closeFd = (): void => {
    if (open) closeSync(fd);
    open = false;
  };
  return {
    failed: false,
    write(c) {
      try {
        for (let off = 0; off < c.length; ) off += writeSync(fd, c, off, c.length - off);
      } catch (err) {
        throw ioError('writing', path, err);
      }
    },
    close() {
      try {
        closeFd();
      } catch (err) {
        throw ioError('writing', path, err);
      }
      return { path, data: undefined };
    },
    abandon() {
      try {
        closeFd();
        unlinkSync(path);
      } catch {
        // the staging directory is removed whole in the end
      }
    },
  };
}

/**
 * A dry run's blob: kept in memory if it may be a manifest (small enough, and JSON: its first
 * byte other than JSON whitespace is `{`) and `mayKeep` says so, else only hashed. Layers
 * (gzip, tar) are never kept.
 */
function memorySink(small: boolean, mayKeep: () => boolean): Sink {
  const chunks: Buffer[] = [];
  let keep: boolean | undefined = small ? undefined : false;
  return {
    failed: false,
    write(c) {
      if (keep === undefined) {
        const first = c.findIndex((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
        if (first >= 0) keep = c[first] === 0x7b && mayKeep();
      }
      if (keep !== false) chunks.push(c);
    },
    close() {
      return { path: undefined, data: keep === true ? Buffer.concat(chunks) : undefined };
    },
    abandon() {
      chunks.length = 0;
    },
  };
}

/** The tar library's errors (a truncated or damaged archive, not a tar at all) as ARCHIVE_INVALID. */
function toArchiveError(err: unknown, label: string): RegfsError {
  if (err instanceof RegfsError) return err;
  const message = err instanceof Error ? err.message : String(err);
  // The tar library's error carries the entry it was reading when the input ended (a truncated tar).
  const entry = (err as { entry?: { path?: unknown } }).entry?.path;
  const at = typeof entry === 'string' ? ` (in entry ${quote(entry, PATH_QUOTE_MAX)})` : '';
  return new RegfsError('ARCHIVE_INVALID', `archive "${label}" is not a whole, readable tar (truncated, damaged, or no tar): ${message}${at}`, { path: label, cause: err });
}
