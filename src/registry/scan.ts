/**
 * A full, read-only scan of registry storage, for the commands that look at everything
 * (verify, gc): every blob directory, and for every repository (found by the catalog's rule,
 * `holdsRepository`) every `_layers` link, revision link, tag and upload. Links are read
 * strictly; a problem is recorded with the entry, never thrown, so one bad file cannot stop
 * the scan. Temp files (regfs's, distribution v3.1's `*.tmp`) and regfs trash directories
 * are collected wherever they are.
 */
import { join, relative } from 'node:path';
import { ioError, RegfsError } from '../errors.js';
import { DIGEST_ALGORITHMS, isDigest, type Digest } from '../digest.js';
import { isTempName, TEMP_SUFFIX } from '../fs/atomic.js';
import { isStorableName, isTag, isRepoName, type RepoName, type Tag } from '../reference.js';
import { blobsDir, repositoriesDir, TRASH_PREFIX } from './layout.js';
import { linkContent, parseLinkContent } from './link-file.js';
import { holdsRepository } from './read.js';
import type { ChildEntry, StorageDriver } from '../storage/driver.js';

/** A link file: where it is, the digest its path names, the digest it holds (or why not). */
export interface LinkEntry {
  path: string;
  /** The digest of the `<alg>/<hex>` directory it sits in. */
  named: Digest;
  target: Digest | undefined;
  error: RegfsError | undefined;
}

/** A tag's `current/link`: only its syntax can be wrong, since no digest names its path. */
export interface CurrentLink {
  path: string;
  target: Digest | undefined;
  error: RegfsError | undefined;
}

export interface TagEntry {
  tag: Tag;
  dir: string;
  /** Undefined if the tag directory has no `current/link`. */
  current: CurrentLink | undefined;
  index: LinkEntry[];
}

export interface UploadEntry {
  dir: string;
  /** From `startedat`, else the directory's modification time. */
  started: Date;
}

export interface RepoScan {
  name: RepoName;
  dir: string;
  layers: LinkEntry[];
  revisions: LinkEntry[];
  tags: TagEntry[];
  /**
   * Directories under `_manifests/tags/` whose names are no tags (`-v2`, 129 characters; each
   * is also a `bad-tag-name` stray): the registry lists them as tags all the same, and its
   * garbage collector keeps what their `current/link` names.
   */
  otherTags: OtherTagEntry[];
  uploads: UploadEntry[];
}

/** A directory under `_manifests/tags/` whose name is no tag, as read. */
export type OtherTagEntry = Omit<TagEntry, 'tag'> & { name: string };

export interface BlobEntry {
  digest: Digest;
  /** `blobs/<alg>/<xx>/<hex>` */
  dir: string;
  /** The `data` file (symbolic links followed: `path` is then the real file); undefined if the directory has none. */
  data: { path: string; size: number; regular: boolean; what: string | undefined } | undefined;
}

/** Something in the tree that is not where or what it should be. */
export interface Stray {
  path: string;
  kind: 'temp' | 'empty' | 'misplaced-blob' | 'blob-extra' | 'link-extra' | 'bad-repository-name' | 'bad-tag-name' | 'tag-not-directory' | 'not-directory' | 'loop' | 'alias';
}

export interface StorageScan {
  v2: string;
  blobs: Map<Digest, BlobEntry>;
  repos: RepoScan[];
  strays: Stray[];
}

export interface ScanOptions {
  /** Read every link, also one whose listing proves its content (verify --deep on S3). */
  readLinks?: boolean;
}

/**
 * Scan a storage root through its driver. On disk the reads are synchronous underneath (each
 * a small file or a directory listing, cheaper than a threadpool round trip:
 * docs/performance.md); on S3 the whole root is listed once (one request per 1,000 keys) and
 * the scan answered from that listing, links checked by their size and ETag there (verify
 * --deep reads them), tags' `current/link` read by a request each.
 */
