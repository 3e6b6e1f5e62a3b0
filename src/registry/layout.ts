/**
 * The path layout of Docker Distribution's filesystem storage, a port of
 * distribution's registry/storage/paths.go. Pure: no I/O. Every function takes the storage
 * root `v2` (the directory `<rootdirectory>/docker/registry/v2`) and validated names and
 * digests only, so nothing a user typed can escape the tree.
 *
 *   <v2>/
 *     blobs/<alg>/<hex[0:2]>/<hex>/data                             blob bytes
 *     repositories/<name>/
 *       _layers/<alg>/<hex>/link                                     blob access for <name>
 *       _manifests/revisions/<alg>/<hex>/link                        manifest present in <name>
 *       _manifests/tags/<tag>/current/link                           what <tag> points at now
 *       _manifests/tags/<tag>/index/<alg>/<hex>/link                 every digest <tag> has held
 *       _uploads/<uuid>/{data,startedat,hashstates/...}              uploads in progress
 *
 * Repository names may hold slashes and are used as directory paths, so the repository `a/b`
 * lives inside the directory of `a`, next to `a`'s `_manifests`.
 *
 * Paths are built by concatenation, not path.join: every component is validated (no `..`, no
 * empty part), so there is nothing to normalise, and these functions run for every file of
 * a large extract. `v2` must be an absolute path without a trailing slash (`storageRoot` and
 * the readers give one).
 */
import { join } from 'node:path';
import { digestAlgorithm, digestHex, type Digest } from '../digest.js';
import type { RepoName, Tag } from '../reference.js';

/**
 * The prefix of the directories regfs stages new tags in and moves deleted things into,
 * inside a repository's directory. The `_` keeps the registry's catalog out of them.
 */
export const TRASH_PREFIX = '_regfs-trash-';

/** The fixed prefix the registry puts under its `rootdirectory`. */
export const STORAGE_PREFIX = join('docker', 'registry', 'v2');

/** `<root>/docker/registry/v2` for a registry root directory. */
export function storageRoot(registryRoot: string): string {
  return join(registryRoot, STORAGE_PREFIX);
}

/** `<v2>/blobs` */
export function blobsDir(v2: string): string {
  return `${v2}/blobs`;
}

/** `<v2>/blobs/<alg>/<hex[0:2]>/<hex>`: the directory the registry's GC deletes. */
export function blobDir(v2: string, d: Digest): string {
  const hex = digestHex(d);
  return `${v2}/blobs/${digestAlgorithm(d)}/${hex.slice(0, 2)}/${hex}`;
}

/** `<v2>/blobs/<alg>/<hex[0:2]>/<hex>/data` */
export function blobDataPath(v2: string, d: Digest): string {
  return `${blobDir(v2, d)}/data`;
}

/** `<v2>/repositories` */
export function repositoriesDir(v2: string): string {
  return `${v2}/repositories`;
}

/** `<v2>/repositories/<name>` */
export function repoDir(v2: string, name: RepoName): string {
  return `${v2}/repositories/${name}`;
}

/** `<v2>/repositories/<name>/_layers` */
export function layersDir(v2: string, name: RepoName): string {
  return `${repoDir(v2, name)}/_layers`;
}

/** `<v2>/repositories/<name>/_layers/<alg>/<hex>/link` */
export function layerLinkPath(v2: string, name: RepoName, d: Digest): string {
  return `${layersDir(v2, name)}/${digestAlgorithm(d)}/${digestHex(d)}/link`;
}

/** `<v2>/repositories/<name>/_manifests` */
export function manifestsDir(v2: string, name: RepoName): string {
  return `${repoDir(v2, name)}/_manifests`;
}

/** `<v2>/repositories/<name>/_manifests/revisions` */
export function revisionsDir(v2: string, name: RepoName): string {
  return `${manifestsDir(v2, name)}/revisions`;
}

/** `<v2>/repositories/<name>/_manifests/revisions/<alg>/<hex>/link` */
export function revisionLinkPath(v2: string, name: RepoName, d: Digest): string {
  return `${revisionsDir(v2, name)}/${digestAlgorithm(d)}/${digestHex(d)}/link`;
}

/** `<v2>/repositories/<name>/_manifests/tags` */
export function tagsDir(v2: string, name: RepoName): string {
  return `${manifestsDir(v2, name)}/tags`;
}

/** `<v2>/repositories/<name>/_manifests/tags/<tag>` */
export function tagDir(v2: string, name: RepoName, tag: Tag): string {
  return `${tagsDir(v2, name)}/${tag}`;
}

/** `<v2>/repositories/<name>/_manifests/tags/<tag>/current/link` */
export function tagCurrentLinkPath(v2: string, name: RepoName, tag: Tag): string {
  return `${tagDir(v2, name, tag)}/current/link`;
}

/** `<v2>/repositories/<name>/_manifests/tags/<tag>/index` */
export function tagIndexDir(v2: string, name: RepoName, tag: Tag): string {
  return `${tagDir(v2, name, tag)}/index`;
}

/** `<v2>/repositories/<name>/_manifests/tags/<tag>/index/<alg>/<hex>/link` */
export function tagIndexEntryLinkPath(v2: string, name: RepoName, tag: Tag, d: Digest): string {
  return `${tagIndexDir(v2, name, tag)}/${digestAlgorithm(d)}/${digestHex(d)}/link`;
}

/** `<v2>/repositories/<name>/_uploads` */
export function uploadsDir(v2: string, name: RepoName): string {
  return `${repoDir(v2, name)}/_uploads`;
}
