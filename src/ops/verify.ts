/**
 * `verify`: an fsck for registry storage. It reads everything (or, with a list, what the
 * listed images need), goes on past every bad entry, and reports each with its path and a
 * code: link syntax, links whose blob is missing, tags whose revision link or manifest is
 * missing, index children missing, configs and layers missing or without a `_layers` link in
 * their repository, blob data whose sha256 is not its digest (hashed in parallel; `fast`
 * checks sizes only), empty files, leftover temp files, stale uploads, a stale regfs lock.
 *
 * On S3 the tree is read from one listing: links are checked by their listed size and ETag,
 * blob data by its size, no blob data is read; `deep` also reads every link and hashes every blob
 * through the driver. There is no lock on S3, so no lock is checked.
 *
 * `target: 'v3'` adds what distribution v3 would not serve although 2.x does: schema1
 * manifests (v3 cannot read them, and its gc stops at the first), manifests reachable only
 * through a `_layers` link (2.x's fallback, removed in v3), and indexes whose children are
 * absent (sparse: v3 serves the index, and 404 for the children).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pLimit from 'p-limit';
import { PATH_QUOTE_MAX, Problems, quote, RegfsError, type RegfsErrorCode } from '../errors.js';
import { digestAlgorithm, digestFile, digestOf, digestSmallFileSync, SMALL_FILE_BYTES, type Digest } from '../digest.js';
import type { StorageDriver } from '../storage/driver.js';
import { forEachChunked, forEachChunkedAsync } from '../bounded.js';
import { openImageList } from '../image-list.js';
import { isIndexKind, referencedBlobs, type Manifest } from '../manifest.js';
import type { RepoName } from '../reference.js';
import { canJudge, LOCK_FILE, isLiveOwner, lockLeftovers, readLockOwner, type LockOwner } from '../fs/lock.js';
import { revisionLinkPath } from '../registry/layout.js';
import { RegistryReader } from '../registry/read.js';
import { scanStorage, type RepoScan, type StorageScan } from '../registry/scan.js';
import { PhaseProgress, type OnProgress } from '../progress.js';
import { checkJobs, checkUploadAge } from './common.js';
import { VERIFY_TARGETS, type VerifyTarget } from '../defaults.js';
import { resolveImages, settle } from './resolve.js';

/** One problem found. */
export interface Finding {
  code: RegfsErrorCode;
  path: string;
  message: string;
  digest?: string | undefined;
}

export { VERIFY_TARGETS, type VerifyTarget };

export interface VerifyOptions {
  root: string;
  /** Also report what a v3 registry would not serve (default 'v2': the 2.x checks only). */
  target?: VerifyTarget;
  /** Verify only what these images need (an image list, `-`, or a directory of lists). */
  list?: string;
  /** Check sizes, not hashes. */
  fast?: boolean;
  /**
   * On S3: also read every link and hash every blob (through the driver), which verify on S3
   * does not by default. On disk this is what verify does anyway. Not with `fast`.
   */
  deep?: boolean;
  jobs?: number;
  /** An upload older than this many hours is stale (default 24). */
  uploadAgeHours?: number;
  /** The `hash` phase (not with `fast`): blobs and their bytes. */
  onProgress?: OnProgress;
  stdin?: () => Promise<string>;
}

export interface VerifyResult {
  findings: Finding[];
  counts: { repositories: number; tags: number; manifests: number; links: number; blobs: number; bytesHashed: number };
  /** A regfs run that holds the storage's lock right now: findings may be work in progress. */
  liveLock: LockOwner | undefined;
  seconds: number;
}

const EMPTY_SHA256 = digestOf(Buffer.alloc(0));

