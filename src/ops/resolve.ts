/**
 * Resolving an image list against registry storage, read-only: every line becomes concrete
 * images (a repository line becomes one image per tag), each with every manifest it needs
 * (an index and all its children, nested to MAX_INDEX_DEPTH) and every config and layer blob
 * those manifests reference. Every problem is collected, each naming its list line, so a
 * user sees all of them at once.
 *
 * A repository holds what the registry serves from it, not what the blob store holds: a
 * manifest only if the repository links it (its revision link, or the `_layers` link 2.x
 * falls back to), a config or layer only if the repository has its `_layers` link. So a
 * manifest deleted through the registry's API stays deleted, and an index missing a child
 * is broken. `repair` takes configs and layers whose data is there but whose link is not,
 * and says so: the output then gets the link (and serves what the source's blob store holds).
 */
import { Problems, quote, RegfsError } from '../errors.js';
import { CHUNK, forEachChunkedAsync } from '../bounded.js';
import type { Digest } from '../digest.js';
import type { ListEntry } from '../image-list.js';
import { formatPlatform, indexTooDeep, isIndexKind, MAX_INDEX_DEPTH, referencedBlobs, type Descriptor, type Manifest } from '../manifest.js';
import { formatImageRef, isTag, looksLikeDomain, type RepoName, type Tag } from '../reference.js';
import type { BlobInfo, RegistryReader } from '../registry/read.js';
import { blobDataPath, layerLinkPath, revisionLinkPath, tagCurrentLinkPath, tagsDir } from '../registry/layout.js';
import { manifestLevels } from './common.js';
import { PhaseProgress, type OnProgress } from '../progress.js';


/** One image, resolved to content. */
export interface ResolvedImage {
  repo: RepoName;
  /** Set when the image is selected by tag; a digest-only image gets no tag. */
  tag: Tag | undefined;
  digest: Digest;
  /** The list line that selected it. */
  entry: ListEntry;
  /** The top manifest. */
  manifest: Manifest;
  /** The top manifest and every descendant, each once, breadth first (top first). */
  manifests: Manifest[];
  /** Configs and layers of every image manifest, present in storage, each once. */
  blobs: Map<Digest, BlobInfo>;
  /** Descriptors with `urls` (foreign layers) the repository does not serve: reported, not fatal. */
  absentForeign: Descriptor[];
  /** Links the output gets that the source lacks (see RepairedLink). */
  repaired: RepairedLink[];
}

/**
 * A link the source repository lacks and the output gets: the `_layers` link of a config or
 * layer whose data the source holds (only with `repair`), or the revision link of a manifest
 * the source serves through its `_layers` link alone (always: 2.x serves it so).
 */
export interface RepairedLink {
  repo: RepoName;
  digest: Digest;
  link: 'layers' | 'revision';
  /** The link's path in the source, where it is missing. */
  missing: string;
}

/** How to resolve. */
export interface ResolveOptions {
  /** Take configs and layers whose data is present but unlinked in the repository (see RepairedLink). */
  repair?: boolean;
  /** Where problems go as they are found; without it they are returned in `problems`. */
  problems?: Problems;
  /** The `resolve` phase: the images the list's lines name (a repository line names one per tag). */
  onProgress?: OnProgress;
}

/** What a list resolved to. */
export interface Resolution {
  images: ResolvedImage[];
  /**
   * One per problem found, each naming its list line, unless `problems` was given (then they
   * went there); an image with a problem is not in `images`.
   */
  problems: RegfsError[];
  /**
   * How many images the problems leave out, each once however many problems it has and
   * however many lines select it: a tag a repository line finds, or a line that selects none
   * (a repository that does not exist).
   */
  leftOut: number;
}

/**
 * Resolve every entry; problems are collected, not thrown. The entries may be made as they
 * are taken (a list parsed line by line): only the images that resolve are kept. The images
 * of a chunk are resolved at once (on S3 their requests overlap), taken in the list's order.
 */
