/**
 * The storage seam: what regfs's storage model reads and writes, with one implementation per
 * kind of storage (./fs.ts: a directory; ./s3.ts: a bucket prefix, as distribution's `s3`
 * driver lays it out). Modelled on distribution's `storagedriver.StorageDriver`
 * (registry/storage/driver/storagedriver.go): paths, not objects; "directories" exist only as
 * prefixes of files; small content read and written whole; blob data streamed. It differs
 * where regfs needs it to:
 *
 *   - `walk` is a flat listing of every file below a prefix, with sizes, in pages: on S3 one
 *     ListObjectsV2 stream (one request per 1,000 keys), far cheaper than the driver's
 *     directory-by-directory Walk (the registry's own GC walk took 40 s on S3 where the same
 *     tree takes 0.6 s on disk).
 *   - `placeBlob` puts blob data from another driver without rewriting what is there: a hard
 *     link or reflink on disk, a server-side copy between two roots of one S3 service, a
 *     streamed upload (bounded memory) between the filesystem and S3.
 *   - Absent files are `undefined`, not an error; every other failure is a RegfsError naming
 *     the path (and, for S3, one of the S3_* codes where the cause is the service's setup).
 *
 * Paths are the driver's own: built by registry/layout.ts from the driver's `v2` (an absolute
 * directory on disk, a key prefix on S3), so that layout stays the one place paths are made.
 */
import type { Readable } from 'node:stream';
import type { PlaceOutcome } from '../fs/link.js';

export type { PlaceOutcome };

/** What `stat` finds at a path. */
export type FileInfo =
  | {
      kind: 'file';
      size: number;
      /** On disk, where `path` is a symbolic link: the real file, to link or read (link(2) would link the symbolic link). */
      real?: string;
    }
  /** On S3: some key starts with `<path>/`. On disk: with its modification time. */
  | {
      kind: 'directory';
      mtime?: Date;
      /** On disk, for messages: "a directory", or "a symbolic link to a directory". */
      what?: string;
    }
  /** On disk only: a FIFO, socket, device, a symbolic link that loops …, as `what` says. */
  | { kind: 'other'; what: string; size?: number };

/** A direct child of a directory. */
export interface ChildEntry {
  name: string;
  /** A directory (on disk, also a symbolic link to one; on S3, a common prefix). */
  dir: boolean;
}

/** A file found by `walk`. */
export interface WalkEntry {
  /** The file's path in the driver's namespace (as layout.ts builds it). */
  path: string;
  size: number;
  /** When it was last written, where the listing says (S3). */
  mtime?: Date;
  /** The object's ETag without quotes, where the listing says (S3): the MD5 of its bytes for a single-part upload. */
  etag?: string;
}

/** Small content, or what stands in a file's place (on disk: a FIFO, a directory …). */
export type Content = Buffer | { notRegular: string };

/** Options for placing one blob. */
export interface PlaceOptions {
  /**
   * The caller knows nothing is at the destination (a listing said so): skip the existence
   * check (a stat on disk, a HEAD on S3).
   */
  absent?: boolean;
}

export interface StorageDriver {
  /** `filesystem` or `s3`, for messages and for choosing how blobs move between two drivers. */
  readonly kind: 'filesystem' | 's3';
  /** The storage root, `<rootdirectory>/docker/registry/v2`, in this driver's namespace. */
  readonly v2: string;
  /** Where the storage is, for messages: a directory, or `s3://bucket/prefix`. */
  readonly location: string;

  /**
   * At most `maxBytes` bytes of a small file (a link, a manifest); undefined if there is none.
   * Symbolic links are followed, as the registry follows them; a FIFO, socket, device or
   * directory in the file's place is reported, never read.
   */
  getContent(path: string, maxBytes: number): Promise<Content | undefined>;

  /** What is at `path`; undefined if nothing is. */
  stat(path: string): Promise<FileInfo | undefined>;

  /** The direct children of a directory, sorted by name; [] if it does not exist. */
  list(dir: string): Promise<ChildEntry[]>;

  /**
   * Every regular file below `prefix` (a directory path), with its size, a page at a time,
   * in no particular order. Nothing if the prefix holds nothing.
   */
  walk(prefix: string): AsyncIterable<WalkEntry[]>;

  /**
   * Write a small file so that a reader sees the old content or the new, never a part: a temp
   * file and rename(2) on disk, one PutObject on S3. Parents are created as needed.
   */
  putContent(path: string, data: Uint8Array): Promise<void>;

  /**
   * Put the blob data at `srcPath` of `src` (`size` bytes) at `destPath`. Data already there
   * with that size is kept ('exists'); data of another size (a copy cut short) is replaced.
   */
  placeBlob(src: StorageDriver, srcPath: string, destPath: string, size: number, opts?: PlaceOptions): Promise<PlaceOutcome>;

  /** A stream of a file's bytes; undefined if there is none. */
  reader(path: string): Promise<Readable | undefined>;

  /** Delete a file, or a directory and everything below it. Nothing there is no error. */
  delete(path: string): Promise<void>;

  /**
   * List everything below `dir` once and answer later reads below it from that listing
   * (S3: one request per 1,000 keys instead of one per read). Absent on disk, where a read
   * costs less than keeping a listing.
   */
  prefetch?(dir: string): Promise<void>;

  /**
   * The size of a file below a prefetched directory as its listing found it, `false` if the
   * listing holds no such file, undefined if no listing covers the path.
   */
  listedSize?(path: string): number | false | undefined;

  /**
   * True if the listing of a prefetched directory proves that the file at `path` holds
   * exactly `content`: its size and its ETag, the MD5 of a single-part upload's bytes, are
   * content's. Anything else (no listing, another size, an ETag that is no MD5 or another
   * one) proves nothing: only a read tells. Lets a link be checked without a request.
   */
  listedHolds?(path: string, content: string): boolean;

  /** An identity of a directory, the same for every path that reaches it (on disk: device and inode), to cut loops in a walk. */
  directoryId?(path: string): string;

  /** How likely the path (below `root`) is a directory's second name, through symbolic links (on disk; follow.ts aliasScore). */
  aliasScore?(path: string, root: string): number;
}