/** Verify registry storage. */
export async function verify(opts: VerifyOptions): Promise<VerifyResult> {
  const started = performance.now();
  const jobs = checkJobs(opts.jobs);
  checkUploadAge(opts.uploadAgeHours);
  if (opts.target !== undefined && !VERIFY_TARGETS.includes(opts.target)) {
    throw new RegfsError('USAGE', `--target must be one of ${VERIFY_TARGETS.join(', ')}, not ${quote(String(opts.target))}`);
  }
  if (opts.fast === true && opts.deep === true) throw new RegfsError('USAGE', '--fast and --deep exclude each other: --fast checks sizes only, --deep hashes every blob');
  const reader = await RegistryReader.open(opts.root);
  const onS3 = reader.driver.kind === 's3';
  const findings: Finding[] = [];
  const add = (code: RegfsErrorCode, path: string, message: string, digest?: string): void => {
    findings.push({ code, path, message, digest });
  };
  const addError = (err: unknown, fallbackPath: string): void => {
    if (!(err instanceof RegfsError) || isServiceFault(err)) throw err;
    add(err.code, err.path ?? fallbackPath, err.message, err.digest);
  };
  const counts = { repositories: 0, tags: 0, manifests: 0, links: 0, blobs: 0, bytesHashed: 0 };
  const toHash = new Map<Digest, { path: string; size: number }>();

  if (opts.list !== undefined) {
    await verifyListed(reader, opts, { add, addError, toHash, counts });
  } else {
    const scan = await scanStorage(reader.driver, { readLinks: opts.deep === true });
    await verifyAll(reader, scan, opts, { add, addError, toHash, counts });
  }

  // Hash every blob in question: small ones by one read each, in chunks; large ones streamed, in
  // parallel. On S3 (with `deep` only) each is streamed through the driver, `jobs` at once.
  if (opts.fast !== true && (!onS3 || opts.deep === true)) {
    const all = [...toHash];
    let totalBytes = 0;
    for (const [, b] of all) totalBytes += b.size;
    const progress = new PhaseProgress(opts.onProgress, 'hash', all.length, totalBytes);
    const hashed = (d: Digest, blob: { path: string; size: number }, actual: Digest): void => {
      counts.bytesHashed += blob.size;
      if (actual !== d) add('DIGEST_MISMATCH', blob.path, `blob data "${blob.path}" does not match its digest ${d}: its bytes hash to ${actual}`, d);
    };
    const unreadable = (d: Digest, blob: { path: string }, err: unknown): void => {
      if (err instanceof RegfsError && isServiceFault(err)) throw err;
      add('IO_ERROR', blob.path, `reading blob data "${blob.path}": ${(err as Error).message}`, d);
    };
    const limit = pLimit(jobs);
    const streamed = (items: typeof all, digest: (d: Digest, path: string) => Promise<Digest>): Promise<unknown> =>
      Promise.all(
        items.map(([d, blob]) =>
          limit(async () => {
            try {
              hashed(d, blob, await digest(d, blob.path));
            } catch (err) {
              unreadable(d, blob, err);
            }
            progress.add(1, blob.size);
            progress.report();
          }),
        ),
      );
    if (onS3) {
      await streamed(all, (d, path) => digestThrough(reader.driver, path, d));
    } else {
      await forEachChunked(
        all.filter(([, b]) => b.size <= SMALL_FILE_BYTES),
        ([d, blob]) => {
          try {
            hashed(d, blob, digestSmallFileSync(blob.path, digestAlgorithm(d)));
          } catch (err) {
            unreadable(d, blob, err);
          }
          progress.add(1, blob.size);
        },
        () => progress.report(),
      );
      await streamed(
        all.filter(([, b]) => b.size > SMALL_FILE_BYTES),
        (d, path) => digestFile(path, digestAlgorithm(d)),
      );
    }
  }

  const liveLock = onS3 ? undefined : await checkLock(join(reader.v2, LOCK_FILE), add);
  // Stable output: by path, then code, then message (code units, not the locale's collation,
  // so the order is the same everywhere); a finding made twice is then next to its copy.
  findings.sort((a, b) => compare(a.path, b.path) || compare(a.code, b.code) || compare(a.message, b.message));
  return { findings: dedupe(findings), counts, liveLock, seconds: (performance.now() - started) / 1000 };
}

