/**
 * `inventory`: what a registry's storage (or an OCI image layout) holds, as the inventory
 * file docs/bundle.md specifies, written by src/inventory/write.ts. A bundle made against it
 * leaves out what it lists, so it lists only what the far side would really serve:
 *
 * - blobs: the `data` files of `blobs/<alg>/<xx>/<hex>/` that the registry would read there
 *   (a regular file, or a symbolic link to one); an empty blob directory or one holding only
 *   a temp file of a killed run holds none; a misplaced or misnamed one is never read.
 * - repositories: as the catalog finds them (RegistryReader.listRepositories), valid names only.
 * - tags: every tag whose `current/link` names a manifest the repository serves (a revision
 *   link, or the `_layers` link 2.x falls back to, and its blob data): a tag left behind by a
 *   deleted manifest is served by no registry, so it is left out.
 * - manifests: every revision link whose manifest has its blob data, and every manifest a
 *   listed tag names through the `_layers` fallback (the registry serves it by digest too).
 *
 * Anything that makes the registry answer 500 (a malformed link, a FIFO where data should
 * be) is left out too, with a warning naming it: leaving a thing out only makes a bundle
 * carry it, where listing it would make the bundle rely on it. Nothing is opened that is not
 * a regular file (no FIFO can block the run), and nothing in the source is written.
 *
 * The walk sorts each directory's names as it goes (digests at each level of the fan-out,
 * so the blob lines come out in digest order without being held), and yields to the event
 * loop every CHUNK entries while the lines stream to the output.
 */
import { closeSync, lstatSync, openSync, readdirSync, renameSync, rmSync, writeSync, type Stats } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CHUNK } from '../bounded.js';
import { DIGEST_ALGORITHMS, isDigest, type Digest } from '../digest.js';
import { errnoCode, ioError, quote, RegfsError } from '../errors.js';
import { assertOutputFileDirectory, tempPathFor } from '../fs/atomic.js';
import { canJudge, isLiveOwner, LOCK_FILE, readLockOwner } from '../fs/lock.js';
import { InventoryWriter, type InventoryCounts, type InventorySink } from '../inventory/write.js';
import { CONTAINERD_NAME, INDEX_FILE, OCI_LAYOUT_FILE, REF_NAME, entryName } from '../oci/layout.js';
import { isRepoName, isTag, type RepoName, type Tag } from '../reference.js';
import { isDirectoryFollowing, statData } from '../registry/follow.js';
import { fileKind } from '../registry/link-file.js';
import { blobsDir, revisionsDir } from '../registry/layout.js';
import { findStorageRoot, openRegistryStorage, RegistryReader, whyNotRegistry } from '../registry/read.js';
import type { StorageDriver } from '../storage/driver.js';
import { fsStorage, isS3Root } from '../storage/open.js';
import { settle } from './resolve.js';
import { parseIndex, readLayoutFiles } from './from-oci.js';
import { assertOutsideSource } from './output-root.js';

export interface InventoryOptions {
  /** Registry storage (a registry root or its `docker/registry/v2`) or an OCI image layout directory. */
  root: string;
  /**
   * Where the inventory goes: a file path (written by temp file and rename in its directory;
   * a symbolic link there is replaced, never followed), or a stream (standard output).
   * Without it nothing is written: the identity and counts are still made.
   */
  output?: string | NodeJS.WritableStream;
  /** Each thing left out because the registry could not serve it, as it is found. */
  onWarning?: (message: string) => void;
}

export interface InventoryResult extends InventoryCounts {
  /** What ROOT is. */
  format: 'registry' | 'oci-layout';
  /** The storage root read (`…/docker/registry/v2`), the layout directory, or on S3 `s3://BUCKET/PREFIX`. */
  source: string;
  /** The file written; null for a stream or no output. */
  output: string | null;
  warnings: string[];
  seconds: number;
}

