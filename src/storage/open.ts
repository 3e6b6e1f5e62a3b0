/**
 * Opening a registry root, on disk or on S3, as a StorageDriver: the one place a root
 * argument becomes storage. `s3://BUCKET/PREFIX` is a root on S3 (PREFIX is the registry's
 * `rootdirectory`); anything else is a directory. S3 roots on one endpoint share one
 * S3Service (one client, one request limit), so blobs between them move by server-side copy.
 */
import { FsStorage, type FsStorageOptions } from './fs.js';
import type { S3Storage } from './s3.js';
import { s3Service } from './config.js';
import { parseS3Url } from './s3-url.js';
import { isS3Url } from './scheme.js';
import { STORAGE_PREFIX } from '../registry/layout.js';

/** True if the root names S3 storage. */
export function isS3Root(root: string): boolean {
  return isS3Url(root);
}

/**
 * An S3 root as a driver. PREFIX may be the registry's rootdirectory or, as on disk, the
 * storage root itself (`.../docker/registry/v2`): a prefix ending so is taken as the latter.
 */
export async function openS3Root(root: string): Promise<S3Storage> {
  const parsed = parseS3Url(root);
  const suffix = STORAGE_PREFIX;
  if (parsed.prefix === suffix || parsed.prefix.endsWith(`/${suffix}`)) {
    parsed.prefix = parsed.prefix.slice(0, parsed.prefix.length - suffix.length).replace(/\/$/, '');
  }
  return (await s3Service()).root(parsed);
}

/** A filesystem storage root (`v2` found by the caller) as a driver. */
export function fsStorage(v2: string, opts: FsStorageOptions = {}): FsStorage {
  return new FsStorage(v2, opts);
}

