/**
 * A full, read-only scan of registry storage, for the commands that look at everything
 * (verify, gc): every blob directory, and for every repository (found by the catalog's rule,
 * `holdsRepository`) every `_layers` link, revision link, tag and upload. Links are read
 * strictly; a problem is recorded with the entry, never thrown, so one bad file cannot stop
 * the scan. Temp files (regfs's, distribution v3.1's `*.tmp`) and regfs trash directories
 * are collected wherever they are.
 */
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import pLimit from 'p-limit';
import { errnoCode, ioError, RegfsError } from '../errors.js';
import { DIGEST_ALGORITHMS, isDigest, type Digest } from '../digest.js';
import { isTempName } from '../fs/atomic.js';
import { isTag, isRepoName, type RepoName, type Tag } from '../reference.js';
import { blobsDir, repositoriesDir, TRASH_PREFIX } from './layout.js';
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
  /** The `data` file; undefined if the directory has none. */
  data: { path: string; size: number; regular: boolean } | undefined;
}

/** Something in the tree that is not where or what it should be. */
export interface Stray {
  path: string;
  kind: 'temp' | 'misplaced-blob' | 'bad-repository-name' | 'bad-tag-name';
}

export interface StorageScan {
  v2: string;
  blobs: Map<Digest, BlobEntry>;
  repos: RepoScan[];
  strays: Stray[];
}


/** Scan the storage root `v2`. */
export async function scanStorage(v2: string, opts: { jobs?: number } = {}): Promise<StorageScan> {
  const limit = pLimit(opts.jobs ?? 16);
  const strays: Stray[] = [];
  const [blobs, repos] = await Promise.all([scanBlobs(v2, strays, limit), scanRepositories(v2, strays, limit)]);
  strays.sort((a, b) => a.path.localeCompare(b.path));
  return { v2, blobs, repos, strays };
}

type Limit = ReturnType<typeof pLimit>;

async function entries(dir: string): Promise<import('node:fs').Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw ioError('reading', dir, err);
  }
}

async function scanBlobs(v2: string, strays: Stray[], limit: Limit): Promise<Map<Digest, BlobEntry>> {
  const out = new Map<Digest, BlobEntry>();
  const base = blobsDir(v2);
  const work: Array<Promise<void>> = [];
  for (const alg of await entries(base)) {
    if (!alg.isDirectory() || !(alg.name in DIGEST_ALGORITHMS)) {
      if (isTempName(alg.name)) strays.push({ path: join(base, alg.name), kind: 'temp' });
      continue;
    }
    for (const fan of await entries(join(base, alg.name))) {
      const fanDir = join(base, alg.name, fan.name);
      if (!fan.isDirectory()) {
        strays.push({ path: fanDir, kind: isTempName(fan.name) ? 'temp' : 'misplaced-blob' });
        continue;
      }
      for (const h of await entries(fanDir)) {
        const dir = join(fanDir, h.name);
        const d = `${alg.name}:${h.name}`;
        if (!h.isDirectory() || !isDigest(d) || h.name.slice(0, 2) !== fan.name) {
          strays.push({ path: dir, kind: isTempName(h.name) ? 'temp' : 'misplaced-blob' });
          continue;
        }
        work.push(
          limit(async () => {
            let data: BlobEntry['data'];
            for (const e of await entries(dir)) {
              if (e.name === 'data') {
                const st = await lstat(join(dir, 'data'));
                data = { path: join(dir, 'data'), size: st.size, regular: st.isFile() };
              } else if (isTempName(e.name)) strays.push({ path: join(dir, e.name), kind: 'temp' });
            }
            out.set(d, { digest: d, dir, data });
          }),
        );
      }
    }
  }
  await Promise.all(work);
  return out;
}

async function scanRepositories(v2: string, strays: Stray[], limit: Limit): Promise<RepoScan[]> {
  const root = repositoriesDir(v2);
  const repos: RepoScan[] = [];
  const work: Array<Promise<void>> = [];
  const walk = async (dir: string): Promise<void> => {
    const list = await entries(dir);
    if (dir !== root && holdsRepository(list)) {
      const name = relative(root, dir);
      if (isRepoName(name)) work.push(scanRepo(name, dir, strays, limit).then((r) => void repos.push(r)));
      else strays.push({ path: dir, kind: 'bad-repository-name' });
    }
    for (const e of list) {
      if (e.isDirectory() && e.name.startsWith(TRASH_PREFIX)) strays.push({ path: join(dir, e.name), kind: 'temp' });
      else if (e.isDirectory() && !e.name.startsWith('_')) await walk(join(dir, e.name));
      else if (isTempName(e.name)) strays.push({ path: join(dir, e.name), kind: 'temp' });
    }
  };
  await walk(root);
  await Promise.all(work);
  return repos.sort((a, b) => a.name.localeCompare(b.name));
}

