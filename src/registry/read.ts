/**
 * Reading registry storage, strictly and without changing it. Every link is parsed (a
 * malformed one is LINK_INVALID naming its path), every manifest is hashed against the
 * digest it was found under, and blob data must be a regular file. Symbolic links to data
 * and to directories are followed, as the registry follows them (./follow.ts). Manifests
 * and blob stats are cached by digest, since images share them.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { errnoCode, ioError, RegfsError } from '../errors.js';
import type { Digest } from '../digest.js';
import { parseManifest, type Manifest } from '../manifest.js';
import { isRepoName, isTag, type RepoName, type Tag } from '../reference.js';
import { blobDataPath, layerLinkPath, repoDir, revisionLinkPath, storageRoot, tagCurrentLinkPath, tagsDir, manifestsDir, repositoriesDir } from './layout.js';
import { directoryId, isDirectoryFollowing, listEntries, statData, type Entry } from './follow.js';
import { parseLinkContent, readLinkBytes } from './link-file.js';
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
 * Read access to one registry's storage. The reads are synchronous: each is a small file or
 * a stat, and a threadpool round trip for each costs more than the read (docs/performance.md);
 * callers that resolve thousands of images do it in chunks between which the event loop runs.
 */
export class RegistryReader {
  private readonly manifests = new Map<Digest, Manifest | RegfsError>();
  private readonly blobs = new Map<Digest, BlobInfo | undefined | RegfsError>();
  /**
   * `_layers` links read, by repository and digest (the images of a repository share
   * layers). Revision links are read once per image and not cached.
   */
  private readonly layerLinks = new Map<RepoName, Map<Digest, boolean | RegfsError>>();

  /** `v2` is the storage root, `<rootdirectory>/docker/registry/v2`. */
  constructor(readonly v2: string) {}

  /** Open a registry root (or its `docker/registry/v2`); NOT_REGISTRY if it is neither. */
  static async open(dir: string): Promise<RegistryReader> {
    const v2 = await findStorageRoot(dir);
    if (v2 === undefined) throw new RegfsError('NOT_REGISTRY', `"${dir}" is not registry storage: ${whyNotRegistry(dir)}`, { path: dir });
    return new RegistryReader(v2);
  }

  /** True if the repository exists: its directory holds `_manifests` (it has manifests and tags). */
  hasRepository(repo: RepoName): boolean {
    return isDirectoryFollowing(manifestsDir(this.v2, repo));
  }

  /** The digest a tag points at, or undefined if the tag does not exist. */
  tagDigest(repo: RepoName, tag: Tag): Digest | undefined {
    const path = tagCurrentLinkPath(this.v2, repo, tag);
    return parseLinkContent(readLinkBytes(path, { follow: true }), path);
  }

