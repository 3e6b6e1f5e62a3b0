/**
 * `inspect`: one image in registry storage, read-only, as the registry would serve it: the
 * reference resolved the registry's way (tag `current/link`, then the repository's revision
 * link), the manifest's exact bytes (verified against their digest), and what it holds: for an
 * image manifest its config (summarised from the config JSON, leniently and only for image
 * config media types) and layers with sizes and presence; for schema1 the layers of
 * `fsLayers` and the `v1Compatibility` of the top entry; for an index each child with its
 * platform; for an OCI artifact its `artifactType` and `subject`.
 *
 * This module also holds what `ls` shares: `measureImage` (total size, blob counts and
 * platforms of a manifest and everything below it) and the config summariser. Neither reads
 * a layer's bytes (sizes come from the reader's cached stat of the blob data: on S3, from the
 * repository's listing or a HEAD); only configs, which are small JSON, are read, once per
 * digest, through the reader's storage driver.
 */
import { readFileSync } from 'node:fs';
import { errnoCode, Problems, RegfsError } from '../errors.js';
import type { Digest } from '../digest.js';
import { indexTooDeep, isIndexKind, MAX_INDEX_DEPTH, MediaTypes, referencedBlobs, type Descriptor, type Manifest, type ManifestKind } from '../manifest.js';
import { formatImageRef, parseImageRef, type RepoName, type Tag } from '../reference.js';
import { RegistryReader } from '../registry/read.js';
import type { StorageDriver } from '../storage/driver.js';
import { manifestLevels } from './common.js';
import { formatPlatform, summaryPlatform } from '../platform.js';
import { findReferrers, type ReferrerInfo } from './referrers.js';
import { settle, type ResolvedImage } from './resolve.js';
import { repoDir, revisionLinkPath, tagCurrentLinkPath } from '../registry/layout.js';

/** A config larger than this is not read (real configs are kilobytes). */
export const CONFIG_MAX_BYTES = 16 << 20;

export interface InspectOptions {
  /** Registry root (holds `docker/registry/v2`), or that `v2` directory. */
  root: string;
  /** `repo:tag`, `repo@sha256:<hex>` or `repo:tag@sha256:<hex>` (the tag must point at that digest). */
  ref: string;
}

/** What an image's config says, as far as it could be read. Fields the config lacks are undefined. */
export interface ImageConfigSummary {
  os: string | undefined;
  architecture: string | undefined;
  variant: string | undefined;
  created: string | undefined;
  author: string | undefined;
  user: string | undefined;
  workingDir: string | undefined;
  entrypoint: string[] | undefined;
  cmd: string[] | undefined;
  /** How many `Env` entries. */
  env: number;
  labels: Record<string, string>;
  exposedPorts: string[];
  /** How many `rootfs.diff_ids` (undefined for schema1, which has none). */
  diffIds: number | undefined;
  /** How many `history` entries. */
  history: number | undefined;
}

/** A config or layer blob of an image manifest. */
export interface InspectedBlob {
  digest: Digest;
  mediaType: string | undefined;
  /** The descriptor's size; for schema1 (which gives none) the stored size, or undefined if absent. */
  size: number | undefined;
  /** Blob data is in storage. */
  present: boolean;
  /** The repository has its `_layers` link: without it the registry answers 404 for the blob. */
  linked: boolean;
  /** Foreign or nondistributable content: where the blob lives instead (it may be absent). */
  urls: string[] | undefined;
}

/** A child manifest of an index, or the `subject` of an artifact. */
export interface InspectedManifest {
  digest: Digest;
  mediaType: string | undefined;
  size: number;
  /** `os/arch[/variant]` as the index gives it. */
  platform: string | undefined;
  artifactType: string | undefined;
  /** Blob data is in storage. */
  present: boolean;
  /** The repository links it (a revision link, or 2.x's `_layers` fallback): the registry serves it by digest. */
  linked: boolean;
}