/** Make the inventory of `root`. */
export async function inventory(opts: InventoryOptions): Promise<InventoryResult> {
  if (typeof opts.output === 'string' && isS3Root(opts.output)) {
    throw new RegfsError('USAGE', `-o names a local file, not an object on S3 (${opts.output})`, { path: opts.output });
  }
  if (isS3Root(opts.root)) return s3Inventory(opts);
  const started = performance.now();
  const root = resolve(opts.root);
  const layout = isOciLayoutDir(root);
  const v2 = layout ? undefined : await findStorageRoot(root);
  if (!layout && v2 === undefined) {
    // A file here is no list given out of order (there is no list): say what it is, plainly.
    const st = statData(root);
    const why = st !== undefined && st.notRegular === undefined ? 'it is a file, not a directory' : whyNotRegistry(opts.root);
    throw new RegfsError('NOT_REGISTRY', `"${opts.root}" is neither registry storage nor an OCI image layout: ${why}`, { path: opts.root });
  }
  const source = v2 ?? root;
  const file = typeof opts.output === 'string' ? resolve(opts.output) : undefined;
  if (file !== undefined) {
    await assertOutsideSource(opts.root, source, file, file);
    checkOutputFile(file);
  }
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    opts.onWarning?.(m);
  };

  if (v2 !== undefined) {
    const held = readLockOwner(`${v2}/${LOCK_FILE}`);
    // As verify tells it: a live owner here, or any owner on another host (it cannot be checked).
    if (held !== undefined && 'owner' in held && held.owner !== undefined && (isLiveOwner(held.owner) || !canJudge(held.owner))) {
      const o = held.owner;
      warn(`regfs ${o.command} (pid ${o.pid} on ${o.host}) is writing this storage now: the inventory lists what it has finished (it writes tags last), not what it is still writing`);
    }
  }
  const run = async (sink: InventorySink): Promise<InventoryCounts> => {
    const w = new InventoryWriter(sink);
    if (v2 !== undefined) await registryInventory(fsStorage(v2), w, warn);
    else await layoutInventory(root, w, warn);
    return w.end();
  };
  const counts = await runInto(opts.output, file, run);
  return { ...counts, format: v2 === undefined ? 'oci-layout' : 'registry', source, output: file ?? null, warnings, seconds: (performance.now() - started) / 1000 };
}

/**
 * The inventory of registry storage on S3 (`s3://BUCKET/PREFIX`), the same bytes as of the
 * same tree on disk, from listings: the blobs from one flat listing per digest algorithm
 * (one request per 1,000 keys), each repository's links from one listing of `repositories/`
 * (RegistryReader), a HEAD per manifest for its blob data. There is no lock on S3 to look
 * at. The output is a local file or a stream, as on disk.
 */
async function s3Inventory(opts: InventoryOptions): Promise<InventoryResult> {
  const started = performance.now();
  const driver = await openRegistryStorage(opts.root);
  const file = typeof opts.output === 'string' ? resolve(opts.output) : undefined;
  if (file !== undefined) checkOutputFile(file);
  const warnings: string[] = [];
  const warn = (m: string): void => {
    warnings.push(m);
    opts.onWarning?.(m);
  };
  const run = async (sink: InventorySink): Promise<InventoryCounts> => {
    const w = new InventoryWriter(sink);
    await registryInventory(driver, w, warn);
    return w.end();
  };
  const counts = await runInto(opts.output, file, run);
  return { ...counts, format: 'registry', source: driver.location, output: file ?? null, warnings, seconds: (performance.now() - started) / 1000 };
}

/** Run `make` into the file, the stream, or nowhere. */
function runInto(output: InventoryOptions['output'], file: string | undefined, make: (sink: InventorySink) => Promise<InventoryCounts>): Promise<InventoryCounts> {
  if (file !== undefined) return writeFile(file, make);
  if (output !== undefined && typeof output !== 'string') return make(streamSink(output));
  return make(() => undefined);
}

/** A directory holding `oci-layout` or `index.json` (as from-oci tells a layout). */
function isOciLayoutDir(dir: string): boolean {
  if (!isDirectoryFollowing(dir)) return false;
  return statData(`${dir}/${OCI_LAYOUT_FILE}`) !== undefined || statData(`${dir}/${INDEX_FILE}`) !== undefined;
}

/** The output file must not be a directory (the rename would fail after the whole walk). */
function checkOutputFile(file: string): void {
  let st: Stats | undefined;
  try {
    st = lstatSync(file, { throwIfNoEntry: false });
  } catch (err) {
    assertOutputFileDirectory(file);
    throw ioError('reading', file, err);
  }
  if (st === undefined) assertOutputFileDirectory(file);
  if (st === undefined || st.isFile() || st.isSymbolicLink()) return;
  if (st.isDirectory()) throw new RegfsError('OUTPUT_UNWRITABLE', `output "${file}" is a directory; -o names the inventory file`, { path: file });
  // The rename would replace a FIFO or a device node (as root, -o /dev/null would replace /dev/null).
  throw new RegfsError('OUTPUT_NOT_FILE', `output "${file}" is ${fileKind(st)}; regfs writes an inventory as a new or regular file (or to standard output without -o)`, { path: file });
}

/**
 * Run `make` into a temp file beside `file`, then rename it into place: a reader sees the
 * old file or the whole new one. The temp file is created exclusively (a symbolic link at
 * its name is not followed) and the rename replaces a symbolic link at `file`, never
 * following it; a failure removes the temp file.
 */