  /** The tags of a repository, sorted; names that are not valid tags are skipped. */
  listTags(repo: RepoName): Tag[] {
    const dir = tagsDir(this.v2, repo);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw ioError('listing tags in', dir, err);
    }
    return names.filter(isTag).sort();
  }

  /**
   * True if the repository has a revision link for the manifest. A link that names another
   * digest than its path is LINK_INVALID.
   */
  hasRevision(repo: RepoName, d: Digest): boolean {
    return this.linked(revisionLinkPath(this.v2, repo, d), d);
  }

  /**
   * Whether the repository holds a manifest, as the registry's manifest store looks it up
   * (2.x `linkedBlobStatter` with `manifestRevisionLinkPath`, then `blobLinkPath`): by its
   * revision link; failing that, by a `_layers` link (2.1.0 linked manifests there, and 2.8
   * still serves them so: storage-formats §3.3); undefined when neither exists, where the
   * registry answers 404 whatever the blob store holds. A malformed link is LINK_INVALID, as
   * the registry answers 500 for it.
   */
  manifestLink(repo: RepoName, d: Digest): 'revision' | 'layers' | undefined {
    if (this.hasRevision(repo, d)) return 'revision';
    return this.hasLayerLink(repo, d) ? 'layers' : undefined;
  }

  /**
   * True if the repository links the blob in `_layers`, which the registry needs before it
   * serves the blob from the repository (blob data alone is not enough). A link that names
   * another digest than its path is LINK_INVALID.
   */
  hasLayerLink(repo: RepoName, d: Digest): boolean {
    let links = this.layerLinks.get(repo);
    if (links === undefined) this.layerLinks.set(repo, (links = new Map()));
    let r = links.get(d);
    if (r === undefined) {
      r = capture(() => this.linked(layerLinkPath(this.v2, repo, d), d));
      links.set(d, r);
    }
    if (r instanceof RegfsError) throw r;
    return r;
  }

  /** Blob data for a digest: undefined if absent; BLOB_INVALID if it is not a regular file. Cached. */
  blobInfo(d: Digest): BlobInfo | undefined {
    let r = this.blobs.get(d);
    if (!this.blobs.has(d)) {
      r = capture(() => this.statBlob(d));
      this.blobs.set(d, r);
    }
    if (r instanceof RegfsError) throw r;
    return r;
  }

  /** A manifest by digest: its blob must exist and hash to the digest. Cached. */
  manifest(d: Digest): Manifest {
    let r = this.manifests.get(d);
    if (r === undefined) {
      r = capture(() => this.loadManifest(d));
      this.manifests.set(d, r);
    }
    if (r instanceof RegfsError) throw r;
    return r;
  }

  /**
   * A manifest whose blob data (`path`, within the size limit) the caller has read: checked
   * and parsed as manifest() would, and cached, so that it is not read again.
   */
  manifestFromBytes(d: Digest, raw: Buffer, path: string): Manifest {
    let r = this.manifests.get(d);
    if (r === undefined) {
      r = capture(() => parseManifest(raw, d, path));
      this.manifests.set(d, r);
    }
    if (r instanceof RegfsError) throw r;
    return r;
  }

  /** A manifest already read and cached (undefined if not, or if reading it failed): no I/O. */
  cachedManifest(d: Digest): Manifest | undefined {
    const r = this.manifests.get(d);
    return r instanceof RegfsError ? undefined : r;
  }

  /**
   * Every repository as the registry's catalog finds it (catalog.go): a directory holding
   * `_layers` (2.x) or `_manifests` (v3) is one, the walk goes on into its other
   * subdirectories (nested names), and directories starting with `_` are skipped. Names that
   * are not valid repository names cannot be served and are left out. In catalog order.
   */
  listRepositories(): RepoName[] {
    const root = repositoriesDir(this.v2);
    const out: RepoName[] = [];
    // Symbolic links to directories are followed as the registry follows them. A directory
    // that is its own ancestor (a symbolic link loop) is not entered again; one already
    // reached by another path (an alias) is listed, as the catalog lists it, but what is
    // below it is not walked a second time, so fanning links cannot make the walk exponential.
    const ancestors = new Set<string>();
    const seen = new Set<string>();
    const walk = (rel: string): void => {
      const dir = rel === '' ? root : `${root}/${rel}`;
      const id = directoryId(dir);
      if (ancestors.has(id)) return;
      const entries = listEntries(dir);
      if (rel !== '' && holdsRepository(entries) && isRepoName(rel)) out.push(rel);
      if (seen.has(id)) return;
      seen.add(id);
      ancestors.add(id);
      for (const e of entries) if (e.dir && !e.name.startsWith('_')) walk(rel === '' ? e.name : `${rel}/${e.name}`);
      ancestors.delete(id);
    };
    if (!isDirectoryFollowing(root)) return [];
    walk('');
    return out.sort(compareRepoNames);
  }

  /** Forget the cached manifests, blob stats and links (a large resolve holds many). */
  dropCaches(): void {
    this.manifests.clear();
    this.blobs.clear();
    this.layerLinks.clear();
  }

  /** The repository's directory (for messages). */
  repoPath(repo: RepoName): string {
    return repoDir(this.v2, repo);
  }

  /** True if the link at `path` exists and names `d`; LINK_INVALID if it names another digest. */
  private linked(path: string, d: Digest): boolean {
    const target = parseLinkContent(readLinkBytes(path, { follow: true }), path);
    if (target === undefined) return false;
    if (target !== d) throw new RegfsError('LINK_INVALID', `link "${path}" points at ${target}, not at the digest of its path`, { path, digest: d });
    return true;
  }

  private statBlob(d: Digest): BlobInfo | undefined {
    const path = blobDataPath(this.v2, d);
    const st = statData(path);
    if (st === undefined) return undefined;
    if (st.notRegular !== undefined) {
      throw new RegfsError('BLOB_INVALID', `blob data "${path}" is ${st.notRegular}; blob data must be a regular file (or a symbolic link to one)`, { path, digest: d });
    }
    return { path: st.path, size: st.size };
  }

  private loadManifest(d: Digest): Manifest {
    const info = this.blobInfo(d);
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
    let raw: Buffer;
    try {
      raw = readFileSync(info.path);
    } catch (err) {
      throw ioError('reading manifest', info.path, err);
    }
    return parseManifest(raw, d, info.path);
  }
}

/** The value of `f`, or the RegfsError it threw (cached like a value); anything else is rethrown. */
function capture<T>(f: () => T): T | RegfsError {
  try {
    return f();
  } catch (err) {
    if (err instanceof RegfsError) return err;
    throw err;
  }
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