export async function resolveImages(reader: RegistryReader, entries: Iterable<ListEntry>, opts: ResolveOptions = {}): Promise<Resolution> {
  const problems = opts.problems ?? new Problems();
  const targets: Target[] = [];
  // Lines that select no image (merged, so each once), and the images left out by name: a
  // repository line and a line of its own may select the same one. No set of a million
  // names for a list of a million missing repositories.
  let linesLeftOut = 0;
  const imagesLeftOut = new Set<string>();
  // A chunk of lines is expanded at once; its problems, and those the list's parser finds
  // among its lines, are reported in line order, as one line after another would report them.
  await forEachChunkedAsync(
    entries,
    (entry) => expandEntry(reader, entry).catch((err: unknown) => located(err, entry)),
    (entry, x) => {
      if (x instanceof RegfsError) {
        problems.add(x);
        linesLeftOut++;
        return;
      }
      // A loop, not push(...x): a repository of 150,000 tags would overflow the stack.
      for (const t of x.targets) targets.push(t);
      for (const p of x.problems) problems.add(p);
      for (const t of x.failedTags) imagesLeftOut.add(`${entry.ref.repo}:${t}`);
    },
    undefined,
    (work) => problems.inListOrder(work),
  );
  const images: ResolvedImage[] = [];
  const seen = new Set<string>();
  const progress = new PhaseProgress(opts.onProgress, 'resolve', targets.length);
  await forEachChunkedAsync(
    targets,
    (t) => resolveTarget(reader, t.entry, t.tag, t.digest, opts.repair === true),
    (t, r) => {
      progress.add(1);
      if ('problems' in r) {
        for (const p of r.problems) problems.add(p);
        imagesLeftOut.add(t.tag === undefined ? `${t.entry.ref.repo}@${t.digest}` : `${t.entry.ref.repo}:${t.tag}`);
        return;
      }
      // `repo` and `repo:tag` lines may select the same image twice; keep one.
      const key = `${r.repo}\0${r.tag ?? ''}\0${r.digest}`;
      if (seen.has(key)) return;
      seen.add(key);
      images.push(r);
    },
    () => progress.report(),
  );
  return { images, problems: opts.problems === undefined ? problems.list : [], leftOut: linesLeftOut + imagesLeftOut.size };
}

interface Target {
  entry: ListEntry;
  tag: Tag | undefined;
  digest: Digest;
}

/**
 * A list line to (tag, digest) pairs. A repository line reads its tags in parallel and
 * reports each broken tag as a problem of its own, keeping the others.
 */
async function expandEntry(reader: RegistryReader, entry: ListEntry): Promise<{ targets: Target[]; problems: RegfsError[]; failedTags: string[] }> {
  const { repo, tag, digest } = entry.ref;
  if (!(await reader.hasRepository(repo))) {
    const first = repo.split('/')[0]!;
    const hint = repo.includes('/') && looksLikeDomain(first) ? `; the name starts with the registry host ${first}: --strip-registry drops it` : '';
    throw new RegfsError('NAME_UNKNOWN', `repository ${repo} does not exist in the source (no "${reader.repoPath(repo)}/_manifests")${hint}`, {
      path: reader.repoPath(repo),
    });
  }
  if (tag === undefined && digest !== undefined) return { targets: [{ entry, tag: undefined, digest }], problems: [], failedTags: [] };
  // A whole repository is every name its tag list gives, as the registry lists them: a name
  // no request can name (`-v1`) is listed, never served, and so a problem of its own.
  const names = tag === undefined ? await reader.listTagNames(repo) : [tag];
  if (names.length === 0) throw new RegfsError('TAG_UNKNOWN', `repository ${repo} has no tags`, { path: reader.repoPath(repo) });
  const tags = names.filter(isTag);
  const targets: Target[] = [];
  const problems: RegfsError[] = [];
  const failedTags: string[] = [];
  for (const name of names.filter((n) => !isTag(n))) {
    problems.push(located(unnamableTag(reader.v2, repo, name), entry, `${repo}:${name}`));
    failedTags.push(name);
  }
  // The tags' links are read a chunk at once (on S3, requests in flight together), taken in order.
  const currents: Array<{ ok: true; value: Digest | undefined } | { ok: false; err: unknown }> = [];
  for (let i = 0; i < tags.length; i += CHUNK) {
    for (const r of await Promise.all(tags.slice(i, i + CHUNK).map((t) => settle(Promise.resolve(reader.tagDigest(repo, t)))))) currents.push(r);
  }
  for (const [i, t] of tags.entries()) {
    const path = tagCurrentLinkPath(reader.v2, repo, t);
    try {
      const read = currents[i]!;
      if (!read.ok) throw read.err;
      const current = read.value;
      if (current === undefined) throw new RegfsError('TAG_UNKNOWN', `tag ${repo}:${t} does not exist in the source (no "${path}")`, { path });
      if (digest !== undefined && current !== digest) {
        throw new RegfsError('TAG_DIGEST_MISMATCH', `tag ${repo}:${t} points at ${current}, not at ${digest}`, { path, digest: current });
      }
      targets.push({ entry, tag: t, digest: current });
    } catch (err) {
      problems.push(located(err, entry, `${repo}:${t}`));
      failedTags.push(t);
    }
  }
  return { targets, problems, failedTags };
}