/** Everything `inspect` reports about one image. */
export interface InspectResult {
  /** `repo:tag@digest` or `repo@digest`. */
  ref: string;
  repo: RepoName;
  tag: Tag | undefined;
  digest: Digest;
  kind: ManifestKind;
  mediaType: string;
  /** The manifest's exact stored bytes. */
  raw: Buffer;
  /** Bytes of the manifest itself. */
  size: number;
  /** The manifest, every child manifest and every distinct config and layer present, in bytes. */
  totalSize: number;
  /** Distinct config and layer blobs counted in `totalSize`. */
  blobs: number;
  /** Referenced manifests and blobs the repository does not serve: unlinked there, absent or unreadable (foreign layers excepted). */
  missing: number;
  /** Image: its config's (schema1: its manifest's) platform; index: its children's, nested indexes included. */
  platforms: string[];
  /** OCI: `artifactType`, or the config media type when that is not an image config's. */
  artifactType: string | undefined;
  annotations: Record<string, string> | undefined;
  /** Image manifests (not schema1): the config blob. */
  config: InspectedBlob | undefined;
  /** The config summarised (schema1: from the top `v1Compatibility`). */
  image: ImageConfigSummary | undefined;
  /** Why there is no `image` summary, when there is none. */
  imageNote: string | undefined;
  /** Image manifests: the layers in manifest order (schema1: `fsLayers`, top layer first). */
  layers: InspectedBlob[];
  /** Indexes: the children in index order. */
  manifests: InspectedManifest[];
  /** OCI 1.1: the manifest this one refers to. */
  subject: InspectedManifest | undefined;
  /**
   * What `--with-referrers` would take along: every referrer of the manifest and of its
   * children, transitively (fallback index, `sha256-<hex>*` tags, the subject scan).
   */
  referrers: ReferrerInfo[];
  /** Referrers the source lists or holds that could not be taken whole (REFERRER_MISSING). */
  referrersMissing: number;
}

/** Inspect one image. Throws RegfsError when the reference does not resolve as the registry would resolve it. */
export async function inspectImage(opts: InspectOptions): Promise<InspectResult> {
  const ref = parseImageRef(opts.ref);
  if (ref.tag === undefined && ref.digest === undefined) {
    throw new RegfsError('USAGE', `inspect needs a tag or a digest: ${opts.ref}:TAG or ${opts.ref}@sha256:<hex> ("regfs ls ROOT ${opts.ref}" lists its tags)`);
  }
  const reader = await RegistryReader.open(opts.root);
  const { repo, tag } = ref;
  if (!(await reader.hasRepository(repo))) {
    throw new RegfsError('NAME_UNKNOWN', `repository ${repo} does not exist (no "${repoDir(reader.v2, repo)}/_manifests")`, { path: repoDir(reader.v2, repo) });
  }
  let digest: Digest;
  if (tag !== undefined) {
    const path = tagCurrentLinkPath(reader.v2, repo, tag);
    const current = await reader.tagDigest(repo, tag);
    if (current === undefined) throw new RegfsError('TAG_UNKNOWN', `tag ${repo}:${tag} does not exist (no "${path}")`, { path });
    if (ref.digest !== undefined && ref.digest !== current) {
      throw new RegfsError('TAG_DIGEST_MISMATCH', `tag ${repo}:${tag} points at ${current}, not at ${ref.digest}`, { path, digest: current });
    }
    digest = current;
  } else {
    digest = ref.digest!;
  }
  if ((await reader.manifestLink(repo, digest)) === undefined) {
    const path = revisionLinkPath(reader.v2, repo, digest);
    throw new RegfsError('MANIFEST_UNKNOWN', `manifest ${digest} has no revision link in repository ${repo} (no "${path}", nor a _layers link), so the registry would not serve it`, {
      path,
      digest,
    });
  }
  const m = await reader.manifest(digest);
  const summarize = createConfigSummarizer(reader);
  const measured = await measureImage(reader, repo, m, summarize);

  const result: InspectResult = {
    ref: formatImageRef({ repo, tag, digest }),
    repo,
    tag,
    digest,
    kind: m.kind,
    mediaType: m.mediaType,
    raw: m.raw,
    size: m.raw.length,
    totalSize: measured.size,
    blobs: measured.blobs,
    missing: measured.missing,
    platforms: measured.platforms,
    artifactType: effectiveArtifactType(m),
    annotations: stringMap(parseJson(m.raw)?.['annotations']),
    config: undefined,
    image: undefined,
    imageNote: undefined,
    layers: [],
    manifests: [],
    subject: m.subject === undefined ? undefined : await inspectManifest(reader, repo, m.subject),
    referrers: [],
    referrersMissing: 0,
  };
  const found = await referrersOf(reader, { repo, tag, digest, raw: opts.ref }, m);
  result.referrers = found.referrers;
  result.referrersMissing = found.missing;
  if (isIndexKind(m.kind)) {
    result.manifests = await Promise.all(m.manifests.map((c) => inspectManifest(reader, repo, c)));
    return result;
  }
  result.layers = await Promise.all(m.layers.map((l) => inspectBlob(reader, repo, l)));
  if (m.config !== undefined) {
    result.config = await inspectBlob(reader, repo, m.config);
    const read = await summarize(m.config);
    result.image = read.summary;
    result.imageNote = read.note;
  } else {
    const s = schema1Summary(m);
    result.image = s;
    result.imageNote = s === undefined ? 'the schema1 manifest has no readable v1Compatibility' : undefined;
  }
  return result;
}