interface Sink {
  add: (code: RegfsErrorCode, path: string, message: string, digest?: string) => void;
  addError: (err: unknown, fallbackPath: string) => void;
  toHash: Map<Digest, { path: string; size: number }>;
  counts: VerifyResult['counts'];
}

async function verifyAll(reader: RegistryReader, scan: StorageScan, opts: VerifyOptions, sink: Sink): Promise<void> {
  const { add, addError, toHash, counts } = sink;
  for (const s of scan.strays) {
    if (s.kind === 'empty') continue; // an empty link directory: the registry's delete leaves them too
    // The path holds a name read from the tree: quoted, so it can be neither a screenful nor two lines.
    const path = quote(s.path, PATH_QUOTE_MAX);
    if (s.kind === 'temp') add('TEMP_FILE', s.path, `${path} is a leftover temp file or directory of an interrupted write; the registry ignores it; safe to delete`);
    else if (s.kind === 'misplaced-blob') add('BLOB_INVALID', s.path, `${path} is not a blob directory (blobs/<alg>/<first two hex>/<hex>); the registry ignores it`);
    else if (s.kind === 'blob-extra') add('BLOB_INVALID', s.path, `${path} is not a blob's data: a blob directory holds its data alone; the registry ignores it`);
    else if (s.kind === 'link-extra') add('LINK_INVALID', s.path, `${path} is not a link: a link's directory holds its link alone; the registry ignores it`);
    else if (s.kind === 'bad-repository-name') add('NAME_INVALID', s.path, `${path} holds _manifests but its path is not a valid repository name; the registry cannot serve it`);
    else if (s.kind === 'loop') add('SYMLINK_LOOP', s.path, `${path} is a symbolic link to a directory that contains it; the registry's catalog and garbage-collect would walk it forever`);
    else if (s.kind === 'alias') add('SYMLINK_ALIAS', s.path, `${path} reaches, through a symbolic link, a directory already reached by another path: two names share it, and a delete through one (the registry's API, its garbage-collect, regfs gc or rm) empties it for both`);
    else if (s.kind === 'not-directory') add('LINK_INVALID', s.path, `${path} is a file where a directory of the repository should be: the registry answers 500 for what is below it, and its garbage-collect stops on it`);
    else if (s.kind === 'tag-not-directory') add('LINK_INVALID', s.path, `${path} is a file where a tag directory should be: the registry lists it as a tag and answers 500 for it, and its garbage-collect stops on it`);
    else add('TAG_INVALID', s.path, `${path} is not a valid tag name; the registry lists it as a tag all the same`);
  }
  for (const b of scan.blobs.values()) {
    counts.blobs++;
    if (b.data === undefined) add('BLOB_UNKNOWN', b.dir, `blob directory "${b.dir}" has no data`, b.digest);
    else if (!b.data.regular) add('BLOB_INVALID', b.data.path, `blob data "${b.data.path}" is ${b.data.what ?? 'not a regular file'}; blob data must be a regular file (or a symbolic link to one)`, b.digest);
    else if (b.data.size === 0 && b.digest !== EMPTY_SHA256) add('EMPTY_FILE', b.data.path, `blob data "${b.data.path}" is empty, but its digest is not that of empty content`, b.digest);
    else toHash.set(b.digest, { path: b.data.path, size: b.data.size });
  }
  // Data that exists counts as present even if it is not a regular file: the registry follows
  // symlinks (BLOB_INVALID says what is wrong with it).
  const present = (d: Digest): boolean => scan.blobs.get(d)?.data !== undefined;
  const v3 = opts.target === 'v3';
  const now = Date.now();
  const maxAge = (opts.uploadAgeHours ?? 24) * 3600_000;

  for (const repo of scan.repos) {
    counts.repositories++;
    // A malformed link still exists: LINK_INVALID reports it once, not again as missing.
    const layerLinks = new Set(repo.layers.map((l) => l.named));
    const revisions = new Set(repo.revisions.map((l) => l.named));
    for (const l of [...repo.layers, ...repo.revisions]) {
      counts.links++;
      if (l.error !== undefined) addError(l.error, l.path);
      else if (!present(l.named)) add('LINK_DANGLING', l.path, `link "${l.path}" points at ${l.named}, whose blob data is missing`, l.named);
    }
    // The manifests of a chunk of revisions are read at once (on S3, requests in flight together), checked in order.
    await forEachChunkedAsync(
      repo.revisions.filter((r) => r.error === undefined && present(r.named)),
      (r) => settle(reader.manifest(r.named)),
      (r, read) => {
        counts.manifests++;
        if (!read.ok) {
          addError(read.err, r.path);
          return;
        }
        checkReferences(repo, read.value, r.path, { present, layerLinks, revisions, scan, add });
        if (v3) checkV3(repo.name, read.value, r.path, { present, layerLinks, revisions, add });
      },
    );
    for (const t of repo.tags) {
      counts.tags++;
      for (const l of t.index) {
        counts.links++;
        if (l.error !== undefined) addError(l.error, l.path);
      }
      if (t.current === undefined) {
        add('TAG_DANGLING', t.dir, `tag ${repo.name}:${t.tag} has no current/link; the registry lists it but cannot serve it`);
        continue;
      }
      counts.links++;
      if (t.current.error !== undefined) addError(t.current.error, t.current.path);
      else if (!revisions.has(t.current.target!) && !layerLinks.has(t.current.target!)) {
        add('TAG_DANGLING', t.current.path, `tag ${repo.name}:${t.tag} points at ${t.current.target}, which has no revision link in the repository: the registry answers 404 for it`, t.current.target);
      } else if (!present(t.current.target!)) add('TAG_DANGLING', t.current.path, `tag ${repo.name}:${t.tag} points at ${t.current.target}, whose manifest data is missing`, t.current.target);
      else if (!revisions.has(t.current.target!)) {
        // Served through the _layers link alone (2.x's fallback): what it references must be
        // served too, down through children that are served the same way (revisions are
        // checked on their own above).
        if (v3) add('V3_LAYERS_FALLBACK', t.current.path, v3LayersMessage(`tag ${repo.name}:${t.tag} points at`, t.current.target!), t.current.target);
        const work = [t.current.target!];
        const seen = new Set(work);
        for (let d = work.pop(); d !== undefined; d = work.pop()) {
          try {
            const m = await reader.manifest(d);
            checkReferences(repo, m, t.current.path, { present, layerLinks, revisions, scan, add });
            if (v3) checkV3(repo.name, m, t.current.path, { present, layerLinks, revisions, add });
            for (const c of m.manifests) {
              if (!seen.has(c.digest) && !revisions.has(c.digest) && layerLinks.has(c.digest) && present(c.digest)) {
                seen.add(c.digest);
                work.push(c.digest);
              }
            }
          } catch (err) {
            addError(err, t.current.path);
          }
        }
      }
    }
    for (const u of repo.uploads) {
      if (now - u.started.getTime() > maxAge) {
        add('STALE_UPLOAD', u.dir, `upload ${quote(u.dir, PATH_QUOTE_MAX)} was started ${u.started.toISOString()} and never finished; safe to delete while no registry is writing`);
      }
    }
  }
}

