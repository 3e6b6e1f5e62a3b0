/**
 * Bundles for tests, in the order and form docs/bundle.md gives them, made from what regfs
 * already has: `regfs to-oci` of the list into a layout directory, `regfs-bundle.json`
 * written here and, for a delta, the blobs the far side holds left out of the tar; then GNU
 * tar with an explicit file list (oci-layout, regfs-bundle.json, index.json, blobs/,
 * blobs/sha256/, then each image's manifests, top first, then its configs and layers).
 * One helper, so that `regfs bundle` can take its place.
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, digestOf, type Digest } from '../../src/digest.js';
import { isIndexKind, parseManifestContent, referencedBlobs } from '../../src/manifest.js';
import { runCli } from './cli.js';

export interface TestBundle {
  tar: string;
  /** The layout the tar was made of (the left-out blobs removed). */
  layout: string;
  inventory: Digest | null;
  carried: { blobs: number; bytes: number };
  assumed: Array<{ digest: Digest; size: number }>;
  /** Blob digests in tar order. */
  order: Digest[];
}

export interface BundleOptions {
  /** `repo:tag` or `repo@sha256:…` lines. */
  list: string[];
  /** Registry root the images come from. */
  source: string;
  /** The tar to write; its layout goes to `<tar>.layout`. */
  tar: string;
  /** The far side: registry storage (or an OCI layout) whose blobs are left out (a delta bundle). */
  have?: string;
  /** Change index.json before the tar is made (rename or add entries). */
  editIndex?: (index: { manifests: Array<{ digest: string; size: number; mediaType: string; annotations?: Record<string, string> }> }) => void;
}

/** The digests and sizes of a registry root's blob data (or an OCI layout's blobs), as an inventory lists them (sorted). */
export async function storageBlobs(root: string): Promise<Map<Digest, number>> {
  const out = new Map<Digest, number>();
  const add = async (hex: string, path: string): Promise<void> => {
    const st = await stat(path).catch(() => undefined);
    if (st?.isFile() === true && /^[0-9a-f]{64}$/.test(hex)) out.set(`sha256:${hex}` as Digest, st.size);
  };
  if (await stat(join(root, 'oci-layout')).catch(() => undefined)) {
    for (const hex of await readdir(join(root, 'blobs/sha256')).catch(() => [])) await add(hex, join(root, 'blobs/sha256', hex));
  } else {
    const dir = join(root, 'docker/registry/v2/blobs/sha256');
    for (const fan of await readdir(dir).catch(() => [])) for (const hex of await readdir(join(dir, fan))) await add(hex, join(dir, fan, hex, 'data'));
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Make a bundle of `list` from `source` (a delta against `have`'s blobs if given). */
export async function makeBundle(opts: BundleOptions): Promise<TestBundle> {
  const layout = `${opts.tar}.layout`;
  await rm(layout, { recursive: true, force: true });
  const listFile = `${opts.tar}.list`;
  await writeFile(listFile, `${opts.list.join('\n')}\n`);
  const r = await runCli(['to-oci', listFile, opts.source, layout, '--link', 'copy']);
  if (r.code !== 0) throw new Error(`to-oci: ${r.stderr}`);
  const indexPath = join(layout, 'index.json');
  if (opts.editIndex !== undefined) {
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as Parameters<NonNullable<BundleOptions['editIndex']>>[0];
    opts.editIndex(index);
    await writeFile(indexPath, JSON.stringify(index));
  }
  const index = JSON.parse(await readFile(indexPath, 'utf8')) as { manifests: Array<{ digest: Digest }> };
  const blobPath = (d: Digest): string => join(layout, 'blobs/sha256', digestHex(d));

  // Each image in index order: its manifests breadth first from the top, then its configs and layers; each blob once.
  const order: Digest[] = [];
  const seen = new Set<Digest>();
  const add = (d: Digest): void => {
    if (!seen.has(d)) order.push(d);
    seen.add(d);
  };
  for (const entry of index.manifests) {
    const manifests = [entry.digest];
    const rest: Digest[] = [];
    for (let i = 0; i < manifests.length; i++) {
      const raw = await readFile(blobPath(manifests[i]!));
      const m = parseManifestContent(raw, digestOf(raw), manifests[i]!);
      if (isIndexKind(m.kind)) for (const c of m.manifests) manifests.push(c.digest);
      else for (const b of referencedBlobs(m)) rest.push(b.digest);
    }
    for (const d of [...manifests, ...rest]) add(d);
  }

  const have = opts.have === undefined ? undefined : await storageBlobs(opts.have);
  const assumed: TestBundle['assumed'] = [];
  const carried: Digest[] = [];
  let bytes = 0;
  for (const d of order) {
    const size = (await stat(blobPath(d))).size;
    if (have?.get(d) === size) {
      assumed.push({ digest: d, size });
      await rm(blobPath(d));
    } else {
      carried.push(d);
      bytes += size;
    }
  }
  assumed.sort((a, b) => (a.digest < b.digest ? -1 : 1));
  // The inventory's stand-in: its blob lines, hashed, as `regfs inventory` identifies a file by its digest.
  const inventory = have === undefined ? null : digestOf(Buffer.from(`regfs-inventory 1\n${[...have].map(([d, s]) => `blob ${d} ${s}\n`).join('')}`));
  const bundleFile = { regfsBundle: 1, inventory, carried: { blobs: carried.length, bytes }, assumed };
  await writeFile(join(layout, 'regfs-bundle.json'), JSON.stringify(bundleFile));

  const files = ['oci-layout', 'regfs-bundle.json', 'index.json', 'blobs/', 'blobs/sha256/', ...carried.map((d) => `blobs/sha256/${digestHex(d)}`)];
  const fileList = `${opts.tar}.files`;
  await writeFile(fileList, `${files.join('\n')}\n`);
  execFileSync('tar', ['--format=ustar', '--no-recursion', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-cf', opts.tar, '-C', layout, '-T', fileList]);
  return { tar: opts.tar, layout, inventory, carried: bundleFile.carried, assumed, order: carried };
}

/** The byte offset in `tar` where the data of the entry `name` begins (its header is the 512 bytes before). */
export function entryOffset(tar: Buffer, name: string): number {
  for (let off = 0; off + 512 <= tar.length; ) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const entry = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(header.subarray(124, 136).toString('utf8').replace(/\0.*$/s, '').trim() || '0', 8);
    if (entry === name) return off + 512;
    off += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`no entry ${name} in the tar`);
}