export async function scanStorage(driver: StorageDriver, opts: ScanOptions = {}): Promise<StorageScan> {
  const { v2 } = driver;
  await driver.prefetch?.(v2);
  const strays: Stray[] = [];
  const blobs = await scanBlobs(driver, strays);
  const repos = await scanRepositories(driver, strays, opts.readLinks === true);
  strays.sort((a, b) => a.path.localeCompare(b.path));
  return { v2, blobs, repos, strays };
}

async function scanBlobs(driver: StorageDriver, strays: Stray[]): Promise<Map<Digest, BlobEntry>> {
  const out = new Map<Digest, BlobEntry>();
  const base = blobsDir(driver.v2);
  const listEntries = (dir: string) => driver.list(dir);
  for (const alg of await listEntries(base)) {
    if (!alg.dir || !(alg.name in DIGEST_ALGORITHMS)) {
      // A directory of regfs's own temp name here is the staging directory of an import (from-oci, apply).
      strays.push({ path: join(base, alg.name), kind: isTempFile(alg) || (alg.dir && alg.name.endsWith(TEMP_SUFFIX)) ? 'temp' : 'misplaced-blob' });
      continue;
    }
    for (const fan of await listEntries(join(base, alg.name))) {
      const fanDir = join(base, alg.name, fan.name);
      if (!fan.dir) {
        strays.push({ path: fanDir, kind: isTempFile(fan) ? 'temp' : 'misplaced-blob' });
        continue;
      }
      for (const h of await listEntries(fanDir)) {
        const dir = join(fanDir, h.name);
        const d = `${alg.name}:${h.name}`;
        if (!h.dir || !isDigest(d) || h.name.slice(0, 2) !== fan.name) {
          strays.push({ path: dir, kind: isTempFile(h) ? 'temp' : 'misplaced-blob' });
          continue;
        }
        let data: BlobEntry['data'];
        const inside = await listEntries(dir);
        if (inside.every(isTempFile)) {
          // Left by a write that failed or was killed before the data landed (empty, or only
          // a temp file): nothing can point at it.
          strays.push({ path: dir, kind: 'temp' });
          continue;
        }
        for (const e of inside) {
          if (e.name === 'data') {
            const path = join(dir, 'data');
            const st = await driver.stat(path);
            if (st?.kind === 'file') data = { path: st.real ?? path, size: st.size, regular: true, what: undefined };
            else if (st !== undefined) data = { path, size: st.kind === 'other' ? (st.size ?? 0) : 0, regular: false, what: st.kind === 'directory' ? (st.what ?? 'a directory') : st.what };
          } else strays.push({ path: join(dir, e.name), kind: isTempFile(e) ? 'temp' : 'blob-extra' });
        }
        out.set(d, { digest: d, dir, data });
      }
    }
  }
  return out;
}

