/**
 * Reading registry storage, strictly and without changing it. Every link is parsed (a
 * malformed one is LINK_INVALID naming its path), every manifest is hashed against the
 * digest it was found under, and blob data must be a regular file. Symbolic links to data
 * and to directories are followed, as the registry follows them (./follow.ts). Manifests
 * and blob stats are cached by digest, since images share them.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { errnoCode, ioError, RegfsError } from '../errors.js';
import type { Digest } from '../digest.js';
import { parseManifest, type Manifest } from '../manifest.js';
import { checkStorableName, isRepoName, isStorableName, isTag, type RepoName, type Tag } from '../reference.js';
import { blobDataPath, layerLinkPath, repoDir, revisionLinkPath, storageRoot, tagCurrentLinkPath, tagsDir, manifestsDir, repositoriesDir } from './layout.js';
import { isDirectoryFollowing, LOOPS, type Entry } from './follow.js';
import { linkContent, parseLinkContent } from './link-file.js';
import type { StorageDriver } from '../storage/driver.js';
import { fsStorage, isS3Root, openS3Root } from '../storage/open.js';
import { parseImageList } from '../image-list.js';
import { DIGEST_FILE, MANIFEST_FILE, VERSION_FILE } from '../dir/layout.js';
import { OCI_LAYOUT_FILE } from '../oci/layout.js';

/** The largest manifest the registry accepts (distribution's maxManifestBodySize, 4 MiB); regfs reads no larger one. */
export const MANIFEST_MAX_BYTES = 4 << 20;

/** Blob data found in storage. */
export interface BlobInfo {
  path: string;
  size: number;
}

/**
 * The `docker/registry/v2` directory of a registry root, or the directory itself when it is
 * already one (it holds `blobs/` or `repositories/`); undefined if neither. An OCI image
 * layout holds `blobs/` too, beside its `oci-layout` file, which registry storage never
 * holds: it is no registry storage.
 */
export async function findStorageRoot(dir: string): Promise<string | undefined> {
  const abs = resolve(dir);
  if (isDirectoryFollowing(storageRoot(abs))) return storageRoot(abs);
  if (isOciLayout(abs)) return undefined;
  if (isDirectoryFollowing(join(abs, 'repositories')) || isDirectoryFollowing(join(abs, 'blobs'))) return abs;
  return undefined;
}

function isOciLayout(dir: string): boolean {
  return isFileFollowing(join(dir, OCI_LAYOUT_FILE));
}

/** True if `path` is a regular file once symbolic links are followed. */
function isFileFollowing(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false })?.isFile() === true;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw ioError('reading', path, err);
  }
}


/**
 * What a path that is not registry storage is instead, when regfs can tell, and what reads
 * that: the common mistakes are an image list where the source goes (the arguments out of
 * order), an OCI image layout, and skopeo dir: images. Reads at most the first 64 KiB of a
 * regular file, nothing of any other.
 */
export function whyNotRegistry(dir: string): string {
  try {
    return describeNotRegistry(dir);
  } catch (err) {
    return `it cannot be read (${errnoCode(err) ?? String(err)})`;
  }
}

function describeNotRegistry(dir: string): string {
  const st = statSync(dir, { throwIfNoEntry: false });
  if (st === undefined) return 'no such directory';
  if (st.isFile()) {
    return readsAsImageList(dir)
      ? 'it is a file that reads as an image list; are the arguments in the wrong order? (regfs extract LIST SRC OUT, regfs to-dir LIST SRC OUT)'
      : 'it is a file, not a directory';
  }
  if (!st.isDirectory()) return 'it is not a directory';
  const has = (name: string): boolean => isFileFollowing(join(dir, name));
  if (isOciLayout(dir)) {
    return `it is an OCI image layout: import it into registry storage with "regfs from-oci ${dir} DEST"`;
  }
  if (has(VERSION_FILE) && has(MANIFEST_FILE)) return 'it is a skopeo dir: image directory: regfs from-dir imports it into registry storage (regfs from-dir DIR DEST --name REPO:TAG)';
  if (has(DIGEST_FILE)) return 'it is a tree of dir: images (regfs to-dir writes such): regfs from-dir imports it into registry storage';
  return 'it holds no docker/registry/v2 (nor blobs/ or repositories/)';
}

