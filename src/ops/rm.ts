/**
 * `rm`: delete a tag, a manifest by digest, or a whole repository from registry storage,
 * without a registry. Blobs are left for `gc`.
 *
 * - `repo:tag`: the tag's directory (its current link and history).
 * - `repo@digest`: the revision link, and every tag that points at the manifest, as the
 *   registry's manifest DELETE does; and the manifest's `_layers` link if it has one, since
 *   2.8 serves a manifest through that link when there is no revision link (storage-formats
 *   §3.3): without it the manifest would still be served. A manifest that is a child of an index in the
 *   repository is refused (UNSAFE) unless `force`: deleting it would break that index. So
 *   is one when an index or a tag of the repository cannot be read: it might name it. So is
 *   one whose bytes are also a config or layer of an image in the repository, linked in
 *   `_layers` (a push can upload a manifest's bytes as a layer): that one link serves both.
 * - Where a revision or `_layers` link holds another digest than its path names (damage),
 *   the manifest it holds is what the registry serves through it, so it counts as a parent.
 * - `repo`: the repository's `_manifests`, `_layers` and `_uploads`, so a nested repository
 *   `repo/sub` stays intact (an `rm -rf` of the directory would delete it too).
 *
 * Each thing goes by one rename into a trash directory (`_regfs-trash-…`, which the catalog
 * skips because of its `_`), so the registry sees it whole or gone; the trash is deleted
 * after. A run killed in between leaves only trash, which verify reports and a re-run of the
 * same rm, or any rm in that repository, removes.
 *
 * On S3 (`s3://BUCKET/PREFIX`) there is no rename and no lock: keys are deleted through the
 * driver in an order that never leaves a visible tag naming what is gone. A tag's
 * `current/link` goes first (the tag then resolves to nothing), then the rest of its
 * directory; a manifest's tags before its revision link and `_layers` link; a repository's
 * tags, then its revisions, then the rest of `_manifests`, `_layers` and `_uploads`. A run
 * killed in between leaves a part of that, never a tag naming a missing manifest, and a
 * re-run finishes it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm as removeTree, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoCode, ioError, RegfsError } from '../errors.js';
import { isDigest, type Digest } from '../digest.js';
import { isIndexKind, referencedBlobs } from '../manifest.js';
import { formatImageRef, parseImageRef, type RepoName, type Tag } from '../reference.js';
import { layerLinkPath, layersDir, manifestsDir, repoDir, repositoriesDir, revisionLinkPath, revisionsDir, tagDir, tagsDir, TRASH_PREFIX } from '../registry/layout.js';
import { directoryId, listEntries, type Entry } from '../registry/follow.js';
import { directoryNames } from '../registry/scan.js';
import { linkContent, parseLinkContent } from '../registry/link-file.js';
import type { StorageDriver } from '../storage/driver.js';
import { MANIFEST_MAX_BYTES, RegistryReader } from '../registry/read.js';
import { forEachChunkedAsync } from '../bounded.js';
import { settle } from './resolve.js';
import { withTreeLock } from './common.js';

export interface RmOptions {
  root: string;
  /** `repo:tag`, `repo@sha256:…`, `repo:tag@sha256:…` (the tag must point there), or `repo`. */
  ref: string;
  /** Delete a manifest even if an index in the repository names it. */
  force?: boolean;
  dryRun?: boolean;
}

export interface RmResult {
  dryRun: boolean;
  what: 'tag' | 'manifest' | 'repository';
  ref: string;
  /** The directories removed (or that would be). */
  removed: string[];
  /** Tags removed with a manifest. */
  tags: string[];
}

