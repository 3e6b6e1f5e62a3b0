/**
 * Naming image directories in an export tree, as `skopeo sync --scoped` lays them out so that
 * `skopeo sync --src dir` pushes them back: the repository path nested, the leaf named
 * `<last component>:<tag>` or `<last component>@sha256:<hex>`.
 *
 * Portable names, for FAT and exFAT media (which forbid `:` and do not tell upper from lower
 * case): `:` becomes `%3A`, each upper-case letter `%XX` of its code (`L` is `%4C`), and `%`
 * itself `%25`, so no two names collide and every name decodes back exactly. `@` is allowed
 * there and kept.
 */
import { RegfsError } from '../errors.js';
import { parseImageRef, type ImageRef, type RepoName, type Tag } from '../reference.js';
import type { Digest } from '../digest.js';

/** The relative path of an image directory for a tagged or digest reference. */
export function imageDirName(repo: RepoName, ref: { tag: Tag } | { digest: Digest }, portable = false): string {
  const name = 'tag' in ref ? `${repo}:${ref.tag}` : `${repo}@${ref.digest}`;
  return portable ? encodePortable(name) : name;
}

/** Escape a name for FAT/exFAT: `%` `:` and upper case become `%XX`. */
export function encodePortable(name: string): string {
  return name.replace(/[%:A-Z]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** Undo `encodePortable` (any `%XX`, either case of hex); a name without `%` is unchanged. */
export function decodePortable(name: string): string {
  return name.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * The reference an image directory's relative path names: `team/app:v1`,
 * `team/app@sha256:<hex>`, or their portable forms. It must carry a tag or a digest.
 */
export function parseImageDirName(relPath: string): ImageRef & ({ tag: Tag } | { digest: Digest }) {
  const ref = parseImageRef(decodePortable(relPath));
  if (ref.tag === undefined && ref.digest === undefined) {
    throw new RegfsError('NAME_INVALID', `image directory "${relPath}" names no tag or digest: want <repo>:<tag> or <repo>@sha256:<hex>`, {
      path: relPath,
    });
  }
  return ref as ImageRef & ({ tag: Tag } | { digest: Digest });
}
