/**
 * The OCI image layout (image-spec image-layout.md): an `oci-layout` file, an `index.json`
 * image index, and every blob (manifests and indexes included) at `blobs/<alg>/<encoded>`,
 * with no fan-out. Paths are made here only, from parsed digests.
 *
 * Names. The spec leaves the meaning of `org.opencontainers.image.ref.name` open, and tools
 * disagree (storage-formats §1C.1): crane `--annotate-ref` and skopeo `oci:PATH:REF` write
 * whatever reference they are given, often a full `repo:tag`; `docker save` (25+) and regctl
 * write the bare tag, docker adding the full name as `io.containerd.image.name`. regfs writes
 * the full `repo:tag`, so that `skopeo copy oci:LAYOUT:team/app:1.4 ...` finds it, and reads
 * every convention: see `entryName`.
 */
import { join } from 'node:path';
import { digestAlgorithm, digestHex, type Digest } from '../digest.js';
import { quote, RegfsError } from '../errors.js';
import { parseImageRef, parseRepoName, parseTag, type ParseRefOptions, type RepoName, type Tag } from '../reference.js';

/** The `oci-layout` file regfs writes. */
export const OCI_LAYOUT_FILE = 'oci-layout';
export const OCI_LAYOUT_CONTENT = '{"imageLayoutVersion":"1.0.0"}';
export const INDEX_FILE = 'index.json';

/** Annotations that name an `index.json` entry. */
export const REF_NAME = 'org.opencontainers.image.ref.name';
export const CONTAINERD_NAME = 'io.containerd.image.name';

/** `<layout>/blobs/<alg>/<encoded>` */
export function ociBlobPath(layout: string, d: Digest): string {
  return join(layout, 'blobs', digestAlgorithm(d), digestHex(d));
}

/** `<layout>/blobs/<alg>` */
export function ociBlobDir(layout: string, d: Digest): string {
  return join(layout, 'blobs', digestAlgorithm(d));
}

/** An image's name as an `index.json` entry gives it; `tag` undefined for an entry named by digest alone (`repo@sha256:…`). */
export interface EntryName {
  repo: RepoName;
  tag: Tag | undefined;
  /** The digest the name pins (`repo@sha256:…`, `repo:tag@sha256:…`): it must be the entry's own. */
  digest?: Digest | undefined;
}

/**
 * The name of an `index.json` entry, by every convention in use: `io.containerd.image.name`
 * (a full reference, docker save) first; then `ref.name` if it is a full `repo:tag` (regfs,
 * crane, skopeo given one); a bare tag (docker save, regctl, skopeo given one) takes its
 * repository from `repo`. Undefined when the entry has no name; a name that is not valid, or
 * a bare tag without `repo`, throws NAME_INVALID or TAG_INVALID naming the annotation.
 */
export function entryName(annotations: Record<string, string> | undefined, repo: RepoName | undefined, opts: ParseRefOptions = {}): EntryName | undefined {
  const full = annotations?.[CONTAINERD_NAME];
  const ref = annotations?.[REF_NAME];
  if (full !== undefined) return named(full, CONTAINERD_NAME, opts);
  if (ref === undefined || ref === '') return undefined;
  if (!ref.includes('/') && !ref.includes(':') && !ref.includes('@')) {
    const tag = parseTag(ref);
    if (repo === undefined) {
      throw new RegfsError('NAME_INVALID', `${REF_NAME} ${quote(ref)} is a bare tag: name the repository it belongs to with --repo`);
    }
    return { repo, tag };
  }
  return named(ref, REF_NAME, opts);
}

function named(value: string, annotation: string, opts: ParseRefOptions): EntryName {
  try {
    const r = parseImageRef(value, opts);
    if (r.tag === undefined && r.digest === undefined) throw new RegfsError('TAG_INVALID', `no tag or digest`);
    return { repo: parseRepoName(r.repo), tag: r.tag, digest: r.digest };
  } catch (err) {
    if (!(err instanceof RegfsError)) throw err;
    throw new RegfsError(err.code, `${annotation} ${quote(value)} is not a repo:tag or repo@digest reference: ${err.message}`);
  }
}

/**
 * The `ref.name` regfs writes for an image: its full `repo:tag`, or `repo@sha256:…` for an
 * image listed by digest alone (the grammar allows `@`; it keeps the repository, so from-oci
 * brings the image back where it was).
 */
export function refName(repo: RepoName, tag: Tag | undefined, digest: Digest): string {
  return tag === undefined ? `${repo}@${digest}` : `${repo}:${tag}`;
}
