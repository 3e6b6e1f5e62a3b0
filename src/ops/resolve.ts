/**
 * Resolving an image list against registry storage, read-only: every line becomes concrete
 * images (a repository line becomes one image per tag), each with every manifest it needs
 * (an index and all its children, recursively) and every config and layer blob those
 * manifests reference. Every problem is collected, each naming its list line, so a user sees
 * all of them at once.
 */
import { RegfsError } from '../errors.js';
import { forEachChunked } from '../bounded.js';
import type { Digest } from '../digest.js';
import type { ListEntry } from '../image-list.js';
import { formatPlatform, isIndexKind, referencedBlobs, type Descriptor, type Manifest } from '../manifest.js';
import { formatImageRef, looksLikeDomain, type RepoName, type Tag } from '../reference.js';
import type { BlobInfo, RegistryReader } from '../registry/read.js';
import { blobDataPath, revisionLinkPath, tagCurrentLinkPath } from '../registry/layout.js';


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
  /** The top manifest and every descendant, each once, parents before children. */
  manifests: Manifest[];
  /** Configs and layers of every image manifest, present in storage, each once. */
  blobs: Map<Digest, BlobInfo>;
  /** Descriptors with `urls` (foreign layers) whose blob is absent: reported, not fatal. */
  absentForeign: Descriptor[];
}

/** What a list resolved to. */
export interface Resolution {
  images: ResolvedImage[];
  /** One per problem found, each naming its list line; an image with a problem is not in `images`. */
  problems: RegfsError[];
}

/**
 * Resolve every entry; problems are collected, not thrown. The reads are synchronous
 * (RegistryReader), in chunks between which the event loop runs.
 */
