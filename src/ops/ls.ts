/**
 * `ls`: the repositories of registry storage as the registry's catalog finds them (nested
 * names, names with a registry host, repositories without tags) and each tag with what it
 * points at: digest, media type and kind, platforms, and total size. Read-only.
 *
 * Which directories are repositories: docker-registry 2.x's catalog (2.8.2 included) lists a
 * directory that holds `_layers`; v3's lists one that holds `_manifests`. Both walk on into the
 * other subdirectories (nested names) and skip those starting with `_`. `ls` lists what either
 * would list, in the catalog's order (component by component, so `a`, `a/b`, `a-b`).
 *
 * A tag is read the registry's way: `current/link`, then the repository's revision link, then
 * the manifest blob (hashed against its digest). A tag that fails any of these is listed with
 * its `error` and the listing goes on, as the registry goes on serving the other tags; the
 * `regfs verify` command is the tool for explaining damage. A name in the tags directory that
 * no request can name is listed too, as the registry's tag list names it, with TAG_INVALID.
 * Sizes come from a stat of the blob data (on S3, the repository's listing or a HEAD; the
 * reader caches them by digest, so shared layers are looked at once); only manifests and
 * image configs (for platforms) are read. Tags are described in parallel, `jobs` at a time.
 */
import pLimit from 'p-limit';
import { quote, RegfsError } from '../errors.js';
import type { Digest } from '../digest.js';
import type { ManifestKind } from '../manifest.js';
import { isTag, type RepoName, type Tag } from '../reference.js';
import { RegistryReader } from '../registry/read.js';
import { blobsDir, revisionLinkPath, tagCurrentLinkPath } from '../registry/layout.js';
import { checkJobs } from './common.js';
import { unnamableTag } from './resolve.js';
import { fallbackTag } from './referrers.js';
import { createConfigSummarizer, effectiveArtifactType, measureImage, type ConfigSummarizer } from './inspect.js';

export interface ListOptions {
  /** Registry root (holds `docker/registry/v2`), or that `v2` directory. */
  root: string;
  /**
   * A glob over repository names (`*` and `?` within a path component, `**` across them),
   * optionally followed by `:` and a glob over tags: `team/**`, `**` + `/busybox`, `team/**:v1*`.
   * A `:` followed by a `/` belongs to a registry host (`localhost:5000/app`), not to a tag
   * glob. An empty repository part (`:latest`) means every repository.
   */
  pattern?: string;
  /** Tags described at once (default 16). */
  jobs?: number;
}

/** One tag and what it points at. */
export interface TagListing {
  /** The name in the tags directory: a valid tag, or (with a TAG_INVALID error) a name no request can name. */
  tag: string;
  /** What `current/link` names; absent when that link is missing or malformed. */
  digest?: Digest;
  /** The rest is absent when `error` is set. */
  mediaType?: string;
  kind?: ManifestKind;
  /** OCI artifacts: `artifactType`, or the config media type when it is not an image config's. */
  artifactType?: string;
  /** Image: from its config (schema1: its manifest); index: its children's, nested indexes included. */
  platforms: string[];
  /** The manifest, every child manifest and every distinct config and layer blob present, in bytes. */
  size?: number;
  /** Distinct config and layer blobs counted in `size`. */
  blobs?: number;
  /** Referenced manifests and blobs the repository does not serve: unlinked there, absent or unreadable (foreign layers excepted). */
  missing?: number;
  /**
   * How many tags of the repository carry the manifest's referrers: its fallback tag
   * `sha256-<hex>` and tags that start with it (`.sig`, `.att`, `.sbom`); absent if none. A
   * cheap mark from the tag names alone: `inspect` lists every referrer, untagged ones too.
   */
  referrerTags?: number;
  /** Why the registry could not serve this tag: a missing or malformed link, a damaged manifest. */
  error?: RegfsError;
}

/** One repository; `tags` is empty for a repository without tags. */
export interface RepoListing {
  name: RepoName;
  tags: TagListing[];
}

export interface ListResult {
  /** The storage root read (`…/docker/registry/v2`). */
  storage: string;
  /** Repositories in catalog order (`compareRepoNames` in registry/read.ts), tags sorted within each. */
  repositories: RepoListing[];
}