/** TAG_INVALID for a name in a repository's tags directory that is no tag: the registry lists it and never serves it. */
export function unnamableTag(v2: string, repo: RepoName, name: string): RegfsError {
  return new RegfsError('TAG_INVALID', `the registry lists tag ${quote(name)} of ${repo}, but no request can name it (a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}): it is never served`, {
    path: `${tagsDir(v2, repo)}/${name}`,
  });
}

/**
 * One image of `entry.ref.repo` (the tag, if any, already read as pointing at `digest`):
 * everything it needs, or every problem that keeps it out, each located at `entry`.
 */
export async function resolveTarget(reader: RegistryReader, entry: ListEntry, tag: Tag | undefined, digest: Digest, repair: boolean): Promise<ResolvedImage | { problems: RegfsError[] }> {
  const { repo } = entry.ref;
  const name = `${repo}${tag === undefined ? '' : `:${tag}`}@${digest}`;
  const problems: RegfsError[] = [];
  const fail = (err: unknown): void => {
    problems.push(located(err, entry, name));
  };
  try {
    const how = await reader.manifestLink(repo, digest);
    if (how === undefined) {
      throw new RegfsError(
        'MANIFEST_UNKNOWN',
        `manifest ${digest} has no revision link in repository ${repo} (nor a _layers link), so the registry would not serve it`,
        { digest, path: revisionLinkPath(reader.v2, repo, digest) },
      );
    }
    const top = await reader.manifest(digest);
    const manifests: Manifest[] = [];
    const blobs = new Map<Digest, BlobInfo>();
    const absentForeign: Descriptor[] = [];
    const repaired: RepairedLink[] = [];
    if (how === 'layers') repaired.push(revisionRepair(reader, repo, digest));

    // Breadth first, with a worklist: each manifest once, at the depth it is first reached.
    const visited = new Set<Digest>([top.digest]);
    const work: Array<{ m: Manifest; depth: number }> = [{ m: top, depth: 0 }];
    for (let i = 0; i < work.length; i++) {
      const { m, depth } = work[i]!;
      manifests.push(m);
      if (isIndexKind(m.kind)) {
        if (m.manifests.length > 0 && depth >= MAX_INDEX_DEPTH) {
          fail(indexTooDeep(m.digest, (await reader.blobInfo(m.digest))?.path));
          continue;
        }
        const children = m.manifests.filter((child) => !visited.has(child.digest) && visited.add(child.digest));
        // The children are read at once (on S3, requests in flight together), taken in order.
        const read = await Promise.all(children.map((child) => settle(readChild(reader, repo, m, child))));
        for (const [j, c] of read.entries()) {
          if (!c.ok) {
            fail(c.err);
            continue;
          }
          if (c.value.how === 'layers') repaired.push(revisionRepair(reader, repo, children[j]!.digest));
          work.push({ m: c.value.manifest, depth: depth + 1 });
        }
        continue;
      }
      const refs = referencedBlobs(m);
      const served = await Promise.all(refs.map((d) => settle(servedBlob(reader, repo, m, d, repair))));
      for (const [j, r] of served.entries()) {
        const d = refs[j]!;
        if (!r.ok) {
          fail(r.err);
          continue;
        }
        const info = r.value;
        if (info === undefined) absentForeign.push(d);
        else {
          if (info.repaired !== undefined && !blobs.has(d.digest)) repaired.push(info.repaired);
          blobs.set(d.digest, info.blob);
        }
      }
    }
    // The worklist bounds the depth it reached first; a longer path through shared children counts too.
    if (problems.length === 0 && (manifestLevels(manifests).get(top.digest) ?? 0) > MAX_INDEX_DEPTH) fail(indexTooDeep(top.digest, (await reader.blobInfo(top.digest))?.path));
    if (problems.length > 0) return { problems };
    return { repo, tag, digest, entry, manifest: top, manifests, blobs, absentForeign, repaired };
  } catch (err) {
    fail(err);
    return { problems };
  }
}

