/**
 * Bundles for tests, made by the real commands: `regfs inventory` of the far side (for a
 * delta) and `regfs bundle`, then the tar unpacked beside it (`<tar>.layout`) so that tests
 * can make damaged or reordered variants of it from its files. `editIndex` changes the
 * bundle's index.json and writes the tar again in the same entry order, for an index no
 * source holds (an entry renamed or added).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../../src/digest.js';
import { runCli } from './cli.js';

export interface TestBundle {
  tar: string;
  /** The bundle's files, unpacked. */
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
  /** The tar to write; its files are unpacked into `<tar>.layout`. */
  tar: string;
  /** The far side: registry storage (or an OCI layout) whose inventory the bundle is made against (a delta bundle). */
  have?: string;
  /** Change index.json after the bundle is made (rename or add entries). */
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

/** Make a bundle of `list` from `source` with `regfs bundle` (against `regfs inventory` of `have` if given). */
export async function makeBundle(opts: BundleOptions): Promise<TestBundle> {
  const listFile = `${opts.tar}.list`;
  await writeFile(listFile, `${opts.list.join('\n')}\n`);
  const args = ['bundle', listFile, opts.source, opts.tar];
  if (opts.have !== undefined) {
    const inv = `${opts.tar}.inv`;
    const i = await runCli(['inventory', opts.have, '-o', inv]);
    if (i.code !== 0) throw new Error(`inventory: ${i.stderr}`);
    args.push('--have', inv);
  }
  const r = await runCli(args);
  if (r.code !== 0) throw new Error(`bundle: ${r.stderr}`);
  const layout = `${opts.tar}.layout`;
  await rm(layout, { recursive: true, force: true });
  await mkdir(layout);
  execFileSync('tar', ['-xf', opts.tar, '-C', layout]);
  const entries = execFileSync('tar', ['-tf', opts.tar], { encoding: 'utf8' }).trim().split('\n');
  if (opts.editIndex !== undefined) {
    const indexPath = join(layout, 'index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as Parameters<NonNullable<BundleOptions['editIndex']>>[0];
    opts.editIndex(index);
    await writeFile(indexPath, JSON.stringify(index));
    const fileList = `${opts.tar}.files`;
    await writeFile(fileList, `${entries.join('\n')}\n`);
    execFileSync('tar', ['--format=ustar', '--no-recursion', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-cf', opts.tar, '-C', layout, '-T', fileList]);
  }
  const meta = JSON.parse(await readFile(join(layout, 'regfs-bundle.json'), 'utf8')) as Pick<TestBundle, 'inventory' | 'carried' | 'assumed'>;
  const order = entries.flatMap((e) => {
    const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(e);
    return m === null ? [] : [`sha256:${m[1]}` as Digest];
  });
  return { tar: opts.tar, layout, inventory: meta.inventory, carried: meta.carried, assumed: meta.assumed, order };
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