function checkReferences(
  repo: RepoScan,
  m: Manifest,
  where: string,
  ctx: { present: (d: Digest) => boolean; layerLinks: Set<Digest>; revisions: Set<Digest>; scan: StorageScan; add: Sink['add'] },
): void {
  const { present, layerLinks, revisions, scan, add } = ctx;
  if (isIndexKind(m.kind)) {
    for (const c of m.manifests) {
      if (!present(c.digest)) add('CHILD_MISSING', where, `index ${m.digest} in ${repo.name} names child ${c.digest}, whose manifest data is missing`, c.digest);
      else if (!revisions.has(c.digest) && !layerLinks.has(c.digest)) add('CHILD_MISSING', where, `index ${m.digest} in ${repo.name} names child ${c.digest}, which has no revision link in the repository`, c.digest);
    }
    return;
  }
  for (const d of referencedBlobs(m)) {
    const blob = scan.blobs.get(d.digest);
    if (!present(d.digest)) {
      if (d.urls === undefined) add('BLOB_UNKNOWN', where, `manifest ${m.digest} in ${repo.name} references ${d.digest}, whose blob data is missing`, d.digest);
      continue;
    }
    if (d.size >= 0 && blob?.data?.regular === true && blob.data.size !== d.size) {
      add('SIZE_INVALID', blob.data.path, `blob data "${blob.data.path}" has ${blob.data.size} bytes; manifest ${m.digest} says ${d.size}`, d.digest);
    }
    if (!layerLinks.has(d.digest)) add('LAYER_UNLINKED', where, `manifest ${m.digest} in ${repo.name} references ${d.digest}, which has no _layers link in the repository: the registry answers 404 for it`, d.digest);
  }
}

