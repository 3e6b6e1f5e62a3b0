/**
 * The referrers of images (signatures, SBOMs, attestations: storage-formats §1D.5, §4),
 * found offline, transitively. For every manifest of a selected image (the top manifest and
 * every index child), in its repository:
 *
 *   1. the referrers fallback tag `<alg>-<hex>` (an index of referrers) and every manifest it
 *      lists; a listed manifest the source cannot serve is REFERRER_MISSING, and the index is
 *      rewritten to list only what is taken (new bytes, new digest), never a dangling child;
 *   2. every other tag that starts with `<alg>-<hex>` (cosign `.sig`, `.att`, `.sbom`, ...);
 *   3. every revision of the repository whose `subject` is that digest: storage has no
 *      referrers API, so each repository's revisions are read once, the first time a
 *      selected image of it is searched, into a subject → revisions map;
 *   4. recursively, for every manifest so taken (a signature on an SBOM).
 *
 * Each referrer becomes an image of its own for the writers: a tagged one as repo:tag, an
 * untagged one by digest (its revision link only), with its config, layers or children as for
 * any image. A referrer that cannot be taken whole is reported (REFERRER_MISSING) and left
 * out; the image that brought it is written all the same.
 */
import { Problems, RegfsError } from '../errors.js';
import { CHUNK, forEachChunkedAsync } from '../bounded.js';
import { digestAlgorithm, digestHex, digestOf, isDigest, type Digest } from '../digest.js';
import { MediaTypes, parseManifest, parseManifestContent, type Descriptor, type Manifest } from '../manifest.js';
import type { RepoName, Tag } from '../reference.js';
import { MANIFEST_MAX_BYTES, type BlobInfo, type RegistryReader } from '../registry/read.js';
import { revisionsDir } from '../registry/layout.js';
import { resolveTarget, settle, type ResolvedImage } from './resolve.js';

/** One referrer that came along with an image. */
export interface ReferrerInfo {
  digest: Digest;
  /** The tag it is written under (a fallback index, a `.sig` tag), if any. */
  tag: Tag | undefined;
  /** Its `artifactType`, else its config's media type, else its own media type. */
  artifactType: string;
  /** The manifest it refers to (the digest whose tags or `subject` reached it). */
  subject: Digest;
}

/** A referrers fallback index rewritten because the source lacks something it lists. */
export interface RewrittenIndex {
  repo: RepoName;
  tag: Tag;
  /** The index in the source. */
  sourceDigest: Digest;
  /** The index written, listing only what was taken. */
  digest: Digest;
  /** What the source's index lists that was not taken. */
  dropped: Digest[];
}

/** The referrers of a list of images. */
export interface ReferrerClosure {
  /** The referrers, as images for the writers (fallback indexes included), each once. */
  images: ResolvedImage[];
  /** For each selected image, in order, what came along with it. */
  byImage: ReferrerInfo[][];
  rewritten: RewrittenIndex[];
  /** Manifests whose bytes regfs wrote (rewritten indexes): written from `raw`, not linked from the source. */
  derived: Set<Digest>;
}

/** The referrers fallback tag of a digest: `<alg>-<hex>`, the algorithm cut to 32 characters, the hex to 64. */
export function fallbackTag(d: Digest): Tag {
  const alg = digestAlgorithm(d).slice(0, 32).replace(/[^a-zA-Z0-9_.-]/g, '-');
  return `${alg}-${digestHex(d).slice(0, 64)}` as Tag;
}

/**
 * What a referrer is, for a person: its `artifactType`; else its config's media type unless
 * that is a plain image config; else (cosign's `.sig`, `.att`, `.sbom`, whose config is one)
 * its first layer's media type; else its own media type.
 */
export function artifactTypeOf(m: Manifest): string {
  const config = m.config?.mediaType;
  const plain = config === undefined || config === MediaTypes.ociConfig || config === MediaTypes.dockerConfig;
  return m.artifactType ?? (plain ? undefined : config) ?? m.layers[0]?.mediaType ?? m.mediaType;
}