/**
 * The referrers of `m` and of every child manifest that can be read (a broken image still
 * lists its referrers), as --with-referrers finds them; how many could not be taken whole.
 * An index's children are read at once (on S3, requests in flight together), taken in order.
 */
async function referrersOf(reader: RegistryReader, ref: { repo: RepoName; tag: Tag | undefined; digest: Digest; raw: string }, m: Manifest): Promise<{ referrers: ReferrerInfo[]; missing: number }> {
  const manifests: Manifest[] = [m];
  const seen = new Set<Digest>([m.digest]);
  for (let i = 0; i < manifests.length; i++) {
    const children = manifests[i]!.manifests.filter((c) => !seen.has(c.digest) && seen.add(c.digest));
    const read = await Promise.all(children.map((c) => settle(reader.manifest(c.digest))));
    for (const r of read) {
      if (r.ok) manifests.push(r.value);
      else if (!(r.err instanceof RegfsError)) throw r.err;
    }
  }
  const image: ResolvedImage = {
    repo: ref.repo,
    tag: ref.tag,
    digest: ref.digest,
    entry: { ref: { repo: ref.repo, tag: ref.tag, digest: ref.digest }, at: { file: ref.raw, line: 0 } },
    manifest: m,
    manifests,
    blobs: new Map(),
    absentForeign: [],
    repaired: [],
  };
  const problems = new Problems();
  const closure = await findReferrers(reader, [image], { repair: false, problems });
  return { referrers: closure.byImage[0]!, missing: problems.count };
}

// ---------------------------------------------------------------------------------------------
// Shared with ls.

/** A config summary, or why there is none. */
export interface ConfigRead {
  summary: ImageConfigSummary | undefined;
  note: string | undefined;
}

/** Summarise a config descriptor's blob; memoised by digest (many images share a config). */
export type ConfigSummarizer = (config: Descriptor) => Promise<ConfigRead>;

/** Media types whose blob is an image config JSON (a descriptor without one is tried too). */
export function isImageConfigType(mediaType: string | undefined): boolean {
  return mediaType === undefined || mediaType === MediaTypes.dockerConfig || mediaType === MediaTypes.ociConfig;
}

/** Where a blob's data is, or undefined if absent (may throw a RegfsError); a reader's lookup waits on its storage. */
export type BlobLookup = (d: Digest) => BlobData | undefined | Promise<BlobData | undefined>;

/** A blob on disk, or its bytes in memory (what a dry run of a tar keeps of its small JSON blobs). */
type BlobData = { path: string; size: number } | { data: Buffer; size: number };

/** A blob's bytes at the path its lookup gave, or why they cannot be read (an errno code, or what is there instead). */
type ReadBlob = (path: string) => Promise<Buffer | { why: string }>;

/**
 * A memoising config summariser over a reader (or any lookup of blob data on disk: the blobs
 * an extract or import plan takes). A reader's configs are read through its storage driver.
 * Never throws for a bad config: it says why in `note`.
 */
export function createConfigSummarizer(source: RegistryReader | BlobLookup): ConfigSummarizer {
  const lookup: BlobLookup = source instanceof RegistryReader ? (d) => source.blobInfo(d) : source;
  const read: ReadBlob = source instanceof RegistryReader ? (path) => readThrough(source.driver, path) : readFromDisk;
  const cache = new Map<Digest, Promise<ConfigRead>>();
  return (config) => {
    let p = cache.get(config.digest);
    if (p === undefined) {
      p = readConfig(lookup, read, config);
      cache.set(config.digest, p);
    }
    return p;
  };
}