function writeFile(file: string, make: (sink: InventorySink) => Promise<InventoryCounts>): Promise<InventoryCounts> {
  const tmp = tempPathFor(file);
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', 0o644);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new RegfsError('OUTPUT_UNWRITABLE', `cannot write "${file}": its directory "${dirname(file)}" does not exist`, { path: file, cause: err });
    throw ioError('writing', file, err);
  }
  const sink: InventorySink = (chunk) => {
    try {
      for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
    } catch (err) {
      throw ioError('writing', tmp, err);
    }
  };
  return make(sink).then(
    (counts) => {
      try {
        closeSync(fd);
        renameSync(tmp, file);
      } catch (err) {
        rmSync(tmp, { force: true });
        throw ioError(`writing ${basename(file)}: renaming`, tmp, err);
      }
      return counts;
    },
    (err: unknown) => {
      closeSync(fd);
      rmSync(tmp, { force: true });
      throw err;
    },
  );
}

/**
 * Chunks to a stream, waiting while it is full. Once the stream is gone (EPIPE: the reader
 * has left, as `head` does) the rest is dropped quietly; the run goes on to its end.
 */
function streamSink(stream: NodeJS.WritableStream): InventorySink {
  const s = stream as NodeJS.WritableStream & { destroyed?: boolean; writableNeedDrain?: boolean };
  return (chunk) => {
    if (s.destroyed === true) return undefined;
    if (s.write(chunk)) return undefined;
    return new Promise<void>((done) => {
      const finish = (): void => {
        s.off('drain', finish);
        s.off('close', finish);
        s.off('error', finish);
        done();
      };
      s.on('drain', finish);
      s.on('close', finish);
      s.on('error', finish);
    });
  };
}

/** A directory's names, sorted; [] if it is not there. */
function sortedNames(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw ioError('reading', dir, err);
  }
}

/** Yield to the event loop (and let the output drain) every CHUNK entries. */
function pacer(w: InventoryWriter): () => Promise<void> {
  let n = 0;
  return async () => {
    if (++n % CHUNK !== 0) return;
    await w.drain();
    await new Promise((r) => setImmediate(r));
  };
}

/** The message for a thing left out. */
function leftOut(err: unknown): string {
  if (err instanceof RegfsError) return `${err.message}; left out of the inventory`;
  throw err;
}

async function registryInventory(driver: StorageDriver, w: InventoryWriter, warn: (m: string) => void): Promise<void> {
  const pace = pacer(w);
  const v2 = driver.v2;
  if (driver.kind === 'filesystem') await diskBlobs(v2, w, warn, pace);
  else await listedBlobs(driver, w, warn, pace);
  // A directory's names, sorted: read on disk, from the repositories' listing on S3.
  const names = async (dir: string): Promise<string[]> => (driver.kind === 'filesystem' ? sortedNames(dir) : (await driver.list(dir)).map((e) => e.name));
  // Repositories, in byte order; each with its tags and manifests.
  const reader = new RegistryReader(driver);
  const repos = (await reader.listRepositories()).sort();
  for (const repo of repos) {
    w.repo(repo);
    // Its manifests first (held for this repository only): a tag naming one of them is
    // served without reading that revision link a second time.
    const manifests: Digest[] = [];
    const revisions = revisionsDir(v2, repo);
    const digests: Digest[] = [];
    for (const alg of await names(revisions)) {
      if (!(alg in DIGEST_ALGORITHMS)) continue;
      for (const hex of await names(`${revisions}/${alg}`)) {
        const d = `${alg}:${hex}`;
        if (isDigest(d)) digests.push(d);
      }
    }
    await inOrder(digests, (d) => servedRevision(reader, repo, d), pace, (d, r) => {
      if (!r.ok) warn(leftOut(r.err));
      else if (r.value === true) manifests.push(d);
      else if (r.value !== false) warn(r.value);
    });
    const served = new Set(manifests);
    await inOrder(await reader.listTags(repo), (tag) => servedTag(reader, repo, tag, served), pace, (tag, r) => {
      if (!r.ok) {
        warn(leftOut(r.err));
        return;
      }
      const { digest: d, warning } = r.value;
      if (warning !== undefined) warn(warning);
      if (d !== undefined) w.tag(tag, d);
      // Served through the `_layers` fallback: the repository serves it by digest too.
      if (d !== undefined && !served.has(d)) served.add(d);
    });
    for (const d of served.size === manifests.length ? manifests : [...served].sort()) w.manifest(d);
    // What one repository read is not needed for the next: memory stays flat.
    reader.dropCaches();
  }
}