async function scanRepo(name: RepoName, dir: string, strays: Stray[], limit: Limit): Promise<RepoScan> {
  const manifests = join(dir, '_manifests');
  const [layers, revisions, tags, uploads] = await Promise.all([
    scanLinks(join(dir, '_layers'), strays, limit),
    scanLinks(join(manifests, 'revisions'), strays, limit),
    scanTags(join(manifests, 'tags'), strays, limit),
    scanUploads(join(dir, '_uploads')),
  ]);
  return { name, dir, layers, revisions, tags, uploads };
}

/** Every `<base>/<alg>/<hex>/link`; a `<hex>` directory without a link (left by a delete) is skipped. */
async function scanLinks(base: string, strays: Stray[], limit: Limit): Promise<LinkEntry[]> {
  const out: LinkEntry[] = [];
  const work: Array<Promise<void>> = [];
  for (const alg of await entries(base)) {
    if (!alg.isDirectory()) {
      if (isTempName(alg.name)) strays.push({ path: join(base, alg.name), kind: 'temp' });
      continue;
    }
    for (const h of await entries(join(base, alg.name))) {
      const named = `${alg.name}:${h.name}`;
      const dir = join(base, alg.name, h.name);
      if (!h.isDirectory() || !isDigest(named)) {
        if (isTempName(h.name)) strays.push({ path: dir, kind: 'temp' });
        continue;
      }
      work.push(
        limit(async () => {
          for (const e of await entries(dir)) {
            if (e.name === 'link') out.push(await readLinkEntry(join(dir, 'link'), named));
            else if (isTempName(e.name)) strays.push({ path: join(dir, e.name), kind: 'temp' });
          }
        }),
      );
    }
  }
  await Promise.all(work);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

async function readLinkEntry(path: string, named: Digest): Promise<LinkEntry> {
  try {
    const bytes = await readLinkBytes(path);
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

async function scanTags(base: string, strays: Stray[], limit: Limit): Promise<TagEntry[]> {
  const out: TagEntry[] = [];
  await Promise.all(
    (await entries(base)).map(async (e) => {
      const dir = join(base, e.name);
      if (!e.isDirectory()) {
        if (isTempName(e.name)) strays.push({ path: dir, kind: 'temp' });
        return;
      }
      if (!isTag(e.name)) {
        strays.push({ path: dir, kind: 'bad-tag-name' });
        return;
      }
      const currentPath = join(dir, 'current', 'link');
      const [current, index] = await Promise.all([
        limit(() => readCurrentLink(currentPath)),
        scanLinks(join(dir, 'index'), strays, limit),
      ]);
      for (const t of await entries(join(dir, 'current'))) if (isTempName(t.name)) strays.push({ path: join(dir, 'current', t.name), kind: 'temp' });
      out.push({ tag: e.name, dir, current, index });
    }),
  );
  return out.sort((a, b) => a.tag.localeCompare(b.tag));
}

async function readCurrentLink(path: string): Promise<CurrentLink | undefined> {
  try {
    const target = parseLinkContent(await readLinkBytes(path), path);
    return target === undefined ? undefined : { path, target, error: undefined };
  } catch (err) {
    return { path, target: undefined, error: err instanceof RegfsError ? err : ioError('reading link', path, err) };
  }
}

async function scanUploads(base: string): Promise<UploadEntry[]> {
  const out: UploadEntry[] = [];
  for (const e of await entries(base)) {
    if (!e.isDirectory()) continue;
    const dir = join(base, e.name);
    const startedAt = await readFile(join(dir, 'startedat'), 'utf8').catch(() => undefined);
    const parsed = startedAt === undefined ? NaN : Date.parse(startedAt.trim());
    out.push({ dir, started: Number.isNaN(parsed) ? (await stat(dir)).mtime : new Date(parsed) });
  }
  return out;
}