/** List repositories and tags. Throws only for an unusable root, pattern or `jobs`. */
export async function listImages(opts: ListOptions): Promise<ListResult> {
  const jobs = checkJobs(opts.jobs);
  const pattern = parseListPattern(opts.pattern);
  const reader = await RegistryReader.open(opts.root);
  const limit = pLimit(jobs);
  const summarize = createConfigSummarizer(reader);

  const repos = (await reader.listRepositories()).filter((r) => pattern.repo.test(r));
  // Every image of the store is described: on S3 one listing of the blob store (a request per
  // 1,000 blobs) answers the stats of every manifest and config, instead of a HEAD each.
  if (opts.pattern === undefined) await reader.driver.prefetch?.(blobsDir(reader.v2));
  const tagged = await Promise.all(
    repos.map((name) =>
      limit(async () => {
        const all = await reader.listTagNames(name);
        return { name, tags: all.filter((t) => pattern.tag === undefined || pattern.tag.test(t)), referrerTags: countReferrerTags(all.filter(isTag)) };
      }),
    ),
  );
  const repositories = await Promise.all(
    tagged
      // With a tag glob, a repository none of whose tags match is not listed.
      .filter((r) => pattern.tag === undefined || r.tags.length > 0)
      .map(async (r) => ({
        name: r.name,
        tags: await Promise.all(
          r.tags.map((tag) =>
            limit(async () => {
              if (!isTag(tag)) return unnamable(reader, r.name, tag);
              const t = await describeTag(reader, r.name, tag, summarize);
              const n = t.digest === undefined ? undefined : r.referrerTags.get(fallbackTag(t.digest));
              return n === undefined ? t : { ...t, referrerTags: n };
            }),
          ),
        ),
      })),
  );
  return { storage: reader.v2, repositories };
}

/** Compiled `ls` pattern: a repository glob and an optional tag glob, both anchored. */
/**
 * Tags named after a digest, counted by the digest's fallback tag (`<alg>-` and the first 64
 * hex digits, as `fallbackTag` cuts it): the fallback tag itself and `.sig`, `.att`, `.sbom`.
 */
function countReferrerTags(tags: Tag[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of tags) {
    const m = /^(sha(?:256|384|512)-[0-9a-f]{64})/.exec(t);
    if (m !== null) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
  }
  return counts;
}

export interface ListPattern {
  repo: Glob;
  tag: Glob | undefined;
}

/** Split and compile an `ls` pattern (see `ListOptions.pattern`); no pattern matches everything. */
export function parseListPattern(pattern: string | undefined): ListPattern {
  if (pattern === undefined || pattern === '') return { repo: compileGlob('**'), tag: undefined };
  const colon = pattern.lastIndexOf(':');
  if (colon < 0 || colon < pattern.lastIndexOf('/')) return { repo: compileGlob(pattern), tag: undefined };
  const repo = pattern.slice(0, colon);
  const tag = pattern.slice(colon + 1);
  if (tag === '') throw new RegfsError('USAGE', `pattern ${quote(pattern)} has an empty tag glob after ":"`);
  return { repo: compileGlob(repo === '' ? '**' : repo), tag: compileGlob(tag) };
}

/** A compiled glob: whether a whole name matches it. */
export interface Glob {
  readonly glob: string;
  test(name: string): boolean;
}

/**
 * One step of a glob: a character, `?`, `*`, `**`, or `**` + `/` at the start or after a `/`
 * (two states: before it, where it may match nothing, and within it, left only by a `/`).
 */
type GlobStep = { k: 'char'; c: string } | { k: 'one' } | { k: 'star' } | { k: 'any' } | { k: 'dirs' } | { k: 'inDirs' };

/**
 * Compile a glob over `/`-separated names: `*` is any run of characters but `/`, `?` one
 * character but `/`, `**` any run including `/`; `**` + `/` at the start or after a `/` may
 * also match no component at all (`**` + `/busybox` matches `busybox`). Every other character
 * matches itself, anchored at both ends. Matching runs the steps as an automaton over every
 * state at once: time proportional to the name's length times the glob's, whatever the glob
 * (a backtracking regular expression takes exponential time on `*a*a*a*a*a*a*b`).
 */