async function scanRepositories(driver: StorageDriver, strays: Stray[], readLinks: boolean): Promise<RepoScan[]> {
  const root = repositoriesDir(driver.v2);
  const repos: RepoScan[] = [];
  // Symbolic links to directories are followed, as the registry follows them. A directory
  // that is its own ancestor (a symbolic link loop) is recorded and not entered again; so is
  // one already reached by another path (an alias: two names for one directory, which a
  // delete through one name empties for both), so no directory is walked twice and a chain
  // of links that fan out cannot make the walk exponential.
  const ancestors = new Set<string>();
  /** The path each directory was first reached by. */
  const seen = new Map<string, string>();
  const directoryId = (dir: string): string => driver.directoryId?.(dir) ?? dir;
  // Which of two names of one directory is the alias (a link out of the tree, to another
  // disk, is the directory's own name; a link through another name in the tree, or more links
  // than the other name goes through, is not).
  const score = (dir: string): number => driver.aliasScore?.(dir, root) ?? 0;
  /**
   * A loop, or an alias: then the path it is reported at is the one more likely the second
   * name (what to remove), whichever of the two the walk reached first.
   */
  const enter = (dir: string, id = directoryId(dir)): Stray | undefined => {
    if (ancestors.has(id)) return { path: dir, kind: 'loop' };
    const first = seen.get(id);
    if (first !== undefined) return { path: score(first) > score(dir) ? first : dir, kind: 'alias' };
    seen.set(id, dir);
    return undefined;
  };
  const walk = async (dir: string): Promise<void> => {
    const id = directoryId(dir);
    const again = enter(dir, id);
    if (again !== undefined) {
      strays.push(again);
      return;
    }
    ancestors.add(id);
    const list = await driver.list(dir);
    if (dir !== root && holdsRepository(list)) {
      const name = relative(root, dir);
      // A name the registry cannot store (a :port) is refused as its storage driver refuses it.
      if (isRepoName(name) && isStorableName(name)) repos.push(await scanRepo(driver, name, dir, strays, enter, readLinks));
      else strays.push({ path: dir, kind: 'bad-repository-name' });
    }
    for (const e of list) {
      if (e.dir && e.name.startsWith(TRASH_PREFIX)) strays.push({ path: join(dir, e.name), kind: 'temp' });
      else if (e.dir && !e.name.startsWith('_')) await walk(join(dir, e.name));
      else if (isTempFile(e)) strays.push({ path: join(dir, e.name), kind: 'temp' });
    }
    ancestors.delete(id);
  };
  if ((await driver.stat(root))?.kind !== 'directory') return repos;
  await walk(root);
  return repos.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Every name the registry's walk of `repositories/` reaches each directory by (by its id: on
 * disk, device and inode): the namespaces and repositories, and each repository's
 * `_manifests`, `revisions`, `tags`, `_layers`, their `<alg>` directories, and each tag's and
 * revision's own directory. A directory with two names (an alias, or a link back to an
 * ancestor) has both. rm checks with it that what it deletes is reached by no other name. A
 * directory that cannot be read (a link that loops, no permission) is passed over: the
 * registry cannot walk it either, and it holds no name of what rm deletes elsewhere.
 */
export async function directoryNames(driver: StorageDriver): Promise<Map<string, string[]>> {
  const root = repositoriesDir(driver.v2);
  const names = new Map<string, string[]>();
  const ancestors = new Set<string>();
  const idOf = (dir: string): string | undefined => {
    try {
      return driver.directoryId?.(dir) ?? dir;
    } catch {
      return undefined;
    }
  };
  const children = async (dir: string): Promise<ChildEntry[]> => driver.list(dir).catch(() => []);
  /** Record a name; true the first time the directory is named. */
  const note = (dir: string, id: string): boolean => {
    const known = names.get(id);
    if (known === undefined) names.set(id, [dir]);
    else known.push(dir);
    return known === undefined;
  };
  const noteDir = (dir: string): void => {
    const id = idOf(dir);
    if (id !== undefined) note(dir, id);
  };
  const walk = async (dir: string): Promise<void> => {
    const id = idOf(dir);
    if (id === undefined) return;
    if (ancestors.has(id)) {
      note(dir, id);
      return;
    }
    if (!note(dir, id)) return;
    ancestors.add(id);
    const list = await children(dir);
    if (dir !== root && holdsRepository(list)) {
      for (const part of REPO_PARTS) {
        const path = join(dir, part);
        if ((await driver.stat(path).catch(() => undefined))?.kind === 'directory') noteDir(path);
      }
      for (const base of ['_manifests/revisions', '_layers']) {
        for (const alg of await children(join(dir, base))) {
          if (!alg.dir) continue;
          noteDir(join(dir, base, alg.name));
          if (base === '_manifests/revisions') for (const h of await children(join(dir, base, alg.name))) if (h.dir) noteDir(join(dir, base, alg.name, h.name));
        }
      }
      for (const t of await children(join(dir, '_manifests', 'tags'))) if (t.dir) noteDir(join(dir, '_manifests', 'tags', t.name));
    }
    for (const e of list) if (e.dir && !e.name.startsWith('_')) await walk(join(dir, e.name));
    ancestors.delete(id);
  };
  if ((await driver.stat(root).catch(() => undefined))?.kind === 'directory') await walk(root);
  return names;
}