/** Per repository: its tags and its subject map, each read once, when first needed. */
class RepoState {
  private byPrefix: Promise<Map<string, Tag[]>> | undefined;
  private subjects: Promise<Map<Digest, Digest[]>> | undefined;
  /** Direct referrers of a digest, once computed (the images they need are already emitted). */
  readonly direct = new Map<Digest, ReferrerInfo[]>();
  /** Referrer images emitted, by `tag\0digest`. */
  readonly emitted = new Set<string>();
  /** Every manifest of each referrer image, by its digest: an index referrer's children are searched too. */
  readonly manifestsOf = new Map<Digest, Manifest[]>();

  constructor(
    private readonly reader: RegistryReader,
    readonly repo: RepoName,
  ) {}

  /**
   * The repository's tags named after a digest, by that digest's fallback tag (the tag itself
   * and those that start with it: `.sig`, `.att`, `.sbom`); read once, so a repository of
   * many tags costs one pass however many images are searched.
   */
  async tagsOf(d: Digest): Promise<Tag[]> {
    this.byPrefix ??= this.readTags();
    return (await this.byPrefix).get(fallbackTag(d)) ?? [];
  }

  private async readTags(): Promise<Map<string, Tag[]>> {
    const byPrefix = new Map<string, Tag[]>();
    for (const t of await this.reader.listTags(this.repo)) {
      const m = DIGEST_TAG.exec(t);
      if (m === null) continue;
      let l = byPrefix.get(m[1]!);
      if (l === undefined) byPrefix.set(m[1]!, (l = []));
      l.push(t);
    }
    return byPrefix;
  }

  /**
   * Every revision of the repository with a `subject`, by subject; read once. Each revision's
   * bytes are read, and parsed only if they hold the word `subject`; those are kept, checked,
   * in the reader's cache (a referrer found is taken as an image next). Revisions that cannot
   * be read are skipped (verify reports them). The revisions are read a chunk at once (on
   * S3, requests in flight together).
   */
  bySubject(): Promise<Map<Digest, Digest[]>> {
    return (this.subjects ??= this.readSubjects());
  }

  private async readSubjects(): Promise<Map<Digest, Digest[]>> {
    const map = new Map<Digest, Digest[]>();
    const { driver } = this.reader;
    const root = revisionsDir(this.reader.v2, this.repo);
    const revisions: Digest[] = [];
    for (const alg of await driver.list(root)) {
      if (!alg.dir) continue;
      for (const h of await driver.list(`${root}/${alg.name}`)) {
        const d = `${alg.name}:${h.name}`;
        if (h.dir && isDigest(d)) revisions.push(d);
      }
    }
    const subjectIfServed = async (d: Digest): Promise<Descriptor | undefined> => {
      try {
        return (await this.reader.hasRevision(this.repo, d)) ? await subjectOf(this.reader, d) : undefined;
      } catch (err) {
        if (!(err instanceof RegfsError)) throw err;
        return undefined;
      }
    };
    await forEachChunkedAsync(revisions, subjectIfServed, (d, s) => {
      if (s === undefined) return;
      let l = map.get(s.digest);
      if (l === undefined) map.set(s.digest, (l = []));
      l.push(d);
    });
    for (const l of map.values()) l.sort();
    return map;
  }
}

/** A digest's fallback tag at the start of a tag: the algorithms storage accepts, the hex cut to 64. */
const DIGEST_TAG = /^((?:sha256|sha384|sha512)-[0-9a-f]{64})/;

/** The `subject` of the manifest stored under `d`, if it has one. */
async function subjectOf(reader: RegistryReader, d: Digest): Promise<Descriptor | undefined> {
  // The image's own manifests were read already: no second read of those.
  const cached = reader.cachedManifest(d);
  if (cached !== undefined) return cached.subject;
  const info = await reader.blobInfo(d);
  if (info === undefined || info.size > MANIFEST_MAX_BYTES) return undefined;
  let raw: Buffer;
  try {
    const content = await reader.driver.getContent(info.path, MANIFEST_MAX_BYTES);
    if (!Buffer.isBuffer(content)) return undefined;
    raw = content;
  } catch {
    // Unreadable: no referrer regfs could copy (verify reports the revision).
    return undefined;
  }
  if (!raw.includes('"subject"')) return undefined;
  // A manifest with a subject is a referrer, taken as an image next: checked and parsed once
  // for both. One that does not check out is still named by its subject, so that taking it
  // reports why.
  try {
    return reader.manifestFromBytes(d, raw, info.path).subject;
  } catch (err) {
    if (!(err instanceof RegfsError)) throw err;
    return parseManifestContent(raw, d, info.path).subject;
  }
}