export function compileGlob(glob: string): Glob {
  const steps: GlobStep[] = [];
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      let j = i;
      while (glob[j] === '*') j++;
      if (j - i === 1) {
        steps.push({ k: 'star' });
      } else if ((i === 0 || glob[i - 1] === '/') && glob[j] === '/') {
        steps.push({ k: 'dirs' }, { k: 'inDirs' });
        j++; // the slash ends the group
      } else {
        steps.push({ k: 'any' });
      }
      i = j - 1;
    } else {
      steps.push(c === '?' ? { k: 'one' } : { k: 'char', c });
    }
  }
  const end = steps.length;
  // Steps that may match nothing lead on at once: a `dirs` group past its own two states.
  const close = (set: Uint8Array): void => {
    for (let s = 0; s < end; s++) {
      if (set[s] !== 1) continue;
      const k = steps[s]!.k;
      if (k === 'star' || k === 'any') set[s + 1] = 1;
      else if (k === 'dirs') set[s + 2] = 1;
    }
  };
  return {
    glob,
    test(name: string): boolean {
      let now = new Uint8Array(end + 1);
      now[0] = 1;
      close(now);
      for (let i = 0; i < name.length; i++) {
        const ch = name[i]!;
        const next = new Uint8Array(end + 1);
        let any = false;
        for (let s = 0; s < end; s++) {
          if (now[s] !== 1) continue;
          const step = steps[s]!;
          switch (step.k) {
            case 'char':
              if (ch === step.c) next[s + 1] = 1;
              break;
            case 'one':
              if (ch !== '/') next[s + 1] = 1;
              break;
            case 'star':
              if (ch !== '/') next[s] = 1;
              break;
            case 'any':
              next[s] = 1;
              break;
            case 'dirs':
            case 'inDirs': {
              const inside = step.k === 'dirs' ? s + 1 : s;
              next[inside] = 1;
              if (ch === '/') next[inside + 1] = 1;
              break;
            }
          }
        }
        close(next);
        for (let s = 0; s <= end && !any; s++) any = next[s] === 1;
        if (!any) return false;
        now = next;
      }
      return now[end] === 1;
    },
  };
}

/**
 * A name in the tags directory that is no tag: the registry's tag list names it, and no
 * request can (its routes take `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`), so it is never served.
 */
function unnamable(reader: RegistryReader, repo: RepoName, name: string): TagListing {
  return { tag: name, platforms: [], error: unnamableTag(reader.v2, repo, name) };
}

async function describeTag(reader: RegistryReader, repo: RepoName, tag: Tag, summarize: ConfigSummarizer): Promise<TagListing> {
  let digest: Digest | undefined;
  try {
    digest = await reader.tagDigest(repo, tag);
    if (digest === undefined) {
      const path = tagCurrentLinkPath(reader.v2, repo, tag);
      throw new RegfsError('TAG_UNKNOWN', `tag ${repo}:${tag} has a directory but no "${path}"`, { path });
    }
    if ((await reader.manifestLink(repo, digest)) === undefined) {
      const path = revisionLinkPath(reader.v2, repo, digest);
      throw new RegfsError('MANIFEST_UNKNOWN', `tag ${repo}:${tag} points at ${digest}, which has no revision link "${path}" (nor a _layers link): the registry answers 404 for it`, { path, digest });
    }
    const m = await reader.manifest(digest);
    const measured = await measureImage(reader, repo, m, summarize);
    const artifactType = effectiveArtifactType(m);
    return {
      tag,
      digest,
      mediaType: m.mediaType,
      kind: m.kind,
      ...(artifactType === undefined ? {} : { artifactType }),
      platforms: measured.platforms,
      size: measured.size,
      blobs: measured.blobs,
      missing: measured.missing,
    };
  } catch (err) {
    // Anything but a RegfsError is a bug in regfs, not damage in the storage.
    if (!(err instanceof RegfsError)) throw err;
    return { tag, ...(digest === undefined ? {} : { digest }), platforms: [], error: err };
  }
}
