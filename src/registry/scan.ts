/**
 * A full, read-only scan of registry storage, for the commands that look at everything
 * (verify, gc): every blob directory, and for every repository (found by the catalog's rule,
 * `holdsRepository`) every `_layers` link, revision link, tag and upload. Links are read
 * strictly; a problem is recorded with the entry, never thrown, so one bad file cannot stop
 * the scan. Temp files (regfs's, distribution v3.1's `*.tmp`) and regfs trash directories
 * are collected wherever they are.
 */
import { statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ioError, RegfsError } from '../errors.js';
import { DIGEST_ALGORITHMS, isDigest, type Digest } from '../digest.js';
import { isTempName } from '../fs/atomic.js';
import { isTag, isRepoName, type RepoName, type Tag } from '../reference.js';
import { blobsDir, repositoriesDir, TRASH_PREFIX } from './layout.js';
import { directoryId, isDirectoryFollowing, listEntries, statData } from './follow.js';
import { parseLinkContent, readLinkBytes } from './link-file.js';
import { holdsRepository } from './read.js';

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
  uploads: UploadEntry[];
}

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
  kind: 'temp' | 'empty' | 'misplaced-blob' | 'bad-repository-name' | 'bad-tag-name' | 'loop' | 'alias';
}

export interface StorageScan {
  v2: string;
  blobs: Map<Digest, BlobEntry>;
  repos: RepoScan[];
  strays: Stray[];
}


/**
 * Scan the storage root `v2`. The reads are synchronous (each a small file or a directory
 * listing, cheaper than a threadpool round trip: docs/performance.md).
 */
export async function scanStorage(v2: string): Promise<StorageScan> {
  const strays: Stray[] = [];
  const blobs = scanBlobs(v2, strays);
  const repos = scanRepositories(v2, strays);
  strays.sort((a, b) => a.path.localeCompare(b.path));
  return { v2, blobs, repos, strays };
}

function scanBlobs(v2: string, strays: Stray[]): Map<Digest, BlobEntry> {
  const out = new Map<Digest, BlobEntry>();
  const base = blobsDir(v2);
  for (const alg of listEntries(base)) {
    if (!alg.dir || !(alg.name in DIGEST_ALGORITHMS)) {
      if (isTempName(alg.name)) strays.push({ path: join(base, alg.name), kind: 'temp' });
      continue;
    }
    for (const fan of listEntries(join(base, alg.name))) {
      const fanDir = join(base, alg.name, fan.name);
      if (!fan.dir) {
        strays.push({ path: fanDir, kind: isTempName(fan.name) ? 'temp' : 'misplaced-blob' });
        continue;
      }
      for (const h of listEntries(fanDir)) {
        const dir = join(fanDir, h.name);
        const d = `${alg.name}:${h.name}`;
        if (!h.dir || !isDigest(d) || h.name.slice(0, 2) !== fan.name) {
          strays.push({ path: dir, kind: isTempName(h.name) ? 'temp' : 'misplaced-blob' });
          continue;
        }
        let data: BlobEntry['data'];
        const inside = listEntries(dir);
        if (inside.every((e) => isTempName(e.name))) {
          // Left by a write that failed or was killed before the data landed (empty, or only
          // a temp file): nothing can point at it.
          strays.push({ path: dir, kind: 'temp' });
          continue;
        }
        for (const e of inside) {
          if (e.name === 'data') {
            const st = statData(join(dir, 'data'));
            if (st !== undefined) data = { path: st.notRegular === undefined ? st.path : join(dir, 'data'), size: st.size, regular: st.notRegular === undefined, what: st.notRegular };
          } else if (isTempName(e.name)) strays.push({ path: join(dir, e.name), kind: 'temp' });
        }
        out.set(d, { digest: d, dir, data });
      }
    }
  }
  return out;
}