export async function resolveImages(reader: RegistryReader, entries: ListEntry[]): Promise<Resolution> {
  const problems: RegfsError[] = [];
  const targets: Target[] = [];
  await forEachChunked(entries, (entry) => {
    try {
      const x = expandEntry(reader, entry);
      // A loop, not push(...x): a repository of 150,000 tags would overflow the stack.
      for (const t of x.targets) targets.push(t);
      for (const p of x.problems) problems.push(p);
    } catch (err) {
      problems.push(located(err, entry));
    }
  });
  const images: ResolvedImage[] = [];
  const seen = new Set<string>();
  await forEachChunked(targets, (t) => {
    const r = resolveTarget(reader, t.entry, t.tag, t.digest);
    if ('problems' in r) {
      for (const p of r.problems) problems.push(p);
      return;
    }
    // `repo` and `repo:tag` lines may select the same image twice; keep one.
    const key = `${r.repo}\0${r.tag ?? ''}\0${r.digest}`;
    if (seen.has(key)) return;
    seen.add(key);
    images.push(r);
  });
  return { images, problems };
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
function expandEntry(reader: RegistryReader, entry: ListEntry): { targets: Target[]; problems: RegfsError[] } {
  const { repo, tag, digest } = entry.ref;
  if (!reader.hasRepository(repo)) {
    const first = repo.split('/')[0]!;
    const hint = repo.includes('/') && looksLikeDomain(first) ? `; the name starts with the registry host ${first}: --strip-registry drops it` : '';
    throw new RegfsError('NAME_UNKNOWN', `repository ${repo} does not exist in the source (no "${reader.repoPath(repo)}/_manifests")${hint}`, {
      path: reader.repoPath(repo),
    });
  }
  if (tag === undefined && digest !== undefined) return { targets: [{ entry, tag: undefined, digest }], problems: [] };
  const tags = tag === undefined ? reader.listTags(repo) : [tag];
  if (tags.length === 0) throw new RegfsError('TAG_UNKNOWN', `repository ${repo} has no tags`, { path: reader.repoPath(repo) });
  const targets: Target[] = [];
  const problems: RegfsError[] = [];
  for (const t of tags) {
    const path = tagCurrentLinkPath(reader.v2, repo, t);
    try {
      const current = reader.tagDigest(repo, t);
      if (current === undefined) throw new RegfsError('TAG_UNKNOWN', `tag ${repo}:${t} does not exist in the source (no "${path}")`, { path });
      if (digest !== undefined && current !== digest) {
        throw new RegfsError('TAG_DIGEST_MISMATCH', `tag ${repo}:${t} points at ${current}, not at ${digest}`, { path, digest: current });
      }
      targets.push({ entry, tag: t, digest: current });
    } catch (err) {
      problems.push(located(err, entry, `${repo}:${t}`));
    }
  }
  return { targets, problems };
}

function resolveTarget(reader: RegistryReader, entry: ListEntry, tag: Tag | undefined, digest: Digest): ResolvedImage | { problems: RegfsError[] } {
  const { repo } = entry.ref;
  const name = `${repo}${tag === undefined ? '' : `:${tag}`}@${digest}`;
  const problems: RegfsError[] = [];
  const fail = (err: unknown): void => {
    problems.push(located(err, entry, name));
  };
  try {
    if (!reader.hasRevision(repo, digest)) {
      throw new RegfsError(
        'MANIFEST_UNKNOWN',
        `manifest ${digest} has no revision link in repository ${repo}, so the registry would not serve it`,
        { digest, path: revisionLinkPath(reader.v2, repo, digest) },
      );
    }
    const top = reader.manifest(digest);
    const manifests: Manifest[] = [];
    const blobs = new Map<Digest, BlobInfo>();
    const absentForeign: Descriptor[] = [];
    const visited = new Set<Digest>();

    const visit = (m: Manifest): void => {
      if (visited.has(m.digest)) return;
      visited.add(m.digest);
      manifests.push(m);
      if (isIndexKind(m.kind)) {
        for (const child of m.manifests) {
          try {
            // The size first, from a stat: a child is read only if it can be what the index says.
            const info = reader.blobInfo(child.digest);
            if (info !== undefined && info.size !== child.size) {
              throw new RegfsError('SIZE_INVALID', `index ${m.digest} gives child ${child.digest} size ${child.size}, its manifest has ${info.size} bytes`, {
                path: info.path,
                digest: child.digest,
              });
            }
            visit(reader.manifest(child.digest));
          } catch (err) {
            fail(childError(err, m, child));
          }
        }
        return;
      }
      for (const d of referencedBlobs(m)) {
        try {
          const info = reader.blobInfo(d.digest);
          if (info === undefined) {
            if (d.urls !== undefined) {
              absentForeign.push(d);
              continue;
            }
            const path = blobDataPath(reader.v2, d.digest);
            throw new RegfsError('BLOB_UNKNOWN', `blob ${d.digest} of manifest ${m.digest} is missing from the source ("${path}")`, { path, digest: d.digest });
          }
          if (d.size >= 0 && info.size !== d.size) {
            throw new RegfsError('SIZE_INVALID', `blob ${d.digest} of manifest ${m.digest} has ${info.size} bytes, the manifest says ${d.size}`, {
              path: info.path,
              digest: d.digest,
            });
          }
          blobs.set(d.digest, info);
        } catch (err) {
          fail(err);
        }
      }
    };
    visit(top);
    if (problems.length > 0) return { problems };
    return { repo, tag, digest, entry, manifest: top, manifests, blobs, absentForeign };
  } catch (err) {
    fail(err);
    return { problems };
  }
}

function childError(err: unknown, parent: Manifest, child: Descriptor): unknown {
  if (!(err instanceof RegfsError) || err.code !== 'BLOB_UNKNOWN') return err;
  const platform = child.platform === undefined ? '' : ` (${formatPlatform(child.platform)})`;
  return new RegfsError('BLOB_UNKNOWN', `index ${parent.digest} names child ${child.digest}${platform}, which is missing from the source`, {
    path: err.path,
    digest: child.digest,
  });
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