/** True if the start of a regular file parses as an image list: at least one image, no bad line. */
function readsAsImageList(path: string): boolean {
  const buf = Buffer.alloc(1 << 16);
  const fd = openSync(path, 'r');
  let n: number;
  try {
    n = readSync(fd, buf, 0, buf.length, 0);
  } finally {
    closeSync(fd);
  }
  let text = buf.subarray(0, n).toString('utf8');
  // A full buffer may end inside a line: judge the whole lines only.
  if (n === buf.length) text = text.slice(0, text.lastIndexOf('\n') + 1);
  const parsed = parseImageList(text, path);
  return parsed.entries.length > 0 && parsed.problems.length === 0;
}


/**
 * Read access to one registry's storage, through its StorageDriver (on disk or on S3). On
 * disk the driver's calls are synchronous underneath (a threadpool round trip per small read
 * costs more than the read: docs/performance.md); on S3 each is a request, and callers resolve
 * many images at once so that requests overlap. On S3 a repository's keys are listed once
 * when it is first read (`prefetch`), so that links are found, and checked by their size and
 * ETag, from that listing rather than by a request each.
 */
export class RegistryReader {
  private readonly manifests = new Map<Digest, Promise<Manifest | RegfsError>>();
  private readonly blobs = new Map<Digest, Promise<BlobInfo | undefined | RegfsError>>();
  /**
   * `_layers` links read, by repository and digest (the images of a repository share
   * layers).
   */
  private readonly layerLinks = new Map<RepoName, Map<Digest, LinkAnswer>>();
  /**
   * The revision links read last, by `repo@digest`, at most REVISIONS_REMEMBERED: a referrer
   * search reads a repository's revisions, then takes the referrers it found, whose links it
   * has just read; a walk of a repository of a million revisions holds no more than that.
   */
  private readonly revisionLinks = new Map<string, LinkAnswer>();
  /** Manifests read and checked, for cachedManifest. */
  private readonly loaded = new Map<Digest, Manifest>();
  private readonly prefetched = new Map<RepoName, Promise<void>>();
  /** `<rootdirectory>/docker/registry/v2` in the driver's namespace. */
  readonly v2: string;

  constructor(readonly driver: StorageDriver) {
    this.v2 = driver.v2;
  }

  /** Open a registry root (or its `docker/registry/v2`), on disk or `s3://`; NOT_REGISTRY if it is neither. */
  static async open(dir: string): Promise<RegistryReader> {
    return new RegistryReader(await openRegistryStorage(dir));
  }

  /** True if the repository exists: its directory holds `_manifests` (it has manifests and tags). */
  async hasRepository(repo: RepoName): Promise<boolean> {
    this.checkStorable(repo);
    await this.prefetch(repo);
    const path = manifestsDir(this.v2, repo);
    const st = await this.driver.stat(path);
    // A repository behind a symbolic link that loops cannot be read: an error, not "no such repository".
    if (st?.kind === 'other' && st.what === LOOPS) throw ioError('reading', path, Object.assign(new Error(LOOPS), { code: 'ELOOP' }));
    return st?.kind === 'directory';
  }

  /** The digest a tag points at, or undefined if the tag does not exist. */
  async tagDigest(repo: RepoName, tag: Tag): Promise<Digest | undefined> {
    this.checkStorable(repo);
    await this.prefetch(repo);
    const path = tagCurrentLinkPath(this.v2, repo, tag);
    return parseLinkContent(await linkContent(this.driver, path), path);
  }

  /** The tags of a repository, sorted; names that are not valid tags are skipped. */
  async listTags(repo: RepoName): Promise<Tag[]> {
    return (await this.listTagNames(repo)).filter(isTag);
  }