/**
 * The directories of a repository whose content gc and rm delete by path: each must be this
 * repository's own, not reached through a symbolic link from another's (an alias).
 */
const REPO_PARTS = ['_manifests', '_manifests/revisions', '_manifests/tags', '_layers'];

async function scanRepo(driver: StorageDriver, name: RepoName, dir: string, strays: Stray[], enter: (dir: string) => Stray | undefined, readLinks: boolean): Promise<RepoScan> {
  for (const part of REPO_PARTS) {
    const path = join(dir, part);
    const kind = (await driver.stat(path))?.kind;
    // On disk a file here: the registry answers 500 for what is below it, and its
    // garbage-collect stops. (On S3 a key of that name beside the prefix hides nothing below.)
    if (kind !== undefined && kind !== 'directory' && driver.kind === 'filesystem') strays.push({ path, kind: 'not-directory' });
    if (kind !== 'directory') continue;
    const again = enter(path);
    if (again !== undefined) strays.push(again);
  }
  for (const base of ['_manifests/revisions', '_layers']) {
    for (const alg of await driver.list(join(dir, base))) {
      if (!alg.dir) continue;
      const again = enter(join(dir, base, alg.name));
      if (again !== undefined) strays.push(again);
    }
  }
  const manifests = join(dir, '_manifests');
  return {
    name,
    dir,
    layers: await scanLinks(driver, join(dir, '_layers'), strays, readLinks),
    revisions: await scanLinks(driver, join(manifests, 'revisions'), strays, readLinks),
    ...(await scanTags(driver, join(manifests, 'tags'), strays, readLinks)),
    uploads: await scanUploads(driver, join(dir, '_uploads')),
  };
}

