/**
 * An OCI image layout of a `dir:` export's tagged image directories (what to-dir writes, as
 * `skopeo sync --scoped` lays them out), for tests and the benchmark of from-oci: each
 * `repo:tag` directory becomes an `index.json` entry named by its full reference, its
 * manifest, instance manifests and blobs hard-linked into `blobs/sha256` (each once), as
 * crane and skopeo lay a layout out. Digest-named directories are left out (an entry needs
 * a name to carry its repository). Optionally a tar of it, as skopeo's `oci-archive:` is one.
 */
import { execFileSync } from 'node:child_process';
import { link, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { digestHex, digestOf } from '../../src/digest.js';
import { errnoCode } from '../../src/errors.js';
import { MediaTypes } from '../../src/manifest.js';
import { INDEX_FILE, OCI_LAYOUT_CONTENT, OCI_LAYOUT_FILE, REF_NAME } from '../../src/oci/layout.js';

/** Write the layout at `layout` (created); the number of entries. */
export async function ociLayoutFromExport(exported: string, layout: string): Promise<number> {
  const blobs = join(layout, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const entries: Array<{ mediaType: string; digest: string; size: number; annotations: Record<string, string> }> = [];
  const put = async (from: string, hex: string): Promise<void> => {
    await link(from, join(blobs, hex)).catch((err: unknown) => {
      if (errnoCode(err) !== 'EEXIST') throw err;
    });
  };
  const walk = async (d: string): Promise<void> => {
    const names = await readdir(d, { withFileTypes: true });
    if (!names.some((n) => n.name === 'manifest.json')) {
      for (const n of names) if (n.isDirectory()) await walk(join(d, n.name));
      return;
    }
    const ref = relative(exported, d);
    if (ref.includes('@')) return;
    const raw = await readFile(join(d, 'manifest.json'));
    const digest = digestOf(raw);
    await put(join(d, 'manifest.json'), digestHex(digest));
    for (const n of names) {
      const m = /^([0-9a-f]{64})(\.manifest\.json)?$/.exec(n.name);
      if (m !== null) await put(join(d, n.name), m[1]!);
    }
    const doc = JSON.parse(raw.toString('utf8')) as { mediaType?: string; manifests?: unknown };
    const mediaType = doc.mediaType ?? (doc.manifests === undefined ? MediaTypes.ociManifest : MediaTypes.ociIndex);
    entries.push({ mediaType, digest, size: raw.length, annotations: { [REF_NAME]: ref } });
  };
  await walk(exported);
  entries.sort((a, b) => a.annotations[REF_NAME]!.localeCompare(b.annotations[REF_NAME]!));
  await writeFile(join(layout, OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT);
  await writeFile(join(layout, INDEX_FILE), JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: entries }));
  return entries.length;
}

/** `tar -cf TAR -C LAYOUT .`: the blobs first, index.json and oci-layout after them, as skopeo's archives have it. */
export function tarLayout(layout: string, tar: string): void {
  execFileSync('tar', ['-cf', tar, '-C', layout, '.']);
}