  /**
   * Every name in a repository's tags directory, sorted: what the registry's tag list gives,
   * names that no request can name (`-v1`, 129 characters) included.
   */
  async listTagNames(repo: RepoName): Promise<string[]> {
    await this.prefetch(repo);
    return (await this.driver.list(tagsDir(this.v2, repo))).map((e) => e.name).sort();
  }

  /**
   * True if the repository has a revision link for the manifest. A link that names another
   * digest than its path is LINK_INVALID.
   */
  async hasRevision(repo: RepoName, d: Digest): Promise<boolean> {
    return this.linkedOnce(this.revisionLinks, `${repo}@${d}`, repo, d, revisionLinkPath, REVISIONS_REMEMBERED);
  }

  /**
   * Whether the repository holds a manifest, as the registry's manifest store looks it up
   * (2.x `linkedBlobStatter` with `manifestRevisionLinkPath`, then `blobLinkPath`): by its
   * revision link; failing that, by a `_layers` link (2.1.0 linked manifests there, and 2.8
   * still serves them so: storage-formats §3.3); undefined when neither exists, where the
   * registry answers 404 whatever the blob store holds. A malformed link is LINK_INVALID, as
   * the registry answers 500 for it.
   */
  async manifestLink(repo: RepoName, d: Digest): Promise<'revision' | 'layers' | undefined> {
    if (await this.hasRevision(repo, d)) return 'revision';
    return (await this.hasLayerLink(repo, d)) ? 'layers' : undefined;
  }

  /**
   * True if the repository links the blob in `_layers`, which the registry needs before it
   * serves the blob from the repository (blob data alone is not enough). A link that names
   * another digest than its path is LINK_INVALID.
   */
  async hasLayerLink(repo: RepoName, d: Digest): Promise<boolean> {
    let links = this.layerLinks.get(repo);
    if (links === undefined) this.layerLinks.set(repo, (links = new Map()));
    return this.linkedOnce(links, d, repo, d, layerLinkPath);
  }

  /**
   * `linked` for the repository's link of `d` at `pathOf`, read once and remembered in `cache`
   * under `key` (at most `limit` entries): the read in flight,
   * then, settled, the answer itself (not the promise and its closure).
   */
  private async linkedOnce<K>(
    cache: Map<K, LinkAnswer>,
    key: K,
    repo: RepoName,
    d: Digest,
    pathOf: (v2: string, repo: RepoName, d: Digest) => string,
    limit = Infinity,
  ): Promise<boolean> {
    const known = cache.get(key);
    if (known !== undefined) return unwrap(await known);
    const reading = capture(async () => {
      await this.prefetch(repo);
      return this.linked(pathOf(this.v2, repo, d), d);
    });
    // A bounded cache starts again when full: what was read last is what is asked again.
    if (cache.size >= limit) cache.clear();
    cache.set(key, reading);
    const r = await reading;
    // Not put back into a cache emptied meanwhile (dropCaches, or the revision bound).
    if (cache.get(key) === reading) cache.set(key, r);
    return unwrap(r);
  }

  /** Blob data for a digest: undefined if absent; BLOB_INVALID if it is not a regular file. Cached. */
  async blobInfo(d: Digest): Promise<BlobInfo | undefined> {
    let r = this.blobs.get(d);
    if (r === undefined) {
      r = capture(() => this.statBlob(d));
      this.blobs.set(d, r);
    }
    return unwrap(await r);
  }

  /** A manifest by digest: its blob must exist and hash to the digest. Cached. */
  async manifest(d: Digest): Promise<Manifest> {
    let r = this.manifests.get(d);
    if (r === undefined) {
      r = capture(() => this.loadManifest(d));
      this.manifests.set(d, r);
    }
    const m = unwrap(await r);
    this.loaded.set(d, m);
    return m;
  }

  /**
   * A manifest whose blob data (`path`, within the size limit) the caller has read: checked
   * and parsed as manifest() would, and cached, so that it is not read again.
   */
  manifestFromBytes(d: Digest, raw: Buffer, path: string): Manifest {
    let m = this.loaded.get(d);
    if (m === undefined) {
      m = parseManifest(raw, d, path);
      this.loaded.set(d, m);
      this.manifests.set(d, Promise.resolve(m));
    }
    return m;
  }