/** Every `<base>/<alg>/<hex>/link`; a `<hex>` directory without a link (left by a delete) is skipped. */
async function scanLinks(driver: StorageDriver, base: string, strays: Stray[], readLinks: boolean): Promise<LinkEntry[]> {
  const out: LinkEntry[] = [];
  const reads: Array<Promise<LinkEntry>> = [];
  for (const alg of await driver.list(base)) {
    if (!alg.dir) {
      if (isTempFile(alg)) strays.push({ path: join(base, alg.name), kind: 'temp' });
      continue;
    }
    for (const h of await driver.list(join(base, alg.name))) {
      const named = `${alg.name}:${h.name}`;
      const dir = join(base, alg.name, h.name);
      if (!h.dir || !isDigest(named)) {
        if (isTempFile(h)) strays.push({ path: dir, kind: 'temp' });
        continue;
      }
      const inside = await driver.list(dir);
      // No link at all: the registry's own delete leaves such directories; gc removes them.
      if (inside.length === 0) strays.push({ path: dir, kind: 'empty' });
      for (const e of inside) {
        if (e.name === 'link') reads.push(readLinkEntry(driver, join(dir, 'link'), named, readLinks));
        else strays.push({ path: join(dir, e.name), kind: isTempFile(e) ? 'temp' : 'link-extra' });
      }
    }
  }
  for (const e of await Promise.all(reads)) out.push(e);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * A link, checked; on a driver that lists (S3), a link the listing proves holds its digest
 * (size and ETag) is taken from the listing unless `read`.
 */
async function readLinkEntry(driver: StorageDriver, path: string, named: Digest, read: boolean): Promise<LinkEntry> {
  if (!read && driver.listedHolds?.(path, named) === true) return { path, named, target: named, error: undefined };
  try {
    const bytes = await linkContent(driver, path);
    if (bytes === undefined) throw new RegfsError('LINK_INVALID', `link "${path}" vanished while it was read`, { path });
    const target = parseLinkContent(bytes, path);
    if (target !== named) {
      return { path, named, target, error: new RegfsError('LINK_INVALID', `link "${path}" holds ${target}, not the digest of its path`, { path, digest: named }) };
    }
    return { path, named, target, error: undefined };
  } catch (err) {
    const e = err instanceof RegfsError ? err : ioError('reading link', path, err);
    return { path, named, target: undefined, error: e };
  }
}

async function scanTags(driver: StorageDriver, base: string, strays: Stray[], readLinks: boolean): Promise<{ tags: TagEntry[]; otherTags: OtherTagEntry[] }> {
  const tags: TagEntry[] = [];
  const otherTags: OtherTagEntry[] = [];
  for (const e of await driver.list(base)) {
    const dir = join(base, e.name);
    if (!e.dir) {
      // On disk a file here is a tag to the registry, one it answers 500 for (its
      // garbage-collect stops on it); on S3 a key here is a tag without a current/link, which
      // the registry passes over.
      if (isTempFile(e)) strays.push({ path: dir, kind: 'temp' });
      else if (driver.kind === 'filesystem') strays.push({ path: dir, kind: 'tag-not-directory' });
      continue;
    }
    const [current, index, inCurrent] = await Promise.all([readCurrentLink(driver, join(dir, 'current', 'link')), scanLinks(driver, join(dir, 'index'), strays, readLinks), driver.list(join(dir, 'current'))]);
    if (!isTag(e.name)) {
      strays.push({ path: dir, kind: 'bad-tag-name' });
      otherTags.push({ name: e.name, dir, current, index });
      continue;
    }
    for (const t of inCurrent) if (t.name !== 'link') strays.push({ path: join(dir, 'current', t.name), kind: isTempFile(t) ? 'temp' : 'link-extra' });
    tags.push({ tag: e.name, dir, current, index });
  }
  return { tags: tags.sort((a, b) => a.tag.localeCompare(b.tag)), otherTags };
}

/** When a directory was last changed (on S3, where it has no time of its own: the newest key below it). */
async function modified(driver: StorageDriver, dir: string): Promise<Date> {
  const st = await driver.stat(dir);
  if (st?.kind === 'directory' && st.mtime !== undefined) return st.mtime;
  let newest = 0;
  for await (const page of driver.walk(dir)) for (const f of page) newest = Math.max(newest, f.mtime?.getTime() ?? 0);
  return new Date(newest);
}

async function readCurrentLink(driver: StorageDriver, path: string): Promise<CurrentLink | undefined> {
  try {
    const target = parseLinkContent(await linkContent(driver, path), path);
    return target === undefined ? undefined : { path, target, error: undefined };
  } catch (err) {
    return { path, target: undefined, error: err instanceof RegfsError ? err : ioError('reading link', path, err) };
  }
}

async function scanUploads(driver: StorageDriver, base: string): Promise<UploadEntry[]> {
  const out: UploadEntry[] = [];
  for (const e of await driver.list(base)) {
    if (!e.dir) continue;
    const dir = join(base, e.name);
    let parsed = NaN;
    try {
      // Read as a link file is (small, never blocking on a FIFO): a timestamp of 30-odd bytes.
      const bytes = await driver.getContent(join(dir, 'startedat'), 200);
      parsed = Date.parse(Buffer.isBuffer(bytes) ? bytes.toString('utf8').trim() : '');
    } catch {
      // no readable startedat: the directory's time says when
    }
    out.push({ dir, started: Number.isNaN(parsed) ? await modified(driver, dir) : new Date(parsed) });
  }
  return out;
}

/**
 * A temp file of an interrupted write: regfs's, or distribution v3.1's (`<name>.<uuid>.tmp`).
 * Both write only files under those names, but for regfs's staging directories directly under
 * `blobs/`: a directory so named elsewhere is someone's, and stays.
 */
function isTempFile(e: ChildEntry): boolean {
  return !e.dir && isTempName(e.name);
}
