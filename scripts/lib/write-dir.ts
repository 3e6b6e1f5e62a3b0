/**
 * Write a synthetic image as a skopeo `dir:` image directory, the layout
 * `skopeo copy --all docker://… dir:D` produces (storage-formats.md §1B.1, §3.4).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex } from '../../src/digest.js';
import { blobsOf, manifestsOf, type Manifest } from './images.js';

/** The exact content of a `dir:` image's `version` file. */
export const DIR_VERSION = 'Directory Transport Version: 1.1\n';

/** Write `m` into `dir` (created if missing): version, manifest.json, `<hex>.manifest.json` per child, `<hex>` per blob. */
export async function writeDirImage(dir: string, m: Manifest): Promise<void> {
  await mkdir(dir, { recursive: true });
  const files: Array<[string, Buffer | string]> = [
    ['version', DIR_VERSION],
    ['manifest.json', m.bytes],
    ...manifestsOf(m)
      .slice(1)
      .map((c): [string, Buffer] => [`${digestHex(c.digest)}.manifest.json`, c.bytes]),
    ...blobsOf(m).map((b): [string, Buffer] => [digestHex(b.digest), b.bytes]),
  ];
  await Promise.all(files.map(([name, data]) => writeFile(join(dir, name), data)));
}