  /** A manifest already read and cached (undefined if not, or if reading it failed): no I/O. */
  cachedManifest(d: Digest): Manifest | undefined {
    return this.loaded.get(d);
  }

  /**
   * Every repository as the registry's catalog finds it (catalog.go): a directory holding
   * `_layers` (2.x) or `_manifests` (v3) is one, the walk goes on into its other
   * subdirectories (nested names), and directories starting with `_` are skipped. Names that
   * are not valid repository names cannot be served and are left out. In catalog order.
   * On S3 the whole `repositories/` tree is listed once, and each repository's reads are
   * answered from that listing.
   */
  async listRepositories(): Promise<RepoName[]> {
    const root = repositoriesDir(this.v2);
    await this.driver.prefetch?.(root);
    const out: RepoName[] = [];
    // Symbolic links to directories are followed as the registry follows them. A directory
    // that is its own ancestor (a symbolic link loop) is not entered again; one already
    // reached by another path (an alias) is listed, as the catalog lists it, but what is
    // below it is not walked a second time, so fanning links cannot make the walk exponential.
    const ancestors = new Set<string>();
    const seen = new Set<string>();
    const walk = async (rel: string): Promise<void> => {
      const dir = rel === '' ? root : `${root}/${rel}`;
      const id = this.driver.directoryId?.(dir) ?? dir;
      if (ancestors.has(id)) return;
      const entries = await this.driver.list(dir);
      if (rel !== '' && holdsRepository(entries) && isRepoName(rel)) out.push(rel);
      if (seen.has(id)) return;
      seen.add(id);
      ancestors.add(id);
      for (const e of entries) if (e.dir && !e.name.startsWith('_')) await walk(rel === '' ? e.name : `${rel}/${e.name}`);
      ancestors.delete(id);
    };
    if ((await this.driver.stat(root))?.kind !== 'directory') return [];
    await walk('');
    return out.sort(compareRepoNames);
  }

  /** Forget the cached manifests, blob stats and links (a large resolve holds many). */
  dropCaches(): void {
    this.manifests.clear();
    this.loaded.clear();
    this.blobs.clear();
    this.layerLinks.clear();
    this.revisionLinks.clear();
  }

  /** The repository's directory (for messages). */
  repoPath(repo: RepoName): string {
    return repoDir(this.v2, repo);
  }

  /** NAME_INVALID for a repository the registry cannot store (checkStorableName); its path is made only then. */
  private checkStorable(repo: RepoName): void {
    if (!isStorableName(repo)) checkStorableName(repo, this.repoPath(repo));
  }

  /** On S3, list the repository's keys once (nothing on disk). */
  private prefetch(repo: RepoName): Promise<void> {
    const pre = this.driver.prefetch;
    if (pre === undefined) return Promise.resolve();
    let p = this.prefetched.get(repo);
    if (p === undefined) this.prefetched.set(repo, (p = pre.call(this.driver, repoDir(this.v2, repo))));
    return p;
  }

  /**
   * True if the link at `path` exists and names `d`; LINK_INVALID if it names another digest.
   * A driver that lists (S3) answers from the listing where it can: absent, or holding the
   * digest (its size and ETag, the MD5 of its bytes, are the digest's); else the link is read,
   * since one of the digest's length may name another digest, or nothing.
   */
  private async linked(path: string, d: Digest): Promise<boolean> {
    if (this.driver.listedSize?.(path) === false) return false;
    if (this.driver.listedHolds?.(path, d) === true) return true;
    const target = parseLinkContent(await linkContent(this.driver, path), path);
    if (target === undefined) return false;
    if (target !== d) throw new RegfsError('LINK_INVALID', `link "${path}" points at ${target}, not at the digest of its path`, { path, digest: d });
    return true;
  }