/**
 * A child of an index, as the registry serves it from the repository: linked there (by its
 * revision link, or 2.x's `_layers` fallback), its data present, of the size the index gives,
 * and a manifest under its digest. A child deleted through the registry's API has lost its
 * revision link but not its data: it is CHILD_MISSING, the index broken.
 */
async function readChild(reader: RegistryReader, repo: RepoName, parent: Manifest, child: Descriptor): Promise<{ manifest: Manifest; how: 'revision' | 'layers' }> {
  const platform = child.platform === undefined ? '' : ` (${formatPlatform(child.platform)})`;
  const how = await reader.manifestLink(repo, child.digest);
  if (how === undefined) {
    const path = revisionLinkPath(reader.v2, repo, child.digest);
    throw new RegfsError(
      'CHILD_MISSING',
      `index ${parent.digest} names child ${child.digest}${platform}, which has no revision link in repository ${repo} ("${path}"): the registry answers 404 for it, so the index is broken`,
      { path, digest: child.digest },
    );
  }
  // The size first, from a stat: a child is read only if it can be what the index says.
  const info = await reader.blobInfo(child.digest);
  if (info === undefined) {
    const path = blobDataPath(reader.v2, child.digest);
    throw new RegfsError('BLOB_UNKNOWN', `index ${parent.digest} names child ${child.digest}${platform}, which is missing from the source ("${path}")`, {
      path,
      digest: child.digest,
    });
  }
  if (info.size !== child.size) {
    throw new RegfsError('SIZE_INVALID', `index ${parent.digest} gives child ${child.digest} size ${child.size}, its manifest has ${info.size} bytes`, {
      path: info.path,
      digest: child.digest,
    });
  }
  return { manifest: await reader.manifest(child.digest), how };
}

/**
 * A config or layer as the registry serves it from the repository: its `_layers` link there
 * and its data. Undefined for a foreign layer (one with `urls`) the repository does not
 * serve: clients fetch it from its URL. Without `repair`, data the repository does not link
 * is LAYER_UNLINKED; with it, the data is taken and the link written in the output.
 */
async function servedBlob(
  reader: RegistryReader,
  repo: RepoName,
  m: Manifest,
  d: Descriptor,
  repair: boolean,
): Promise<{ blob: BlobInfo; repaired: RepairedLink | undefined } | undefined> {
  const [info, linked] = await Promise.all([reader.blobInfo(d.digest), reader.hasLayerLink(repo, d.digest)]);
  if (info === undefined || (!linked && !repair && d.urls !== undefined)) {
    if (d.urls !== undefined) return undefined;
    const path = blobDataPath(reader.v2, d.digest);
    throw new RegfsError('BLOB_UNKNOWN', `blob ${d.digest} of manifest ${m.digest} is missing from the source ("${path}")`, { path, digest: d.digest });
  }
  const path = layerLinkPath(reader.v2, repo, d.digest);
  if (!linked && !repair) {
    throw new RegfsError(
      'LAYER_UNLINKED',
      `blob ${d.digest} of manifest ${m.digest} has data but no _layers link in repository ${repo} ("${path}"): the registry answers 404 for it; --repair writes the link in the output`,
      { path, digest: d.digest },
    );
  }
  if (d.size >= 0 && info.size !== d.size) {
    throw new RegfsError('SIZE_INVALID', `blob ${d.digest} of manifest ${m.digest} has ${info.size} bytes, the manifest says ${d.size}`, {
      path: info.path,
      digest: d.digest,
    });
  }
  return { blob: info, repaired: linked ? undefined : { repo, digest: d.digest, link: 'layers', missing: path } };
}

function revisionRepair(reader: RegistryReader, repo: RepoName, d: Digest): RepairedLink {
  return { repo, digest: d, link: 'revision', missing: revisionLinkPath(reader.v2, repo, d) };
}

/** A promise's value or its error, so that many can be awaited at once and taken in order. */
export async function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; err: unknown }> {
  try {
    return { ok: true, value: await p };
  } catch (err) {
    return { ok: false, err };
  }
}

/** Prefix a problem with its list line and image, keeping its code. */
function located(err: unknown, entry: ListEntry, name?: string): RegfsError {
  if (!(err instanceof RegfsError)) throw err;
  const what = name ?? formatImageRef(entry.ref);
  const where = entry.at.line > 0 ? `${entry.at.file}:${entry.at.line}` : entry.at.file;
  return new RegfsError(err.code, `${where}: ${what}: ${err.message}`, {
    path: err.path,
    digest: err.digest,
    at: entry.at,
    cause: err.cause,
  });
}