/**
 * What v3 does differently with one manifest that 2.x serves: it cannot read schema1; it finds
 * an index child only by its revision link; it serves an index whose children are absent.
 */
function checkV3(
  repo: RepoName,
  m: Manifest,
  where: string,
  ctx: { present: (d: Digest) => boolean; layerLinks: Set<Digest>; revisions: Set<Digest>; add: Sink['add'] },
): void {
  const { present, layerLinks, revisions, add } = ctx;
  if (m.kind === 'schema1' || m.kind === 'schema1-signed') {
    add('V3_SCHEMA1', where, `manifest ${m.digest} in ${repo} is schema1 (${m.mediaType}): a v3 registry cannot serve it, and v3's garbage-collect stops at it`, m.digest);
    return;
  }
  if (!isIndexKind(m.kind)) return;
  let absent = 0;
  let first: Digest | undefined;
  for (const c of m.manifests) {
    if (!present(c.digest)) {
      absent++;
      first ??= c.digest;
    } else if (!revisions.has(c.digest) && layerLinks.has(c.digest)) {
      add('V3_LAYERS_FALLBACK', where, v3LayersMessage(`index ${m.digest} in ${repo} names child`, c.digest), c.digest);
    }
  }
  if (absent > 0) {
    add(
      'V3_SPARSE_INDEX',
      where,
      `index ${m.digest} in ${repo} is sparse: ${absent} of its ${m.manifests.length} children are absent (${first} first); a v3 registry serves the index and answers 404 for them, and refuses it on push unless validation.manifests.indexes.platforms allows it`,
      m.digest,
    );
  }
}

function v3LayersMessage(what: string, d: Digest): string {
  return `${what} ${d}, which the repository links only in _layers: 2.x finds it there, a v3 registry answers MANIFEST_UNKNOWN (it reads revision links only)`;
}