/** Size, counts and platforms of a manifest and everything below it. */
export interface ImageMeasure {
  /** The manifest, every child manifest and every distinct config and layer present, in bytes. */
  size: number;
  /** Distinct manifests counted (the top one and every child found). */
  manifests: number;
  /** Distinct config and layer blobs counted. */
  blobs: number;
  /** Referenced manifests and blobs the repository does not serve: unlinked there, absent or unreadable (foreign layers excepted). */
  missing: number;
  platforms: string[];
}

/**
 * Measure a manifest as the registry serves it from `repo`: its bytes, each child manifest's
 * (nested indexes to MAX_INDEX_DEPTH, walked with a worklist), and each distinct config and
 * layer blob the repository serves. A child or blob that the repository does not link, or
 * whose data is absent or unreadable, is counted in `missing`, never thrown: `regfs verify`
 * is the tool that explains it. Indexes nested deeper than MAX_INDEX_DEPTH are INDEX_TOO_DEEP.
 * A manifest's blobs, and an index's children, are looked up at once (on S3, requests in
 * flight together) and counted in order.
 */
export async function measureImage(reader: RegistryReader, repo: RepoName, top: Manifest, summarize: ConfigSummarizer): Promise<ImageMeasure> {
  const seenBlobs = new Set<Digest>();
  const missing = new Set<Digest>();
  const out: ImageMeasure = { size: 0, manifests: 0, blobs: 0, missing: 0, platforms: [] };
  const reached = new Map<Digest, Manifest>([[top.digest, top]]);
  const images: Manifest[] = [];
  const work: Array<{ m: Manifest; depth: number }> = [{ m: top, depth: 0 }];
  for (let i = 0; i < work.length; i++) {
    const { m, depth } = work[i]!;
    out.size += m.raw.length;
    out.manifests++;
    if (!isIndexKind(m.kind)) {
      images.push(m);
      const blobs = referencedBlobs(m).filter((d) => !seenBlobs.has(d.digest) && seenBlobs.add(d.digest));
      const infos = await Promise.all(
        blobs.map((d) => orElse(async () => ((await reader.hasLayerLink(repo, d.digest)) ? reader.blobInfo(d.digest) : undefined), undefined)),
      );
      for (const [j, d] of blobs.entries()) {
        const info = infos[j];
        if (info === undefined) {
          if (d.urls === undefined) missing.add(d.digest);
          continue;
        }
        out.size += info.size;
        out.blobs++;
      }
      continue;
    }
    if (m.manifests.length > 0 && depth >= MAX_INDEX_DEPTH) {
      throw indexTooDeep(m.digest);
    }
    // Each child once, however often the index names it.
    const named = new Set<Digest>();
    const children = m.manifests.filter((c) => !reached.has(c.digest) && !missing.has(c.digest) && !named.has(c.digest) && named.add(c.digest));
    const read = await Promise.all(
      children.map((c) => orElse(async () => ((await reader.manifestLink(repo, c.digest)) === undefined ? undefined : reader.manifest(c.digest)), undefined)),
    );
    for (const [j, c] of children.entries()) {
      const child = read[j];
      if (child === undefined) {
        missing.add(c.digest);
        continue;
      }
      reached.set(c.digest, child);
      work.push({ m: child, depth: depth + 1 });
    }
  }
  out.missing = missing.size;
  // The worklist bounds the depth it reached first; a longer path through shared children counts too.
  if ((manifestLevels([...reached.values()]).get(top.digest) ?? 0) > MAX_INDEX_DEPTH) {
    throw indexTooDeep(top.digest);
  }

  out.platforms = await platformsOf(top, reached, images, summarize);
  return out;
}

/**
 * The platforms of `top`, as ls shows them: an image's from its config (schema1: from its
 * manifest); an index's from its children's descriptors, or (a child without one, such as a
 * nested index) from the child itself; buildx's unknown/unknown attestations left out.
 * `manifests` holds `top` and every descendant found (top first); the same for every command.
 */
