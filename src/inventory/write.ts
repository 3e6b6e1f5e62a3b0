/**
 * The writer of inventory files, version 1 (docs/bundle.md): text, one record a line,
 * fields separated by one space, `\n` line ends, in a fixed order, so that the same storage
 * always gives the same bytes:
 *
 *   regfs-inventory 1
 *   blob sha256:<hex> <size>          every blob, by digest
 *   repo <name>                       every repository, by name (byte order); after each:
 *   tag <name> <tag> <digest>           its tags, by tag, with the manifest each names
 *   manifest <name> <digest>            its manifests, by digest
 *
 * The writer takes records in that order and refuses any other (a bug in the reader that
 * feeds it, never a user's mistake), so the bytes cannot depend on the order a directory
 * lists its entries in. It keeps nothing but the last key of each kind: lines go out in
 * chunks of about 64 KiB to a sink as they come, hashed on the way. The inventory's identity
 * is `sha256:<hex>` of its bytes.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Digest } from '../digest.js';
import type { RepoName, Tag } from '../reference.js';

/** The first line of a version-1 inventory. */
export const INVENTORY_HEADER = 'regfs-inventory 1';

/** Where the bytes go: a chunk at a time, in order; a promise makes the writer wait for it (backpressure). */
export type InventorySink = (chunk: Buffer) => void | Promise<void>;

/** What an inventory holds, and its identity. */
export interface InventoryCounts {
  /** `sha256:<hex>` of the bytes written. */
  id: Digest;
  /** Its size in bytes. */
  size: number;
  blobs: number;
  /** The sizes of the blobs, added up. */
  bytes: number;
  repositories: number;
  tags: number;
  manifests: number;
}

/** Buffered bytes past which `drain` hands them to the sink. */
const FLUSH_BYTES = 1 << 16;

/**
 * One inventory being written. `blob` for every blob, then for every repository `repo`,
 * its `tag`s, its `manifest`s; `drain` now and then (it passes the buffered lines on and
 * waits for the sink); `end` once.
 */
export class InventoryWriter {
  private buf = '';
  private readonly hash: Hash = createHash('sha256');
  private size = 0;
  private section: 'blobs' | 'tags' | 'manifests' = 'blobs';
  private lastBlob = '';
  private lastRepo: string | undefined;
  private lastTag = '';
  private lastManifest = '';
  private ended = false;
  private readonly counts = { blobs: 0, bytes: 0, repositories: 0, tags: 0, manifests: 0 };

  constructor(private readonly sink: InventorySink) {
    this.buf = `${INVENTORY_HEADER}\n`;
  }

  /** A blob of `size` bytes; blobs come first, by digest. */
  blob(d: Digest, size: number): void {
    if (this.section !== 'blobs' || !(d > this.lastBlob)) throw new Error(`inventory: blob ${d} out of order`);
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`inventory: blob ${d} has size ${size}`);
    this.lastBlob = d;
    this.counts.blobs++;
    this.counts.bytes += size;
    this.buf += `blob ${d} ${size}\n`;
  }

  /** A repository; its tags and manifests follow. Repositories come by name, in byte order. */
  repo(name: RepoName): void {
    if (this.lastRepo !== undefined && !(name > this.lastRepo)) throw new Error(`inventory: repository ${name} out of order`);
    this.lastRepo = name;
    this.section = 'tags';
    this.lastTag = '';
    this.lastManifest = '';
    this.counts.repositories++;
    this.buf += `repo ${name}\n`;
  }

  /** A tag of the current repository and the manifest it names; by tag, before its manifests. */
  tag(tag: Tag, d: Digest): void {
    if (this.section !== 'tags' || !(tag > this.lastTag)) throw new Error(`inventory: tag ${tag} out of order`);
    this.lastTag = tag;
    this.counts.tags++;
    this.buf += `tag ${this.lastRepo!} ${tag} ${d}\n`;
  }

  /** A manifest of the current repository; by digest, after its tags. */
  manifest(d: Digest): void {
    if (this.section === 'blobs' || !(d > this.lastManifest)) throw new Error(`inventory: manifest ${d} out of order`);
    this.section = 'manifests';
    this.lastManifest = d;
    this.counts.manifests++;
    this.buf += `manifest ${this.lastRepo!} ${d}\n`;
  }

  /** Pass the buffered lines to the sink once there are enough of them, and wait for it. */
  async drain(): Promise<void> {
    if (this.buf.length >= FLUSH_BYTES) await this.flush();
  }

  /** The last lines out; the identity and counts. */
  async end(): Promise<InventoryCounts> {
    if (this.ended) throw new Error('inventory: ended twice');
    this.ended = true;
    await this.flush();
    return { id: `sha256:${this.hash.digest('hex')}` as Digest, size: this.size, ...this.counts };
  }

  private async flush(): Promise<void> {
    if (this.buf === '') return;
    const chunk = Buffer.from(this.buf, 'utf8');
    this.buf = '';
    this.hash.update(chunk);
    this.size += chunk.length;
    await this.sink(chunk);
  }
}
