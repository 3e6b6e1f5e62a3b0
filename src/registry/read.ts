/**
 * Reading registry storage, strictly and without changing it. Every link is parsed (a
 * malformed one is LINK_INVALID naming its path), every manifest is hashed against the
 * digest it was found under, and blob data must be a regular file (a symlink could lead out
 * of the tree). Manifests and blob stats are cached by digest, since images share them.
 */
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { errnoCode, ioError, RegfsError } from '../errors.js';
import type { Digest } from '../digest.js';
import { parseManifest, type Manifest } from '../manifest.js';
import { isRepoName, isTag, type RepoName, type Tag } from '../reference.js';
import { blobDataPath, repoDir, revisionLinkPath, storageRoot, tagCurrentLinkPath, tagsDir, manifestsDir, repositoriesDir } from './layout.js';
import { readLink } from './link-file.js';

/** The largest manifest the registry accepts (distribution's maxManifestBodySize, 4 MiB); regfs reads no larger one. */
export const MANIFEST_MAX_BYTES = 4 << 20;

/** Blob data found in storage. */
export interface BlobInfo {
  path: string;
  size: number;
}

/**
 * The `docker/registry/v2` directory of a registry root, or the directory itself when it is
 * already one (it holds `blobs/` or `repositories/`); undefined if neither.
 */
export async function findStorageRoot(dir: string): Promise<string | undefined> {
  const abs = resolve(dir);
  if (await isDirectory(storageRoot(abs))) return storageRoot(abs);
  if ((await isDirectory(join(abs, 'repositories'))) || (await isDirectory(join(abs, 'blobs')))) return abs;
  return undefined;
}

/** Read access to one registry's storage. */
export class RegistryReader {
  private readonly manifests = new Map<Digest, Promise<Manifest>>();
  private readonly blobs = new Map<Digest, Promise<BlobInfo | undefined>>();

  /** `v2` is the storage root, `<rootdirectory>/docker/registry/v2`. */
  constructor(readonly v2: string) {}

  /** Open a registry root (or its `docker/registry/v2`); NOT_REGISTRY if it is neither. */
  static async open(dir: string): Promise<RegistryReader> {
    const v2 = await findStorageRoot(dir);
    if (v2 === undefined) {
      const why = (await isDirectory(dir)) ? 'it holds no docker/registry/v2 (nor blobs/ or repositories/)' : 'no such directory';
      throw new RegfsError('NOT_REGISTRY', `"${dir}" is not registry storage: ${why}`, { path: dir });
    }
    return new RegistryReader(v2);
  }

  /** True if the repository exists: its directory holds `_manifests` (the catalog's rule). */
  async hasRepository(repo: RepoName): Promise<boolean> {
    return isDirectory(manifestsDir(this.v2, repo));
  }

  /** The digest a tag points at, or undefined if the tag does not exist. */
  async tagDigest(repo: RepoName, tag: Tag): Promise<Digest | undefined> {
    return readLink(tagCurrentLinkPath(this.v2, repo, tag));
  }

  /** The tags of a repository, sorted; names that are not valid tags are skipped. */
  async listTags(repo: RepoName): Promise<Tag[]> {
    const dir = tagsDir(this.v2, repo);
    let names: string[];
    try {
      names = await readdir(dir);
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
  async hasRevision(repo: RepoName, d: Digest): Promise<boolean> {
    const path = revisionLinkPath(this.v2, repo, d);
    const target = await readLink(path);
    if (target === undefined) return false;
    if (target !== d) {
      throw new RegfsError('LINK_INVALID', `revision link "${path}" points at ${target}, not at the digest of its path`, { path, digest: d });
    }
    return true;
  }

  /** Blob data for a digest: undefined if absent; BLOB_INVALID if it is not a regular file. */
  blobInfo(d: Digest): Promise<BlobInfo | undefined> {
    let p = this.blobs.get(d);
    if (p === undefined) {
      p = this.statBlob(d);
      this.blobs.set(d, p);
    }
    return p;
  }

  /** A manifest by digest: its blob must exist and hash to the digest. Cached. */
  manifest(d: Digest): Promise<Manifest> {
    let p = this.manifests.get(d);
    if (p === undefined) {
      p = this.loadManifest(d);
      this.manifests.set(d, p);
    }
    return p;
  }

  /**
   * Every repository as the registry's catalog finds it (catalog.go): a directory holding
   * `_layers` (2.x) or `_manifests` (v3) is one, the walk goes on into its other
   * subdirectories (nested names), and directories starting with `_` are skipped. Names that
   * are not valid repository names cannot be served and are left out. In catalog order.
   */
  async listRepositories(): Promise<RepoName[]> {
    const root = repositoriesDir(this.v2);
    const out: RepoName[] = [];
    const walk = async (rel: string): Promise<void> => {
      const dir = rel === '' ? root : join(root, rel);
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw ioError('listing repositories in', dir, err);
      }
      if (rel !== '' && holdsRepository(entries) && isRepoName(rel)) out.push(rel);
      await Promise.all(entries.filter((e) => e.isDirectory() && !e.name.startsWith('_')).map((e) => walk(rel === '' ? e.name : `${rel}/${e.name}`)));
    };
    await walk('');
    return out.sort(compareRepoNames);
  }

  /** The repository's directory (for messages). */
  repoPath(repo: RepoName): string {
    return repoDir(this.v2, repo);
  }

  private async statBlob(d: Digest): Promise<BlobInfo | undefined> {
    const path = blobDataPath(this.v2, d);
    let st;
    try {
      st = await lstat(path);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw ioError('reading blob', path, err);
    }
    if (!st.isFile()) {
      const what = st.isSymbolicLink() ? 'a symbolic link' : 'not a regular file';
      throw new RegfsError('BLOB_INVALID', `blob data "${path}" is ${what}; regfs only reads regular files`, { path, digest: d });
    }
    return { path, size: st.size };
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
    let raw: Buffer;
    try {
      raw = await readFile(info.path);
    } catch (err) {
      throw ioError('reading manifest', info.path, err);
    }
    return parseManifest(raw, d, info.path);
  }
}

/** True for a directory, false if nothing is there; any other failure (EACCES, ELOOP …) is an IO_ERROR. */
/**
 * True for the entries of a repository's directory: the 2.x catalog (and so 2.x's garbage
 * collector) takes `_layers` as the sign, v3 `_manifests`; either one makes a repository.
 */
export function holdsRepository(entries: Array<{ name: string; isDirectory(): boolean }>): boolean {
  return entries.some((e) => (e.name === '_layers' || e.name === '_manifests') && e.isDirectory());
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

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw ioError('reading', path, err);
  }
}