export async function manifestPlatforms(manifests: readonly Manifest[], summarize: ConfigSummarizer): Promise<string[]> {
  const top = manifests[0]!;
  return platformsOf(
    top,
    new Map(manifests.map((m) => [m.digest, m])),
    manifests.filter((m) => !isIndexKind(m.kind)),
    summarize,
  );
}

/** manifestPlatforms over what measureImage reached: images first, then indexes, children before parents, by an explicit stack. */
async function platformsOf(top: Manifest, reached: ReadonlyMap<Digest, Manifest>, images: readonly Manifest[], summarize: ConfigSummarizer): Promise<string[]> {
  const platforms = new Map<Digest, string[]>();
  await Promise.all(images.map(async (m) => platforms.set(m.digest, await imagePlatforms(m, summarize))));
  const stack: Manifest[] = [top];
  while (stack.length > 0) {
    const m = stack[stack.length - 1]!;
    if (platforms.has(m.digest)) {
      stack.pop();
      continue;
    }
    const pending = m.manifests.flatMap((c) => {
      const child = c.platform === undefined && !platforms.has(c.digest) ? reached.get(c.digest) : undefined;
      return child === undefined ? [] : [child];
    });
    if (pending.length > 0) {
      stack.push(...pending);
      continue;
    }
    const own = m.manifests.flatMap((c) => {
      if (c.platform === undefined) return platforms.get(c.digest) ?? [];
      // buildx attestation manifests sit in indexes as unknown/unknown: not a platform.
      return c.platform.os === 'unknown' && c.platform.architecture === 'unknown' ? [] : [formatPlatform(c.platform)];
    });
    platforms.set(m.digest, unique(own));
    stack.pop();
  }
  return platforms.get(top.digest)!;
}

/** The platform of an image manifest: from its config, or (schema1) from the manifest. */
async function imagePlatforms(m: Manifest, summarize: ConfigSummarizer): Promise<string[]> {
  const s = m.config === undefined ? schema1Summary(m) : (await summarize(m.config)).summary;
  const p = s === undefined ? undefined : summaryPlatform(s);
  return p === undefined ? [] : [p];
}

export { summaryPlatform };

/**
 * An OCI artifact's type: `artifactType`, or (as the image-spec says) the config media type
 * when it is not an image config's. Undefined for images and indexes without one.
 */
export function effectiveArtifactType(m: Manifest): string | undefined {
  if (m.artifactType !== undefined) return m.artifactType;
  if (m.config !== undefined && !isImageConfigType(m.config.mediaType)) return m.config.mediaType;
  return undefined;
}

// ---------------------------------------------------------------------------------------------

async function readConfig(lookup: BlobLookup, read: ReadBlob, config: Descriptor): Promise<ConfigRead> {
  const none = (note: string): ConfigRead => ({ summary: undefined, note });
  if (!isImageConfigType(config.mediaType)) return none(`the config is not an image config (${config.mediaType})`);
  let info;
  try {
    info = await lookup(config.digest);
  } catch (err) {
    if (!(err instanceof RegfsError)) throw err;
    return none(err.message);
  }
  if (info === undefined) return none(`the config blob ${config.digest} is missing from storage`);
  if (info.size > CONFIG_MAX_BYTES) return none(`the config blob is ${info.size} bytes, too large to summarise`);
  const raw = 'data' in info ? info.data : await read(info.path);
  if (!Buffer.isBuffer(raw)) return none(`the config blob "${'path' in info ? info.path : config.digest}" cannot be read: ${raw.why}`);
  const doc = parseJson(raw);
  if (doc === undefined) return none(`the config blob ${config.digest} is not a JSON object`);
  return { summary: summarizeConfigDoc(doc), note: undefined };
}

/** A blob's bytes from a path on disk (a plan's lookup gives those). */
async function readFromDisk(path: string): Promise<Buffer | { why: string }> {
  try {
    return readFileSync(path);
  } catch (err) {
    return { why: (err as NodeJS.ErrnoException).code ?? String(err) };
  }
}

/** At most CONFIG_MAX_BYTES (a size the caller has checked) of a blob, through a driver. */
async function readThrough(driver: StorageDriver, path: string): Promise<Buffer | { why: string }> {
  try {
    const content = await driver.getContent(path, CONFIG_MAX_BYTES);
    // Gone since its stat: as reading a file that is gone says.
    if (content === undefined) return { why: 'ENOENT' };
    return Buffer.isBuffer(content) ? content : { why: content.notRegular };
  } catch (err) {
    return { why: errnoCode(err instanceof RegfsError ? err.cause : err) ?? (err instanceof Error ? err.message : String(err)) };
  }
}