/**
 * Find every referrer of every manifest of `images`, transitively, in each image's
 * repository. Problems (REFERRER_MISSING) go to `problems`, located at the list line of the
 * image that reached them. The images are searched one after another (what one emits, the
 * next finds emitted), and the event loop runs every CHUNK images; the referrers of one
 * manifest are read at once (on S3, requests in flight together), taken in order.
 */
export async function findReferrers(reader: RegistryReader, images: ResolvedImage[], opts: { repair: boolean; problems: Problems }): Promise<ReferrerClosure> {
  const closure: ReferrerClosure = { images: [], byImage: [], rewritten: [], derived: new Set() };
  const repos = new Map<RepoName, RepoState>();
  for (const [n, img] of images.entries()) {
    if (n > 0 && n % CHUNK === 0) await new Promise((resolve) => setImmediate(resolve));
    let state = repos.get(img.repo);
    if (state === undefined) repos.set(img.repo, (state = new RepoState(reader, img.repo)));
    const found: ReferrerInfo[] = [];
    const seen = new Set<Digest>(img.manifests.map((m) => m.digest));
    const reported = new Set<string>();
    const work = [...seen];
    for (let i = 0; i < work.length; i++) {
      for (const r of await directReferrers(reader, state, img, work[i]!, opts, closure)) {
        const key = `${r.tag ?? ''}\0${r.digest}`;
        if (!reported.has(key)) {
          reported.add(key);
          found.push(r);
        }
        if (seen.has(r.digest)) continue;
        seen.add(r.digest);
        work.push(r.digest);
        // An index referrer's children are searched too.
        for (const m of state.manifestsOf.get(r.digest) ?? []) {
          if (!seen.has(m.digest)) {
            seen.add(m.digest);
            work.push(m.digest);
          }
        }
      }
    }
    closure.byImage.push(found);
  }
  return closure;
}

/**
 * The direct referrers of `d` in the image's repository; their images are emitted into
 * `closure` once. Each group (the fallback index's children, the other tags, the revisions
 * naming `d`) is resolved at once and taken in order.
 */
