/**
 * The switchable kinds of trouble the differential harness puts into a state: some through
 * the registry's API (deletes, upper-case names), most by damaging the files afterwards.
 */

/** Every kind, in the order the help lists them. */
export const ALL_KINDS = [
  // through the API
  'delete-manifest', // DELETE /v2/<name>/manifests/<digest> of a pushed manifest
  'delete-child', // the same for one child of a pushed index
  'upper-push', // pushes to Team/tools (an upper-case first component, which 2.8.2 accepts)
  'layer-manifest', // an image pushed whose layer is the bytes of a pushed manifest, deleted first or not (2.8 then serves that manifest by digest through the layer's _layers link)
  // on the files, after the registry stopped
  'link-missing', // a link file (tag, tag index, revision, _layers) removed
  'link-empty', // a link file emptied
  'link-newline', // a newline appended to a link file
  'link-retarget', // a revision link made to hold another revision's digest, whose own link is removed (2.8 serves the manifest the link holds)
  'data-symlink', // a blob's data moved outside the root, a relative symlink left in its place
  'dir-symlink', // a blob fan-out directory (blobs/sha256/ab) moved outside, a symlink left
  'link-symlink', // a link file moved outside the root, a relative symlink left in its place
  'repo-alias', // a symlink making a repository reachable under a second name (an alias)
  'fifo', // a link file or a blob's data replaced by a FIFO
  'truncate', // a blob's data cut to half its size
  'upper-rename', // a repository's first component renamed to upper case (team/web -> Team/web)
  'tag-misname', // a tag directory renamed to a name that is no tag (-v1, 129 characters), which the registry still lists
  'tag-file', // a tag directory replaced by a file (the registry lists it, answers 500, its garbage-collect stops)
  'blob-stray', // a stray file or directory under blobs/ (no blob's: blobs/<name>, blobs/md5-<n>/, beside a blob's data a file or a directory named like a temp file), which the registry ignores and gc must leave
  'link-stray', // a stray file, or a directory named like a temp file, beside a _layers or revision link, which the registry ignores and gc must leave (even where it deletes the link)
] as const;

export type Kind = (typeof ALL_KINDS)[number];
export type Kinds = ReadonlySet<Kind>;

/** Names that stand for several kinds. */
export const KIND_GROUPS: Record<string, Kind[]> = {
  all: [...ALL_KINDS],
  none: [],
  deletes: ['delete-manifest', 'delete-child', 'layer-manifest'],
  links: ['link-missing', 'link-empty', 'link-newline', 'link-retarget'],
  symlinks: ['data-symlink', 'dir-symlink', 'link-symlink', 'repo-alias'],
  fifos: ['fifo'],
  upper: ['upper-push', 'upper-rename'],
  tags: ['tag-misname', 'tag-file'],
  strays: ['blob-stray', 'link-stray'],
};

/** The kinds damaging files, as opposed to those applied through the API. */
export const FILE_KINDS: Kind[] = ['link-missing', 'link-empty', 'link-newline', 'link-retarget', 'data-symlink', 'dir-symlink', 'link-symlink', 'repo-alias', 'fifo', 'truncate', 'upper-rename', 'tag-misname', 'tag-file', 'blob-stray', 'link-stray'];

/** Parse `a,b,-c`: kinds and group names, a leading `-` removes. An empty or all-removal list starts from every kind. */
export function parseKinds(spec: string): Set<Kind> {
  const words = spec.split(',').map((w) => w.trim()).filter((w) => w !== '');
  const out = new Set<Kind>(words.every((w) => w.startsWith('-')) ? ALL_KINDS : []);
  for (const w of words) {
    const remove = w.startsWith('-');
    const name = remove ? w.slice(1) : w;
    const kinds = KIND_GROUPS[name] ?? ((ALL_KINDS as readonly string[]).includes(name) ? [name as Kind] : undefined);
    if (kinds === undefined) throw new Error(`unknown damage kind "${name}"; known: ${[...Object.keys(KIND_GROUPS), ...ALL_KINDS].join(', ')}`);
    for (const k of kinds) {
      if (remove) out.delete(k);
      else out.add(k);
    }
  }
  return out;
}

/** The kinds as the reproduction line spells them: `all`, `none`, a list, or `all,-kind,...` if shorter. */
export function formatKinds(kinds: Kinds): string {
  const list = ALL_KINDS.filter((k) => kinds.has(k));
  const missing = ALL_KINDS.filter((k) => !kinds.has(k));
  if (missing.length === 0) return 'all';
  if (list.length === 0) return 'none';
  return missing.length < list.length ? ['all', ...missing.map((k) => `-${k}`)].join(',') : list.join(',');
}

/** Fisher-Yates with the harness's PRNG. */
export function shuffle<T>(xs: readonly T[], rand: () => number): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