/** Summarise an image config document (Docker or OCI; the two share these fields). */
function summarizeConfigDoc(doc: Record<string, unknown>): ImageConfigSummary {
  const c = asObject(doc['config']) ?? {};
  const rootfs = asObject(doc['rootfs']);
  const diffIds = rootfs?.['diff_ids'];
  const history = doc['history'];
  return {
    os: str(doc['os']),
    architecture: str(doc['architecture']),
    variant: str(doc['variant']),
    created: str(doc['created']),
    author: str(doc['author']),
    user: nonEmpty(str(c['User'])),
    workingDir: nonEmpty(str(c['WorkingDir'])),
    entrypoint: strList(c['Entrypoint']),
    cmd: strList(c['Cmd']),
    env: Array.isArray(c['Env']) ? c['Env'].length : 0,
    labels: stringMap(c['Labels']) ?? {},
    exposedPorts: Object.keys(asObject(c['ExposedPorts']) ?? {}).sort(),
    diffIds: Array.isArray(diffIds) ? diffIds.length : undefined,
    history: Array.isArray(history) ? history.length : undefined,
  };
}

/**
 * Schema1 carries no config blob: the manifest's `architecture` and the top `history`
 * entry's `v1Compatibility` (a JSON string of the top layer's v1 image) stand in for it.
 */
function schema1Summary(m: Manifest): ImageConfigSummary | undefined {
  const doc = parseJson(m.raw);
  if (doc === undefined) return undefined;
  const history = Array.isArray(doc['history']) ? doc['history'] : [];
  const top = asObject(history[0]);
  const v1 = typeof top?.['v1Compatibility'] === 'string' ? parseJson(Buffer.from(top['v1Compatibility'])) : undefined;
  const s = summarizeConfigDoc(v1 ?? {});
  return {
    ...s,
    architecture: str(doc['architecture']) ?? s.architecture,
    diffIds: undefined,
    history: history.length,
  };
}

async function inspectBlob(reader: RegistryReader, repo: RepoName, d: Descriptor): Promise<InspectedBlob> {
  const [info, linked] = await Promise.all([orElse(() => reader.blobInfo(d.digest), undefined), orElse(() => reader.hasLayerLink(repo, d.digest), false)]);
  return {
    digest: d.digest,
    mediaType: d.mediaType,
    size: d.size >= 0 ? d.size : info?.size,
    present: info !== undefined,
    linked,
    urls: d.urls,
  };
}

async function inspectManifest(reader: RegistryReader, repo: RepoName, d: Descriptor): Promise<InspectedManifest> {
  const [info, linked] = await Promise.all([
    orElse(() => reader.blobInfo(d.digest), undefined),
    orElse(async () => (await reader.manifestLink(repo, d.digest)) !== undefined, false),
  ]);
  return {
    digest: d.digest,
    mediaType: d.mediaType,
    size: d.size,
    platform: d.platform === undefined ? undefined : formatPlatform(d.platform),
    artifactType: d.artifactType,
    present: info !== undefined,
    linked,
  };
}

function parseJson(raw: Buffer): Record<string, unknown> | undefined {
  try {
    return asObject(JSON.parse(raw.toString('utf8')));
  } catch {
    return undefined;
  }
}

function asObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === '' ? undefined : s;
}

/** A list of strings; a lone string (as some tools write `Cmd`) becomes a list of one. */
function strList(v: unknown): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  return undefined;
}

/** The string-valued entries of an object, or undefined if it is not one. */
function stringMap(v: unknown): Record<string, string> | undefined {
  const o = asObject(v);
  if (o === undefined) return undefined;
  return Object.fromEntries(Object.entries(o).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** What `f()` comes to, or `fallback` if it fails with a RegfsError. */
async function orElse<T, F>(f: () => Promise<T>, fallback: F): Promise<T | F> {
  try {
    return await f();
  } catch (err) {
    if (!(err instanceof RegfsError)) throw err;
    return fallback;
  }
}