async function directReferrers(
  reader: RegistryReader,
  state: RepoState,
  img: ResolvedImage,
  d: Digest,
  opts: { repair: boolean; problems: Problems },
  closure: ReferrerClosure,
): Promise<ReferrerInfo[]> {
  const memo = state.direct.get(d);
  if (memo !== undefined) return memo;
  const out: ReferrerInfo[] = [];
  const taken = new Set<Digest>();
  const repo = state.repo;
  const missing = (what: string, digest: Digest, cause: RegfsError): void => {
    // The cause is located already (the image's list line, the referrer's name).
    opts.problems.add(
      new RegfsError('REFERRER_MISSING', `${cause.message} (${what}, a referrer of ${d}: not copied, the image is copied without it)`, {
        path: cause.path,
        digest,
        at: img.entry.at,
      }),
    );
  };
  // Resolve one referrer image (tagged or not).
  const resolve = (tag: Tag | undefined, digest: Digest): Promise<ResolvedImage | { problems: RegfsError[] }> =>
    resolveTarget(reader, { ref: { repo, tag, digest }, at: img.entry.at }, tag, digest, opts.repair);
  // Take a resolved referrer image; undefined, reported, if it cannot be taken whole.
  const take = (r: ResolvedImage | { problems: RegfsError[] }, digest: Digest, what: string): ResolvedImage | undefined => {
    if ('problems' in r) {
      for (const p of r.problems) missing(what, digest, p);
      return undefined;
    }
    return r;
  };
  const emit = (r: ResolvedImage): void => {
    const key = `${r.tag ?? ''}\0${r.digest}`;
    if (state.emitted.has(key)) return;
    state.emitted.add(key);
    state.manifestsOf.set(r.digest, r.manifests);
    closure.images.push(r);
  };
  const info = (m: Manifest, tag: Tag | undefined): ReferrerInfo => ({ digest: m.digest, tag, artifactType: artifactTypeOf(m), subject: d });

  // 1. The fallback tag: an index listing referrers.
  const ft = fallbackTag(d);
  const tags = await state.tagsOf(d);
  if (tags.includes(ft)) await fallbackIndex(ft);
  // 2. Every other tag with the digest's prefix (.sig, .att, .sbom, ...).
  const resolveTag = async (t: Tag): Promise<{ target: Digest; resolved: ResolvedImage | { problems: RegfsError[] } } | undefined> => {
    const target = await reader.tagDigest(repo, t);
    return target === undefined ? undefined : { target, resolved: await resolve(t, target) };
  };
  const others = tags.filter((t) => t !== ft);
  const tagged = await Promise.all(others.map((t) => settle(resolveTag(t))));
  for (const [i, t] of others.entries()) {
    const x = tagged[i]!;
    if (!x.ok) {
      if (!(x.err instanceof RegfsError)) throw x.err;
      missing(`referrer tag ${repo}:${t}`, d, x.err);
      continue;
    }
    if (x.value === undefined) continue;
    const r = take(x.value.resolved, x.value.target, `referrer tag ${repo}:${t}`);
    if (r === undefined) continue;
    emit(r);
    taken.add(r.digest);
    out.push(info(r.manifest, t));
  }
  // 3. Every revision whose subject is `d`, tagged or not.
  const untaken = ((await state.bySubject()).get(d) ?? []).filter((rd) => !taken.has(rd));
  const bySubject = await Promise.all(untaken.map((rd) => resolve(undefined, rd)));
  for (const [i, rd] of untaken.entries()) {
    const r = take(bySubject[i]!, rd, 'referrer');
    if (r === undefined) continue;
    emit(r);
    taken.add(rd);
    out.push(info(r.manifest, undefined));
  }
  state.direct.set(d, out);
  return out;

  async function fallbackIndex(tag: Tag): Promise<void> {
    let index: Manifest;
    try {
      const target = await reader.tagDigest(repo, tag);
      if (target === undefined) return;
      index = await reader.manifest(target);
    } catch (err) {
      if (!(err instanceof RegfsError)) throw err;
      missing(`referrers index ${repo}:${tag}`, d, err);
      return;
    }
    const kept: ResolvedImage[] = [];
    const dropped: Digest[] = [];
    const children = await Promise.all(index.manifests.map((child) => resolve(undefined, child.digest)));
    for (const [i, child] of index.manifests.entries()) {
      const r = take(children[i]!, child.digest, `referrer listed in ${repo}:${tag}`);
      if (r === undefined) dropped.push(child.digest);
      else {
        kept.push(r);
        emit(r);
        taken.add(r.digest);
        out.push(info(r.manifest, undefined));
      }
    }
    if (dropped.length === 0) {
      const r = take(await resolve(tag, index.digest), index.digest, `referrers index ${repo}:${tag}`);
      if (r !== undefined) {
        emit(r);
        out.push(info(r.manifest, tag));
      }
      return;
    }
    // Rewrite the index to list only what was taken: a tag, so a new digest is fine.
    const doc = JSON.parse(index.raw.toString('utf8')) as { manifests?: Array<{ digest?: unknown }> };
    const keep = new Set(kept.map((k) => k.digest));
    doc.manifests = (doc.manifests ?? []).filter((c) => typeof c.digest === 'string' && keep.has(c.digest as Digest));
    const raw = Buffer.from(JSON.stringify(doc), 'utf8');
    const m = parseManifest(raw, digestOf(raw, digestAlgorithm(index.digest)), `the rewritten referrers index ${repo}:${tag}`);
    closure.derived.add(m.digest);
    closure.rewritten.push({ repo, tag, sourceDigest: index.digest, digest: m.digest, dropped });
    const manifests = [m];
    const blobs = new Map<Digest, BlobInfo>();
    for (const k of kept) {
      for (const x of k.manifests) if (!manifests.some((y) => y.digest === x.digest)) manifests.push(x);
      for (const [bd, b] of k.blobs) blobs.set(bd, b);
    }
    emit({ repo, tag, digest: m.digest, entry: img.entry, manifest: m, manifests, blobs, absentForeign: [], repaired: kept.flatMap((k) => k.repaired) });
    out.push(info(m, tag));
  }
}