/** The blobs on disk: blobs/<alg>/<hex[0:2]>/<hex>/data, each level sorted, so in digest order. */
async function diskBlobs(v2: string, w: InventoryWriter, warn: (m: string) => void, pace: () => Promise<void>): Promise<void> {
  const base = blobsDir(v2);
  for (const alg of sortedNames(base)) {
    if (!(alg in DIGEST_ALGORITHMS)) continue;
    for (const fan of sortedNames(`${base}/${alg}`)) {
      if (!/^[0-9a-f]{2}$/.test(fan)) continue;
      for (const hex of sortedNames(`${base}/${alg}/${fan}`)) {
        const d = `${alg}:${hex}`;
        // The registry reads blobs/<alg>/<hex[0:2]>/<hex>/data only: anything else is never read.
        if (!isDigest(d) || hex.slice(0, 2) !== fan) continue;
        const path = `${base}/${alg}/${fan}/${hex}/data`;
        const st = statData(path);
        if (st === undefined) continue;
        if (st.notRegular !== undefined) warn(`blob data "${path}" is ${st.notRegular}, not a regular file; left out of the inventory`);
        else w.blob(d, st.size);
        await pace();
      }
    }
  }
}

/**
 * The blobs on S3, from one flat listing per digest algorithm: the keys
 * `blobs/<alg>/<hex[0:2]>/<hex>/data`, which S3 lists in ascending key order, so in digest
 * order without being held (a listing out of order is an error, never a silently different
 * inventory). Keys below `<hex>/data/` make `data` a directory to the registry, as on disk.
 */
async function listedBlobs(driver: StorageDriver, w: InventoryWriter, warn: (m: string) => void, pace: () => Promise<void>): Promise<void> {
  const base = blobsDir(driver.v2);
  for (const { name: alg } of await driver.list(base)) {
    if (!(alg in DIGEST_ALGORITHMS)) continue;
    const prefix = `${base}/${alg}/`;
    let last = '';
    let warned = '';
    let emitted = '';
    for await (const page of driver.walk(`${base}/${alg}`)) {
      for (const f of page) {
        // S3 orders keys by their UTF-8 bytes.
        if (Buffer.compare(Buffer.from(f.path), Buffer.from(last)) <= 0) throw new RegfsError('IO_ERROR', `listing ${driver.location}: key "${f.path}" came after "${last}": the server does not list keys in order, so the inventory cannot be made in digest order`, { path: f.path });
        last = f.path;
        const parts = f.path.slice(prefix.length).split('/');
        const [fan, hex, file] = parts;
        const d = `${alg}:${hex ?? ''}`;
        if (fan === undefined || hex === undefined || !/^[0-9a-f]{2}$/.test(fan) || !isDigest(d) || hex.slice(0, 2) !== fan || file !== 'data') continue;
        if (parts.length === 3) {
          w.blob(d, f.size);
          emitted = d;
        } else if (emitted !== d && warned !== d) {
          warn(`blob data "${prefix}${fan}/${hex}/data" is a directory, not a regular file; left out of the inventory`);
          warned = d;
        }
        await pace();
      }
    }
  }
}

/**
 * Read the items a chunk (CHUNK) at once (on S3 their requests overlap), and hand each
 * result (its value or its error) to `take` in the items' order, pacing after each: what is
 * written and warned does not depend on which read came back first.
 */
async function inOrder<T, R>(
  items: readonly T[],
  read: (item: T) => Promise<R>,
  pace: () => Promise<void>,
  take: (item: T, r: { ok: true; value: R } | { ok: false; err: unknown }) => void,
): Promise<void> {
  for (let i = 0; i < items.length; i += CHUNK) {
    const chunk = items.slice(i, i + CHUNK);
    const results = await Promise.all(chunk.map((item) => settle(read(item))));
    for (const [j, item] of chunk.entries()) {
      take(item, results[j]!);
      await pace();
    }
  }
}

/**
 * The manifest a tag names if the registry serves it by that tag (`digest`, else undefined),
 * and the warning for damage that leaves it out. A manifest in `served` is not read again.
 */