function scanRepositories(v2: string, strays: Stray[]): RepoScan[] {
  const root = repositoriesDir(v2);
  const repos: RepoScan[] = [];
  // Symbolic links to directories are followed, as the registry follows them. A directory
  // that is its own ancestor (a symbolic link loop) is recorded and not entered again; so is
  // one already reached by another path (an alias: two names for one directory, which a
  // delete through one name empties for both), so no directory is walked twice and a chain
  // of links that fan out cannot make the walk exponential.
  const ancestors = new Set<string>();
  const seen = new Set<string>();
  const enter = (dir: string, id = directoryId(dir)): 'loop' | 'alias' | undefined => {
    if (ancestors.has(id)) return 'loop';
    if (seen.has(id)) return 'alias';
    seen.add(id);
    return undefined;
  };
  const walk = (dir: string): void => {
    const id = directoryId(dir);
    const again = enter(dir, id);
    if (again !== undefined) {
      strays.push({ path: dir, kind: again });
      return;
    }
    ancestors.add(id);
    const list = listEntries(dir);
    if (dir !== root && holdsRepository(list)) {
      const name = relative(root, dir);
      if (isRepoName(name)) repos.push(scanRepo(name, dir, strays, enter));
      else strays.push({ path: dir, kind: 'bad-repository-name' });
    }
    for (const e of list) {
      if (e.dir && e.name.startsWith(TRASH_PREFIX)) strays.push({ path: join(dir, e.name), kind: 'temp' });
      else if (e.dir && !e.name.startsWith('_')) walk(join(dir, e.name));
      else if (isTempName(e.name)) strays.push({ path: join(dir, e.name), kind: 'temp' });
    }
    ancestors.delete(id);
  };
  if (!isDirectoryFollowing(root)) return repos;
  walk(root);
  return repos.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The directories of a repository whose content gc and rm delete by path: each must be this
 * repository's own, not reached through a symbolic link from another's (an alias).
 */
const REPO_PARTS = ['_manifests', '_manifests/revisions', '_manifests/tags', '_layers'];

function scanRepo(name: RepoName, dir: string, strays: Stray[], enter: (dir: string) => 'loop' | 'alias' | undefined): RepoScan {
  for (const part of REPO_PARTS) {
    const path = join(dir, part);
    if (!isDirectoryFollowing(path)) continue;
    const again = enter(path);
    if (again !== undefined) strays.push({ path, kind: again });
  }
  for (const base of ['_manifests/revisions', '_layers']) {
    for (const alg of listEntries(join(dir, base))) {
      if (!alg.dir) continue;
      const again = enter(join(dir, base, alg.name));
      if (again !== undefined) strays.push({ path: join(dir, base, alg.name), kind: again });
    }
  }
  const manifests = join(dir, '_manifests');
  return {
    name,
    dir,
    layers: scanLinks(join(dir, '_layers'), strays),
    revisions: scanLinks(join(manifests, 'revisions'), strays),
    tags: scanTags(join(manifests, 'tags'), strays),
    uploads: scanUploads(join(dir, '_uploads')),
  };
}

/** Every `<base>/<alg>/<hex>/link`; a `<hex>` directory without a link (left by a delete) is skipped. */
function scanLinks(base: string, strays: Stray[]): LinkEntry[] {
  const out: LinkEntry[] = [];
  for (const alg of listEntries(base)) {
    if (!alg.dir) {
      if (isTempName(alg.name)) strays.push({ path: join(base, alg.name), kind: 'temp' });
      continue;
    }
    for (const h of listEntries(join(base, alg.name))) {
      const named = `${alg.name}:${h.name}`;
      const dir = join(base, alg.name, h.name);
      if (!h.dir || !isDigest(named)) {
        if (isTempName(h.name)) strays.push({ path: dir, kind: 'temp' });
        continue;
      }
      const inside = listEntries(dir);
      // No link at all: the registry's own delete leaves such directories; gc removes them.
      if (inside.length === 0) strays.push({ path: dir, kind: 'empty' });
      for (const e of inside) {
        if (e.name === 'link') out.push(readLinkEntry(join(dir, 'link'), named));
        else if (isTempName(e.name)) strays.push({ path: join(dir, e.name), kind: 'temp' });
      }
    }
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

function readLinkEntry(path: string, named: Digest): LinkEntry {
  try {
    const bytes = readLinkBytes(path, { follow: true });
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

function scanTags(base: string, strays: Stray[]): TagEntry[] {
  const out: TagEntry[] = [];
  for (const e of listEntries(base)) {
    const dir = join(base, e.name);
    if (!e.dir) {
      if (isTempName(e.name)) strays.push({ path: dir, kind: 'temp' });
      continue;
    }
    if (!isTag(e.name)) {
      strays.push({ path: dir, kind: 'bad-tag-name' });
      continue;
    }
    const current = readCurrentLink(join(dir, 'current', 'link'));
    const index = scanLinks(join(dir, 'index'), strays);
    for (const t of listEntries(join(dir, 'current'))) if (isTempName(t.name)) strays.push({ path: join(dir, 'current', t.name), kind: 'temp' });
    out.push({ tag: e.name, dir, current, index });
  }
  return out.sort((a, b) => a.tag.localeCompare(b.tag));
}

function readCurrentLink(path: string): CurrentLink | undefined {
  try {
    const target = parseLinkContent(readLinkBytes(path, { follow: true }), path);
    return target === undefined ? undefined : { path, target, error: undefined };
  } catch (err) {
    return { path, target: undefined, error: err instanceof RegfsError ? err : ioError('reading link', path, err) };
  }
}

function scanUploads(base: string): UploadEntry[] {
  const out: UploadEntry[] = [];
  for (const e of listEntries(base)) {
    if (!e.dir) continue;
    const dir = join(base, e.name);
    let parsed = NaN;
    try {
      // Read as a link file is (small, never blocking on a FIFO): a timestamp of 30-odd bytes.
      parsed = Date.parse(readLinkBytes(join(dir, 'startedat'), { follow: true })?.toString('utf8').trim() ?? '');
    } catch {
      // no readable startedat: the directory's time says when
    }
    out.push({ dir, started: Number.isNaN(parsed) ? statSync(dir).mtime : new Date(parsed) });
  }
  return out;
}
