/**
 * Opening a registry root, on disk or on S3, as a StorageDriver: the one place a root
 * argument becomes storage. `s3://BUCKET/PREFIX` is a root on S3 (PREFIX is the registry's
 * `rootdirectory`); anything else is a directory. S3 roots on one endpoint share one
 * S3Service (one client, one request limit), so blobs between them move by server-side copy.
 */
import pLimit from 'p-limit';
import { DEFAULT_JOBS } from '../defaults.js';
import { FsStorage, type FsStorageOptions } from './fs.js';
// The AWS SDK is loaded only when an S3 root is opened: every other run starts without it.
import type { S3Service, S3Storage } from './s3.js';
import { isS3Url, parseS3Url, S3_SCHEME } from './s3-url.js';
import { STORAGE_PREFIX } from '../registry/layout.js';
import type { StorageDriver } from './driver.js';

/** How S3 roots are reached: `--s3-endpoint` and the requests in flight (`--jobs`). */
export interface StorageOptions {
  /** The S3 endpoint (`--s3-endpoint`); by default AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS. */
  s3Endpoint?: string | undefined;
  /** S3 requests in flight at once (default DEFAULT_JOBS). */
  jobs?: number | undefined;
}

let configured: StorageOptions = {};
const services = new Map<string, S3Service>();

/**
 * Set how S3 roots opened from now on are reached (the CLI calls this with `--s3-endpoint`
 * and `--jobs` before a command runs). Services already made are closed.
 */
export function configureStorage(opts: StorageOptions): void {
  closeStorage();
  configured = { ...opts };
}

/** The S3 service for the configured endpoint, made on first use. */
export async function s3Service(): Promise<S3Service> {
  const { S3Service } = await import('./s3.js');
  const key = configured.s3Endpoint ?? '';
  let s = services.get(key);
  if (s === undefined) {
    s = new S3Service({ limit: pLimit(configured.jobs ?? DEFAULT_JOBS), endpoint: configured.s3Endpoint });
    services.set(key, s);
  }
  return s;
}

/**
 * The S3 requests sent since storage was configured, by operation, every service summed;
 * undefined if no S3 root was opened.
 */
export function s3RequestCounts(): Record<string, number> | undefined {
  if (services.size === 0) return undefined;
  const sum = new Map<string, number>();
  for (const s of services.values()) for (const [k, v] of Object.entries(s.requestCounts())) sum.set(k, (sum.get(k) ?? 0) + v);
  return Object.fromEntries([...sum].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** `N requests (CopyObject 3, GetObject 5, …)`, for a summary line. */
export function formatRequestCounts(counts: Record<string, number>): string {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return `${total} request${total === 1 ? '' : 's'}${total === 0 ? '' : ` (${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')})`}`;
}

/** Close every S3 client (their keep-alive connections would hold the process open). */
export function closeStorage(): void {
  for (const s of services.values()) s.destroy();
  services.clear();
}

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

export { S3_SCHEME };
export type { StorageDriver };