/** Delete a tag, a manifest or a repository. */
export async function rm(opts: RmOptions): Promise<RmResult> {
  const reader = await RegistryReader.open(opts.root);
  const ref = parseImageRef(opts.ref);
  const { repo } = ref;
  const dir = repoDir(reader.v2, repo);
  const onS3 = reader.driver.kind !== 'filesystem';
  const present = onS3 ? (await reader.driver.list(dir)).map((e) => e.name) : await readdir(dir).catch(() => [] as string[]);
  const trash = present.filter((n) => n.startsWith(TRASH_PREFIX));
  // A repository whose deletion a killed rm began still has _layers, _uploads or trash.
  const whole = ref.tag === undefined && ref.digest === undefined;
  if (!(await reader.hasRepository(repo)) && !(whole && present.some((n) => n === '_layers' || n === '_uploads' || n.startsWith(TRASH_PREFIX)))) {
    throw new RegfsError('NAME_UNKNOWN', `repository ${repo} does not exist in "${reader.v2}"`, { path: dir });
  }
  let plan: Awaited<ReturnType<typeof planRemoval>>;
  try {
    plan = await planRemoval(reader, repo, ref.tag, ref.digest, opts.force === true);
  } catch (err) {
    // A manifest a killed rm already moved into the trash: finish that rm.
    if (!(err instanceof RegfsError && err.code === 'MANIFEST_UNKNOWN' && trash.length > 0)) throw err;
    plan = { what: 'manifest', dirs: [], tags: [] };
  }
  if (!onS3) await refuseAliases(reader.driver, plan.dirs);
  const result: RmResult = { dryRun: opts.dryRun === true, what: plan.what, ref: formatImageRef(ref), removed: plan.dirs, tags: plan.tags };
  if (opts.dryRun === true) return result;
  if (onS3) {
    await deleteInOrder(reader.driver, repo, plan);
    return result;
  }
  await withTreeLock(reader.v2, 'rm', async () => {
    const trash = join(repoDir(reader.v2, repo), `${TRASH_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(trash);
    for (const [i, dir] of plan.dirs.entries()) {
      try {
        await rename(dir, join(trash, String(i)));
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw ioError('removing', dir, err);
      }
    }
    await emptyTrash(repoDir(reader.v2, repo));
    if (plan.what === 'repository') await removeEmptyUpTo(repoDir(reader.v2, repo), repositoriesDir(reader.v2));
  });
  return result;
}

async function planRemoval(
  reader: RegistryReader,
  repo: RepoName,
  tag: Tag | undefined,
  digest: Digest | undefined,
  force: boolean,
): Promise<{ what: RmResult['what']; dirs: string[]; tags: string[] }> {
  const v2 = reader.v2;
  if (tag !== undefined) {
    if (!(await exists(reader.driver, tagDir(v2, repo, tag)))) throw new RegfsError('TAG_UNKNOWN', `tag ${repo}:${tag} does not exist`, { path: tagDir(v2, repo, tag) });
    // The link is read only to check a pinned digest: a damaged tag can always be removed.
    if (digest !== undefined) {
      const current = await reader.tagDigest(repo, tag);
      if (current !== digest) {
        throw new RegfsError('TAG_DIGEST_MISMATCH', `tag ${repo}:${tag} points at ${current ?? 'nothing'}, not at ${digest}`, { digest: current });
      }
    }
    return { what: 'tag', dirs: [tagDir(v2, repo, tag)], tags: [`${repo}:${tag}`] };
  }
  if (digest !== undefined) {
    const how = await reader.manifestLink(repo, digest);
    if (how === undefined) {
      throw new RegfsError('MANIFEST_UNKNOWN', `manifest ${digest} has no revision link in repository ${repo} (nor a _layers link), so the registry does not serve it`, {
        path: revisionLinkPath(v2, repo, digest),
      });
    }
    // Certain or nothing: an index that cannot be read may name the manifest, and a tag whose
    // link cannot be read may point at it; either would be left broken (--force goes on).
    const { parents, users, unreadable } = await indexesNaming(reader, repo, digest);
    if (!force && parents.length > 0) {
      throw new RegfsError('UNSAFE', `manifest ${digest} is a child of index ${parents.join(', ')} in ${repo}; deleting it would break that image (--force deletes it anyway)`, { digest });
    }
    const layerLinked = how === 'layers' || (await reader.hasLayerLink(repo, digest));
    if (!force && layerLinked && users.length > 0) {
      throw new RegfsError(
        'UNSAFE',
        `manifest ${digest} is also a config or layer of ${users.join(', ')} in ${repo}: its one _layers link serves it as both, so deleting the link would break that image, and keeping it would leave the manifest served (--force deletes it anyway)`,
        { digest },
      );
    }
    const tags: string[] = [];
    const dirs: string[] = [];
    // The tags' links are read a chunk at once (on S3, requests in flight together), taken in order.
    await forEachChunkedAsync(await reader.listTags(repo), (t) => settle(reader.tagDigest(repo, t)), (t, current) => {
      if (!current.ok) {
        if (!(current.err instanceof RegfsError)) throw current.err;
        unreadable.push(current.err);
        return;
      }
      if (current.value === digest) {
        tags.push(`${repo}:${t}`);
        dirs.push(tagDir(v2, repo, t));
      }
    });
    if (!force && unreadable.length > 0) {
      const what = unreadable.map((e) => `"${e.path ?? '?'}" (${e.code})`).join(', ');
      throw new RegfsError('UNSAFE', `cannot tell whether anything in ${repo} still needs manifest ${digest}: ${what} cannot be read; nothing was deleted (--force deletes it anyway)`, {
        digest,
        problems: unreadable,
      });
    }
    // Tags first: none may point at a manifest that is gone. Then every link it is served by.
    if (how === 'revision') dirs.push(dirname(revisionLinkPath(v2, repo, digest)));
    if (layerLinked) dirs.push(dirname(layerLinkPath(v2, repo, digest)));
    return { what: 'manifest', dirs, tags };
  }
  const dir = repoDir(v2, repo);
  const tags = (await reader.listTags(repo)).map((t) => `${repo}:${t}`);
  // _manifests first: the repository's tags go at once (a re-run finishes the rest).
  return { what: 'repository', dirs: [manifestsDir(v2, repo), join(dir, '_layers'), join(dir, '_uploads')], tags };
}

/**
 * The indexes in the repository whose children include `digest`, the images that reference
 * it as a config or layer, and the revisions whose
 * manifest could not be read (so whether they name it is unknown). A revision without data is
 * no index the registry serves. Indexes the registry serves through a `_layers` link alone
 * (2.x's fallback) count too: a `_layers`-linked blob small enough to be a manifest that
 * decodes as an index (one that does not decode is a layer or config, not a parent). The
 * manifests are read a chunk at once (on S3, requests in flight together), taken in the
 * listing's order.
 */
async function indexesNaming(reader: RegistryReader, repo: RepoName, digest: Digest): Promise<{ parents: Digest[]; users: Digest[]; unreadable: RegfsError[] }> {
  const parents: Digest[] = [];
  const users: Digest[] = [];
  const unreadable: RegfsError[] = [];
  // Whether the manifest stored under `d` is an index naming `digest` (a parent), or an image
  // referencing it as a config or layer (a user: a push can upload a manifest's bytes as one).
  const names = async (d: Digest, byLayers: boolean): Promise<'parent' | 'user' | undefined> => {
    if (byLayers && ((await reader.blobInfo(d))?.size ?? Infinity) > MANIFEST_MAX_BYTES) return undefined;
    const m = await reader.manifest(d);
    if (isIndexKind(m.kind)) return m.manifests.some((c) => c.digest === digest) ? 'parent' : undefined;
    return referencedBlobs(m).some((b) => b.digest === digest) ? 'user' : undefined;
  };
  const consider = async (base: string, byLayers: boolean): Promise<void> => {
    const candidates: Digest[] = [];
    const seen = new Set<string>(parents);
    const add = (d: string): void => {
      if (d === digest || !isDigest(d) || seen.has(d)) return;
      seen.add(d);
      candidates.push(d);
    };
    for (const alg of await entries(reader.driver, base)) {
      for (const hex of await entries(reader.driver, `${base}/${alg.name}`)) {
        const d = `${alg.name}:${hex.name}`;
        add(d);
        // The registry serves the manifest a link holds, not the one its path names: a link
        // that holds another digest (damage) makes that manifest a possible parent too.
        const link = `${base}/${alg.name}/${hex.name}/link`;
        // On S3 the repository's listing proves most links hold their own digest, with no GET.
        if (reader.driver.listedHolds?.(link, d as Digest) === true) continue;
        const held = await heldDigest(reader.driver, link);
        if (held !== undefined && held !== d) add(held);
      }
    }
    await forEachChunkedAsync(candidates, (d) => settle(names(d, byLayers)), (d, r) => {
      if (r.ok) {
        if (r.value === 'parent') parents.push(d);
        else if (r.value === 'user') users.push(d);
        return;
      }
      const err = r.err;
      if (!(err instanceof RegfsError)) throw err;
      if (byLayers && (err.code === 'MANIFEST_INVALID' || err.code === 'DIGEST_MISMATCH')) return;
      if (err.code !== 'BLOB_UNKNOWN') unreadable.push(err);
    });
  };
  await consider(revisionsDir(reader.v2, repo), false);
  await consider(layersDir(reader.v2, repo), true);
  return { parents, users, unreadable };
}

/** The digest a link file holds, or undefined if it holds none (missing, malformed, unreadable: the registry serves nothing through it). */
async function heldDigest(driver: StorageDriver, path: string): Promise<Digest | undefined> {
  try {
    return parseLinkContent(await linkContent(driver, path), path);
  } catch (err) {
    if (err instanceof RegfsError) return undefined;
    throw err;
  }
}

/** Delete every trash directory in a repository directory (this run's, and any a killed run left). */
async function emptyTrash(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.startsWith(TRASH_PREFIX)) await removeTree(join(dir, name), { recursive: true, force: true });
  }
}

async function removeEmptyUpTo(start: string, stop: string): Promise<void> {
  let dir = start;
  while (dir !== stop && dir.startsWith(stop)) {
    try {
      await rmdir(dir);
    } catch {
      return;
    }
    dir = dirname(dir);
  }
}

async function exists(driver: StorageDriver, path: string): Promise<boolean> {
  if (driver.kind !== 'filesystem') return (await driver.stat(path))?.kind === 'directory';
  return readdir(path).then(
    () => true,
    () => false,
  );
}

/** A directory's entries: read on disk, from the repository's listing on S3. */
async function entries(driver: StorageDriver, dir: string): Promise<Entry[]> {
  return driver.kind === 'filesystem' ? listEntries(dir) : driver.list(dir);
}

/**
 * Delete what the plan removes, on S3 (no rename there), tags before what they name: every
 * tag's `current/` first, then the rest of each tag's directory; then, for a manifest, its
 * revision link and `_layers` link; for a repository, its revisions, then `_manifests`,
 * `_layers` and `_uploads`. The deletes of one step run at once (bounded by --jobs).
 */
async function deleteInOrder(driver: StorageDriver, repo: RepoName, plan: { what: RmResult['what']; dirs: string[] }): Promise<void> {
  const v2 = driver.v2;
  const tags = tagsDir(v2, repo);
  const tagDirs =
    plan.what === 'repository' ? (await driver.list(tags)).filter((e) => e.dir).map((e) => `${tags}/${e.name}`) : plan.dirs.filter((d) => d.startsWith(`${tags}/`));
  const each = (paths: string[]): Promise<void> => forEachChunkedAsync(paths, (p) => driver.delete(p), () => undefined);
  await each(tagDirs.map((d) => `${d}/current`));
  await each(tagDirs);
  const rest = plan.what === 'repository' ? [revisionsDir(v2, repo), ...plan.dirs] : plan.dirs.filter((d) => !tagDirs.includes(d));
  for (const d of rest) await driver.delete(d);
}

/**
 * Refuse to delete in a directory with two names: what rm moves away, or a directory it lies
 * in (up to `repositories/` itself), that the registry's walk of the tree also reaches by
 * another name (a symbolic link or a mount: two repository names for one directory, one
 * repository's tags, revisions or a tag of it being another's, a link back to an ancestor).
 * The move would take what the other name serves too. A directory reached by one name only,
 * through links out of the tree (storage spread over several disks) or into a directory the
 * walk passes over (`_store`), is this repository's own.
 */
async function refuseAliases(driver: StorageDriver, dirs: string[]): Promise<void> {
  const repos = repositoriesDir(driver.v2);
  const names = await directoryNames(driver);
  for (const dir of dirs) {
    for (let at = dir; at === repos || at.startsWith(`${repos}/`); at = dirname(at)) {
      let id: string;
      try {
        id = directoryId(at);
      } catch {
        continue; // not there: nothing is deleted through it
      }
      const other = names.get(id)?.find((p) => p !== at);
      if (other !== undefined) {
        throw new RegfsError('SYMLINK_ALIAS', `"${at}" is one directory with "${other}" (a symbolic link or a mount makes them two names): deleting through it would delete there too; nothing was deleted`, { path: at });
      }
      if (at === repos) break;
    }
  }
}