async function verifyListed(reader: RegistryReader, opts: VerifyOptions, sink: Sink): Promise<void> {
  const { add, addError, toHash, counts } = sink;
  const v3 = opts.target === 'v3';
  const list = await openImageList(opts.list!, { stdin: opts.stdin });
  const problems = new Problems((p) => addError(p, p.at?.file ?? opts.list!));
  // With `repair`, an image whose configs or layers lack their _layers link still resolves,
  // so its blobs are hashed too; each such link is a LAYER_UNLINKED finding. Children are
  // checked by the resolver as the registry serves them (CHILD_MISSING).
  const resolution = await resolveImages(reader, list.entries(problems), { repair: true, problems });
  // Each repository, manifest (in its repository) and _layers link once, however many listed tags share them.
  const repos = new Set<string>();
  const manifests = new Set<string>();
  const links = new Set<string>();
  for (const img of resolution.images) {
    counts.tags++;
    repos.add(img.repo);
    for (const m of img.manifests) manifests.add(`${img.repo}@${m.digest}`);
    for (const [d, info] of img.blobs) {
      toHash.set(d, info);
      links.add(`${img.repo}@${d}`);
    }
    for (const m of img.manifests) {
      if (v3 && (m.kind === 'schema1' || m.kind === 'schema1-signed')) {
        add('V3_SCHEMA1', revisionLinkPath(reader.v2, img.repo, m.digest), `manifest ${m.digest} in ${img.repo} is schema1 (${m.mediaType}): a v3 registry cannot serve it, and v3's garbage-collect stops at it`, m.digest);
      }
    }
    for (const r of img.repaired) {
      if (r.link === 'layers') add('LAYER_UNLINKED', r.missing, `${img.repo}: ${r.digest} has no _layers link in the repository: the registry answers 404 for it`, r.digest);
      else if (v3) add('V3_LAYERS_FALLBACK', r.missing, v3LayersMessage(`${img.repo}: manifest`, r.digest), r.digest);
    }
  }
  counts.repositories = repos.size;
  counts.manifests = manifests.size;
  counts.links = links.size;
  counts.blobs = toHash.size;
}

/**
 * A lock file held by a live run (returned: findings may be work in progress), or left by a
 * run that died on this host, or unreadable (a STALE_LOCK finding). A lock from another host
 * cannot be judged from here and counts as held.
 */
async function checkLock(path: string, add: Sink['add']): Promise<LockOwner | undefined> {
  for (const left of await lockLeftovers(path)) {
    if (left.notRegular !== undefined) {
      add('STALE_LOCK', left.path, `take-over lock "${left.path}" is ${left.notRegular}, not a lock file regfs wrote; regfs runs that write may refuse (LOCKED) until it is removed`);
    } else add('STALE_LOCK', left.path, `"${left.path}" was left beside the lock by a regfs run that died while taking it; the next regfs run that writes removes it`);
  }
  const held = readLockOwner(path);
  if (held === undefined) return undefined;
  if ('notRegular' in held) {
    add('STALE_LOCK', path, `lock file "${path}" is ${held.notRegular}, not a lock file regfs wrote; regfs runs that write refuse (LOCKED) until it is removed`);
    return undefined;
  }
  const { owner } = held;
  if (owner === undefined) {
    add('STALE_LOCK', path, `lock file "${path}" is unreadable; remove it if no regfs run is writing this storage`);
    return undefined;
  }
  if (isLiveOwner(owner) || !canJudge(owner)) return owner;
  add('STALE_LOCK', path, `lock file "${path}" was left by regfs ${owner.command} (pid ${owner.pid}), which is no longer running; the next regfs run that writes takes it over`);
  return undefined;
}

/** The digest of a file's bytes read through the driver (on S3: one GetObject, streamed). */
async function digestThrough(driver: StorageDriver, path: string, d: Digest): Promise<Digest> {
  const body = await driver.reader(path);
  if (body === undefined) throw new Error('it no longer exists');
  const h = createHash(digestAlgorithm(d));
  for await (const chunk of body as AsyncIterable<Buffer>) h.update(chunk);
  return `${digestAlgorithm(d)}:${h.digest('hex')}` as Digest;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Drop repeated findings from sorted ones: a copy is next to its original (no set of a million keys). */
function dedupe(sorted: Finding[]): Finding[] {
  return sorted.filter((f, i) => {
    const p = sorted[i - 1];
    return p === undefined || p.path !== f.path || p.code !== f.code || p.message !== f.message;
  });
}

/**
 * An S3 service that cannot be reached or refuses the run's credentials says nothing of the
 * storage: the run fails with its code, no finding is made of it.
 */
function isServiceFault(err: RegfsError): boolean {
  return err.code === 'S3_UNREACHABLE' || err.code === 'S3_CREDENTIALS' || err.code === 'S3_BUCKET_UNKNOWN';
}
