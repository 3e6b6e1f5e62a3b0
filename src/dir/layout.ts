/**
 * The layout of a containers/image `dir:` image directory (directory/directory_dest.go).
 * Pure: no I/O. Blob and instance-manifest names come from validated digests only.
 *
 *   <dir>/version                     "Directory Transport Version: 1.1\n"
 *   <dir>/manifest.json               the top manifest (for a multi-platform copy, the index)
 *   <dir>/<hex>.manifest.json         each instance of an index
 *   <dir>/<hex>                       each config and layer (version 1.0 named them <hex>.tar)
 */
import { join } from 'node:path';
import { digestHex, type Digest } from '../digest.js';

/** The content of the `version` file regfs writes (and skopeo 1.9 writes). */
export const DIR_VERSION = 'Directory Transport Version: 1.1\n';
/** The version before Feb 2018, whose blobs are named `<hex>.tar`. */
export const DIR_VERSION_1_0 = 'Directory Transport Version: 1.0\n';

export const VERSION_FILE = 'version';
export const MANIFEST_FILE = 'manifest.json';
export { DIGEST_FILE } from '../defaults.js';

/** `<dir>/version` */
export function versionPath(dir: string): string {
  return join(dir, VERSION_FILE);
}

/** `<dir>/manifest.json`, or `<dir>/<hex>.manifest.json` for an instance of an index. */
export function manifestPath(dir: string, instance?: Digest): string {
  return join(dir, manifestFileName(instance));
}

/** `manifest.json` or `<hex>.manifest.json` */
export function manifestFileName(instance?: Digest): string {
  return instance === undefined ? MANIFEST_FILE : `${digestHex(instance)}.${MANIFEST_FILE}`;
}

/** `<dir>/<hex>` */
export function blobPath(dir: string, d: Digest): string {
  return join(dir, digestHex(d));
}

/** `<dir>/<hex>.tar`: where a version 1.0 directory keeps a blob. */
export function legacyBlobPath(dir: string, d: Digest): string {
  return join(dir, `${digestHex(d)}.tar`);
}
