/**
 * How S3 roots are reached, for the whole run: the endpoint and the request limit the CLI sets
 * (--s3-endpoint, --jobs), the S3 services made (one per endpoint), what they sent. Light on
 * purpose: the CLI loads it at start-up; the AWS SDK loads only when an S3 root is opened.
 */
import pLimit from 'p-limit';
import { DEFAULT_JOBS } from '../defaults.js';
import type { S3Service } from './s3.js';

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