async function servedTag(reader: RegistryReader, repo: RepoName, tag: Tag, served: ReadonlySet<Digest>): Promise<{ digest?: Digest; warning?: string }> {
  const d = await reader.tagDigest(repo, tag);
  if (d === undefined || served.has(d)) return { digest: d };
  // Not among the revisions served: 2.x also serves a manifest linked only in `_layers`.
  if ((await reader.manifestLink(repo, d)) === undefined) {
    return { warning: `tag ${repo}:${tag} names ${d}, which the repository does not hold (no revision link): the registry answers MANIFEST_UNKNOWN for it; left out of the inventory` };
  }
  if ((await reader.blobInfo(d)) === undefined) {
    return { warning: `tag ${repo}:${tag} names ${d}, whose blob data is missing: the registry answers MANIFEST_UNKNOWN for it; left out of the inventory` };
  }
  return { digest: d };
}

/**
 * True if the repository's revision link for `d` is there, names `d`, and the manifest has
 * its data; false if there is no link; the warning if the link has no data.
 */
async function servedRevision(reader: RegistryReader, repo: RepoName, d: Digest): Promise<boolean | string> {
  // A directory without a link is what the registry's own delete leaves: nothing is served.
  if (!(await reader.hasRevision(repo, d))) return false;
  if ((await reader.blobInfo(d)) !== undefined) return true;
  return `manifest ${repo}@${d} has a revision link but no blob data: the registry answers MANIFEST_UNKNOWN for it; left out of the inventory`;
}

async function layoutInventory(layout: string, w: InventoryWriter, warn: (m: string) => void): Promise<void> {
  const pace = pacer(w);
  const index = readLayoutFiles(layout);
  const entries = parseIndex(index);
  // Blobs: blobs/<alg>/<encoded>, sorted by algorithm and then by name: digest order.
  const base = `${layout}/blobs`;
  const present = (d: Digest): boolean => {
    const st = statData(`${base}/${d.replace(':', '/')}`);
    return st !== undefined && st.notRegular === undefined;
  };
  for (const alg of sortedNames(base)) {
    if (!(alg in DIGEST_ALGORITHMS)) continue;
    for (const hex of sortedNames(`${base}/${alg}`)) {
      const d = `${alg}:${hex}`;
      if (!isDigest(d)) continue;
      const path = `${base}/${alg}/${hex}`;
      const st = statData(path);
      if (st === undefined) continue;
      if (st.notRegular !== undefined) warn(`blob "${path}" is ${st.notRegular}, not a regular file; left out of the inventory`);
      else w.blob(d, st.size);
      await pace();
    }
  }
  // Repositories, tags and manifests: what index.json's entries name.
  const repos = new Map<RepoName, { tags: Map<Tag, Digest | null>; manifests: Set<Digest> }>();
  entries.forEach(({ desc, annotations }, i) => {
    const label = `"${index.where}" entry ${i} (${desc.digest})`;
    const ref = annotations?.[REF_NAME];
    if (annotations?.[CONTAINERD_NAME] === undefined && ref !== undefined && ref !== '' && !/[/:@]/.test(ref)) {
      warn(`${label} is named by a bare tag ${quote(ref)}, with no repository; left out of the inventory`);
      return;
    }
    let name;
    try {
      name = entryName(annotations, undefined);
    } catch (err) {
      warn(`${label}: ${leftOut(err)}`);
      return;
    }
    if (name === undefined) {
      warn(`${label} has no name (no org.opencontainers.image.ref.name); left out of the inventory`);
      return;
    }
    if (name.digest !== undefined && name.digest !== desc.digest) {
      warn(`${label} is named ${quote(`${name.repo}@${name.digest}`)}, another digest; left out of the inventory`);
      return;
    }
    if (!isRepoName(name.repo) || (name.tag !== undefined && !isTag(name.tag))) return;
    if (!present(desc.digest)) {
      warn(`${label}: the layout has no blob ${desc.digest}; left out of the inventory`);
      return;
    }
    let r = repos.get(name.repo);
    if (r === undefined) repos.set(name.repo, (r = { tags: new Map(), manifests: new Set() }));
    r.manifests.add(desc.digest);
    if (name.tag === undefined) return;
    const had = r.tags.get(name.tag);
    if (had === undefined) r.tags.set(name.tag, desc.digest);
    else if (had !== desc.digest) {
      // Two entries name one tag: which one a reader takes is its own choice, so neither is listed.
      if (had !== null) warn(`${index.where}: ${name.repo}:${name.tag} names two manifests (${had}, ${desc.digest}); the tag is left out of the inventory`);
      r.tags.set(name.tag, null);
    }
  });
  for (const repo of [...repos.keys()].sort()) {
    const r = repos.get(repo)!;
    w.repo(repo);
    for (const tag of [...r.tags.keys()].sort()) {
      const d = r.tags.get(tag);
      if (d !== null && d !== undefined) w.tag(tag, d);
    }
    for (const d of [...r.manifests].sort()) w.manifest(d);
    await pace();
  }
}
