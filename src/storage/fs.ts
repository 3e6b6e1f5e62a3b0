/**
 * The filesystem implementation of the storage seam (./driver.ts): a thin layer over what
 * regfs already does on disk. Reads follow symbolic links as the registry does
 * (registry/follow.ts) and refuse a FIFO, socket or device without opening it
 * (registry/link-file.ts readRegularFile); writes go only into real directories of the output
 * (fs/atomic.ts OutputDirs) by temp file and rename; blobs are placed by the linker
 * (fs/link.ts: reflink, hard link or copy). The calls are synchronous underneath, as
 * everywhere in regfs's metadata I/O (docs/performance.md).
 */
import { createReadStream, createWriteStream, lstatSync, linkSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { ioError, RegfsError } from '../errors.js';
import { OutputDirs, tempPathFor, writeFileAtomicSync } from '../fs/atomic.js';
import { createLinker, landWithoutReplacing, type Linker, type PlaceOutcome } from '../fs/link.js';
import { aliasScore, directoryId, isDirectoryFollowing, listEntries, statData } from '../registry/follow.js';
import { readRegularFile } from '../registry/link-file.js';
import type { ChildEntry, Content, FileInfo, PlaceOptions, StorageDriver, WalkEntry } from './driver.js';

/** Files per page of `walk`. */
const WALK_PAGE = 1000;

export interface FsStorageOptions {
  /** How blobs from another directory are placed (default: a linker in `auto` mode). */
  linker?: Linker;
  /**
   * The directory writes are checked from (OutputDirs): where the user named the output, so
   * that the `docker/registry/v2` chain is checked too; by default `v2` itself.
   */
  outputRoot?: string;
  /** The output's checked directories, shared with the caller's other writes (instead of `outputRoot`). */
  dirs?: OutputDirs;
}

/** Registry storage in a directory; `v2` is `<rootdirectory>/docker/registry/v2`, absolute. */
export class FsStorage implements StorageDriver {
  readonly kind = 'filesystem';
  readonly location: string;
  private readonly linker: Linker;
  private readonly dirs: OutputDirs;

  constructor(
    readonly v2: string,
    opts: FsStorageOptions = {},
  ) {
    this.location = v2;
    this.linker = opts.linker ?? createLinker('auto');
    this.dirs = opts.dirs ?? new OutputDirs(opts.outputRoot ?? v2);
  }

  async getContent(path: string, maxBytes: number): Promise<Content | undefined> {
    return readRegularFile(path, maxBytes, 'reading', { follow: true });
  }

  async stat(path: string): Promise<FileInfo | undefined> {
    const st = statData(path);
    if (st === undefined) return undefined;
    if (st.notRegular === undefined) return st.path === path ? { kind: 'file', size: st.size } : { kind: 'file', size: st.size, real: st.path };
    // One lstat for a directory (a repository's `_manifests`), and a stat more through a link.
    if (st.dirMtime !== undefined) return { kind: 'directory', mtime: st.dirMtime, what: st.notRegular };
    return { kind: 'other', what: st.notRegular, size: st.size };
  }

  async list(dir: string): Promise<ChildEntry[]> {
    return listEntries(dir).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async *walk(prefix: string): AsyncIterable<WalkEntry[]> {
    // Symbolic links to directories are followed, as the registry follows them; a directory
    // that is its own ancestor (a loop) is not entered again. A page is handed out as soon as
    // it is full: the listing of a large tree is never held whole.
    const ancestors = new Set<string>();
    let page: WalkEntry[] = [];
    function* visit(dir: string): Generator<WalkEntry[]> {
      const id = directoryId(dir);
      if (ancestors.has(id)) return;
      ancestors.add(id);
      for (const e of listEntries(dir)) {
        const path = `${dir}/${e.name}`;
        if (e.dir) {
          yield* visit(path);
          continue;
        }
        const st = statData(path);
        if (st === undefined || st.notRegular !== undefined) continue;
        page.push({ path, size: st.size });
        if (page.length === WALK_PAGE) {
          yield page;
          page = [];
        }
      }
      ancestors.delete(id);
    }
    if (!isDirectoryFollowing(prefix)) return;
    yield* visit(prefix);
    if (page.length > 0) yield page;
  }

  async putContent(path: string, data: Uint8Array): Promise<void> {
    this.dirs.ensure(dirname(path), false);
    try {
      writeFileAtomicSync(path, data, { parentExists: true });
    } catch (err) {
      throw err instanceof RegfsError ? err : ioError('writing', path, err);
    }
  }

  async placeBlob(src: StorageDriver, srcPath: string, destPath: string, size: number, opts: PlaceOptions = {}): Promise<PlaceOutcome> {
    this.dirs.ensure(dirname(destPath), false);
    if (src instanceof FsStorage) {
      const st = statData(srcPath);
      if (st === undefined) throw new RegfsError('BLOB_UNKNOWN', `blob data "${srcPath}" does not exist`, { path: srcPath });
      if (st.notRegular !== undefined) throw new RegfsError('BLOB_INVALID', `blob data "${srcPath}" is ${st.notRegular}, not a regular file`, { path: srcPath });
      return this.linker.place(st.path, destPath, size);
    }
    // From another kind of storage: the bytes stream into a temp file beside the blob, which
    // lands without replacing (or replaces data of the wrong size).
    let existing: number | undefined;
    if (opts.absent !== true) {
      const st = statData(destPath);
      if (st !== undefined && st.notRegular === undefined && st.size === size) return 'exists';
      existing = st?.size;
    }
    const body = await src.reader(srcPath);
    if (body === undefined) throw new RegfsError('BLOB_UNKNOWN', `blob data "${srcPath}" does not exist in ${src.location}`, { path: srcPath });
    const tmp = tempPathFor(destPath);
    try {
      await pipeline(body, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
      const written = lstatSync(tmp).size;
      if (written !== size) throw new RegfsError('SIZE_INVALID', `blob data "${srcPath}" in ${src.location} is ${written} bytes, not ${size}`, { path: srcPath });
      if (existing !== undefined) {
        renameSync(tmp, destPath);
        return 'copied';
      }
      return landWithoutReplacing({ linkSync, renameSync, lstatSync }, tmp, destPath) ? 'copied' : 'exists';
    } catch (err) {
      throw err instanceof RegfsError ? err : ioError('placing blob data at', destPath, err);
    } finally {
      try {
        unlinkSync(tmp);
      } catch {
        // landed by rename, or never written
      }
    }
  }

  async reader(path: string): Promise<Readable | undefined> {
    const st = statData(path);
    if (st === undefined) return undefined;
    if (st.notRegular !== undefined) throw new RegfsError('BLOB_INVALID', `blob data "${path}" is ${st.notRegular}, not a regular file`, { path });
    return createReadStream(st.path);
  }

  directoryId(path: string): string {
    return directoryId(path);
  }

  aliasScore(path: string, root: string): number {
    return aliasScore(path, root);
  }

  async delete(path: string): Promise<void> {
    try {
      rmSync(path, { recursive: true, force: true });
    } catch (err) {
      throw ioError('deleting', path, err);
    }
  }
}