  private async statBlob(d: Digest): Promise<BlobInfo | undefined> {
    const path = blobDataPath(this.v2, d);
    const st = await this.driver.stat(path);
    if (st === undefined) return undefined;
    if (st.kind !== 'file') {
      const what = st.kind === 'directory' ? (st.what ?? 'a directory') : st.what;
      throw new RegfsError('BLOB_INVALID', `blob data "${path}" is ${what}; blob data must be a regular file (or a symbolic link to one)`, { path, digest: d });
    }
    return { path: st.real ?? path, size: st.size };
  }

  private async loadManifest(d: Digest): Promise<Manifest> {
    const info = await this.blobInfo(d);
    if (info === undefined) {
      throw new RegfsError('BLOB_UNKNOWN', `manifest ${d} has no blob data at "${blobDataPath(this.v2, d)}"`, {
        path: blobDataPath(this.v2, d),
        digest: d,
      });
    }
    if (info.size > MANIFEST_MAX_BYTES) {
      throw new RegfsError('MANIFEST_INVALID', `manifest ${d} at "${info.path}" is ${info.size} bytes, larger than the registry's ${MANIFEST_MAX_BYTES}-byte limit for a manifest`, {
        path: info.path,
        digest: d,
      });
    }
    const raw = await this.driver.getContent(info.path, MANIFEST_MAX_BYTES + 1);
    if (raw === undefined || !Buffer.isBuffer(raw)) {
      throw new RegfsError('BLOB_UNKNOWN', `manifest ${d} has no blob data at "${info.path}" (it went away while being read)`, { path: info.path, digest: d });
    }
    return parseManifest(raw, d, info.path);
  }
}

/**
 * The storage of a registry root: `s3://BUCKET/PREFIX`, or a directory (or its
 * `docker/registry/v2`); NOT_REGISTRY if it is neither.
 */
export async function openRegistryStorage(dir: string): Promise<StorageDriver> {
  if (isS3Root(dir)) {
    const driver = await openS3Root(dir);
    // Some key below the storage root, as the message says: an object named as the root
    // itself (the registry never reads one) does not hide the keys below it.
    if ((await driver.list(driver.v2)).length === 0) {
      throw new RegfsError('NOT_REGISTRY', `"${driver.location}" is not registry storage: no key starts with ${driver.v2}/ in the bucket`, { path: dir });
    }
    return driver;
  }
  const v2 = await findStorageRoot(dir);
  if (v2 === undefined) throw new RegfsError('NOT_REGISTRY', `"${dir}" is not registry storage: ${whyNotRegistry(dir)}`, { path: dir });
  return fsStorage(v2);
}

/** How many revision links a reader remembers (RegistryReader.revisionLinks). */
const REVISIONS_REMEMBERED = 4096;

/** A link looked up: true or false, the RegfsError reading it gave, or the read in flight. */
type LinkAnswer = boolean | RegfsError | Promise<boolean | RegfsError>;

/** The value of `f`, or the RegfsError it threw (cached like a value); anything else is rethrown. */
async function capture<T>(f: () => Promise<T>): Promise<T | RegfsError> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof RegfsError) return err;
    throw err;
  }
}

function unwrap<T>(r: T | RegfsError): T {
  if (r instanceof RegfsError) throw r;
  return r;
}

/**
 * True for the entries of a repository's directory: the 2.x catalog (and so 2.x's garbage
 * collector) takes `_layers` as the sign, v3 `_manifests`; either one makes a repository.
 */
export function holdsRepository(entries: Entry[]): boolean {
  return entries.some((e) => (e.name === '_layers' || e.name === '_manifests') && e.dir);
}

/**
 * The catalog's order: byte-wise, but `/` sorts before every other character, so a repository
 * is followed by the ones nested in it (distribution's `lessPath`).
 */
export function compareRepoNames(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i) === 0x2f ? 0 : a.charCodeAt(i);
    const y = b.charCodeAt(i) === 0x2f ? 0 : b.charCodeAt(i);
    if (x !== y) return x - y;
  }
  return a.length - b.length;
}
