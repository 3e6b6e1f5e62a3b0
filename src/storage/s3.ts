/**
 * The S3 implementation of the storage seam (./driver.ts): registry storage as
 * distribution's `s3` driver keeps it, the filesystem layout as object keys under
 * `<rootdirectory>/docker/registry/v2/` (no directory objects: a directory is a key prefix).
 *
 * One S3Service per endpoint and credentials: its client (AWS SDK v3, path-style addressing
 * when an endpoint is given, the SDK's standard credential chain: environment, profile, ...),
 * the caller's p-limit bounding how many requests run at once, the SDK's retries with
 * backoff, and a count of the HTTP requests sent, by operation (each retry counts). Roots on
 * one service move blob data by server-side copy (CopyObject; UploadPartCopy above a
 * threshold); from elsewhere it streams in (one PutObject, or a multipart upload holding at
 * most a few parts in memory).
 *
 * Every object written gets `Content-Type: application/octet-stream`, as the registry's
 * driver writes them. Messages name `s3://bucket/key` and the service's error code, never a
 * credential.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type ListMultipartUploadsCommandOutput,
  type ListObjectsV2CommandOutput,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { LimitFunction } from 'p-limit';
import { errnoCode, RegfsError } from '../errors.js';
import type { ChildEntry, Content, FileInfo, PlaceOptions, PlaceOutcome, StorageDriver, WalkEntry } from './driver.js';
import { checkS3Endpoint, formatS3Root, parseS3Url, s3StorageRoot, type S3Root } from './s3-url.js';

const CONTENT_TYPE = 'application/octet-stream';
/** S3's largest single CopyObject (AWS documents 5 GiB). */
const COPY_OBJECT_MAX = 5 * 1024 ** 3;
/** S3's smallest part but the last (5 MiB). */
export const MIN_PART_SIZE = 5 * 1024 ** 2;
/** S3's most parts in one multipart upload: a larger blob takes larger parts. */
const MAX_PARTS = 10_000;
/** How many keys one ListObjectsV2 page and one DeleteObjects request hold at most (S3's limit). */
const PAGE = 1000;

/** Reads of one object's body in a row that may end cut or idle before the stream fails (reader()). */
const READ_ATTEMPTS = 3;

/**
 * Attempts per request unless AWS_MAX_ATTEMPTS says otherwise: more than the SDK's 3, since a
 * run of thousands of requests meets throttling (503 SlowDown) that three attempts in a row
 * can all hit, and one failed request fails the run.
 */
export const DEFAULT_MAX_ATTEMPTS = 6;

/** The name of the environment variable that silences the SDK's Node version warning. */
const NODE_WARNING_VARIABLE = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

export interface S3ServiceOptions {
  /**
   * Bounds the requests in flight (the caller's `--jobs`). Each request takes a slot of its
   * own, a multipart transfer one per part: a caller must not hold a slot of the same limit
   * while it waits for a driver call, or the two can wait on each other.
   */
  limit: LimitFunction;
  /** `--s3-endpoint`; by default AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS itself. */
  endpoint?: string | undefined;
  /** By default AWS_REGION, AWS_DEFAULT_REGION, the profile; `us-east-1` with an endpoint and none of these. */
  region?: string | undefined;
  /** Credentials to use instead of the SDK's standard chain (environment, profile, ...). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /**
   * Attempts per request, retries with the SDK's backoff included: by default AWS_MAX_ATTEMPTS
   * or the profile's max_attempts as the SDK reads them, else DEFAULT_MAX_ATTEMPTS.
   */
  maxAttempts?: number;
  /** Where the defaults above are read (process.env by default). */
  env?: NodeJS.ProcessEnv;
  /** Uploads at or above this size go in parts of `partSize` (default 16 MiB, at least MIN_PART_SIZE). */
  partSize?: number;
  /** Parts of one upload held in memory and sent at once (default 4). */
  partsInFlight?: number;
  /** Keys asked for per ListObjectsV2 page (default and most: 1,000). */
  listPage?: number;
  /** Server-side copies above this size go by UploadPartCopy (default: S3's CopyObject limit, 5 GiB). */
  copyThreshold?: number;
  /** The range of one UploadPartCopy (default 512 MiB). */
  copyPartSize?: number;
  /** Milliseconds a connection may take to open (default CONNECT_TIMEOUT_MS). */
  /** See REQUEST_DEADLINE_MS (tests make it shorter). */
  requestDeadline?: number;
  connectTimeout?: number;
  /** Milliseconds a request's connection may stay silent, waiting for an answer or for more of it (default IDLE_TIMEOUT_MS). */
  idleTimeout?: number;
}

/**
 * How long a connection may take to open, and how long one may stay silent before the request
 * fails (TimeoutError, retried like any other): without these the SDK waits for ever on a
 * server that accepts and never answers. 60 s of silence is the AWS CLI's read timeout; a
 * transfer that keeps sending is never cut.
 */
export const CONNECT_TIMEOUT_MS = 10_000;
export const IDLE_TIMEOUT_MS = 60_000;
/**
 * The longest a request for metadata (a HEAD, a listing page, a link or manifest read with its
 * body, a link written, a delete) may take, its retries included: a server that answers its
 * headers and then trickles bytes keeps the idle timeout from ever firing. Blob data
 * (copies, uploads, downloads) has no such bound: a large blob may take long, while it moves.
 */
export const REQUEST_DEADLINE_MS = 300_000;

/**
 * An S3 client that never prints the SDK's NodeVersionSupportWarning (versions of the SDK
 * published after early 2027 need Node 22; regfs pins one that runs on Node 20): the variable
 * that silences it is set while the client is made, which is when the SDK checks, and
 * restored after, so the process's environment is as it was.
 */
export function createS3Client(config: S3ClientConfig): S3Client {
  const before = process.env[NODE_WARNING_VARIABLE];
  process.env[NODE_WARNING_VARIABLE] = 'true';
  try {
    return new S3Client(config);
  } finally {
    if (before === undefined) delete process.env[NODE_WARNING_VARIABLE];
    else process.env[NODE_WARNING_VARIABLE] = before;
  }
}

/** One S3 endpoint with one set of credentials: the client, the request limit, the counts. */
export class S3Service {
  readonly client: S3Client;
  readonly endpoint: string | undefined;
  readonly limit: LimitFunction;
  readonly partSize: number;
  readonly partsInFlight: number;
  readonly copyThreshold: number;
  readonly copyPartSize: number;
  readonly listPage: number;
  readonly requestDeadline: number;
  private readonly counts = new Map<string, number>();

  constructor(opts: S3ServiceOptions) {
    const env = opts.env ?? process.env;
    const endpoint = opts.endpoint ?? nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL);
    this.endpoint = endpoint === undefined ? undefined : checkS3Endpoint(endpoint);
    const region = opts.region ?? nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? (this.endpoint === undefined ? undefined : 'us-east-1');
    this.limit = opts.limit;
    this.partSize = Math.max(MIN_PART_SIZE, opts.partSize ?? 16 * 1024 ** 2);
    this.partsInFlight = Math.max(1, opts.partsInFlight ?? 4);
    this.copyThreshold = Math.min(COPY_OBJECT_MAX, opts.copyThreshold ?? COPY_OBJECT_MAX);
    this.copyPartSize = Math.max(MIN_PART_SIZE, opts.copyPartSize ?? 512 * 1024 ** 2);
    this.listPage = Math.min(PAGE, Math.max(1, opts.listPage ?? PAGE));
    this.requestDeadline = opts.requestDeadline ?? REQUEST_DEADLINE_MS;
    this.client = createS3Client({
      ...(this.endpoint === undefined ? {} : { endpoint: this.endpoint, forcePathStyle: true }),
      ...(region === undefined ? {} : { region }),
      ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : nonEmpty(env.AWS_MAX_ATTEMPTS) === undefined ? { maxAttempts: DEFAULT_MAX_ATTEMPTS } : {}),
      ...(opts.credentials === undefined ? {} : { credentials: opts.credentials }),
      requestHandler: { connectionTimeout: opts.connectTimeout ?? CONNECT_TIMEOUT_MS, socketTimeout: opts.idleTimeout ?? IDLE_TIMEOUT_MS },
      // Checksums only where S3 demands them: radosgw 16 takes these, and an upload is not
      // hashed a second time on its way out.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    // Every HTTP request, retries included (the deserialize step runs once per attempt).
    this.client.middlewareStack.add(
      (next, context) => async (args) => {
        const name = (context.commandName ?? 'unknown').replace(/Command$/, '');
        this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
        return next(args);
      },
      { step: 'deserialize', name: 'regfsRequestCount' },
    );
  }

  /** The requests sent so far, by operation (`GetObject`, `PutObject`, ...), sorted by name. */
  requestCounts(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  /** Forget the counts (to measure one run). */
  resetRequestCounts(): void {
    this.counts.clear();
  }

  /** A registry root on this service: `s3://bucket/prefix` or its parts. */
  root(root: string | S3Root): S3Storage {
    return new S3Storage(this, typeof root === 'string' ? parseS3Url(root) : root);
  }

  /** Close the client's connections. */
  destroy(): void {
    this.client.destroy();
  }

  /** Send one request under the limit; failures become RegfsErrors naming `s3://bucket/key`. */
  async send<T>(command: { input: object }, what: string, bucket: string, key: string): Promise<T> {
    return this.sendThen<T, T>(command, what, bucket, key, async (res) => res);
  }

  /**
   * A metadata request, and `then` on its answer (reading its body), within the request
   * deadline: past it the request is aborted and the run fails with S3_UNREACHABLE.
   */
  async sendThen<T, R>(command: { input: object }, what: string, bucket: string, key: string, then: (res: T) => Promise<R>): Promise<R> {
    // The deadline starts when the request is sent, not while it waits for its turn.
    let deadline: AbortSignal | undefined;
    try {
      return await this.limit(async () => {
        deadline = AbortSignal.timeout(this.requestDeadline);
        return then((await this.client.send(command as never, { abortSignal: deadline })) as T);
      });
    } catch (err) {
      if (deadline?.aborted === true) {
        throw new RegfsError('S3_UNREACHABLE', `${what} s3://${bucket}/${key}: no whole answer within ${this.requestDeadline / 1000} s`, { path: `s3://${bucket}/${key}`, cause: err });
      }
      throw s3Error(err, what, bucket, key);
    }
  }

  /** A request that moves blob data (a copy, an upload, a download): no deadline, only the idle timeout. */
  async sendData<T>(command: { input: object }, what: string, bucket: string, key: string): Promise<T> {
    try {
      return (await this.limit(() => this.client.send(command as never))) as T;
    } catch (err) {
      throw s3Error(err, what, bucket, key);
    }
  }
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

/** The SDK's error behind a RegfsError made by s3Error (or the error itself). */
function sdkError(err: unknown): SdkError | undefined {
  const e = err instanceof RegfsError ? err.cause : err;
  return typeof e === 'object' && e !== null ? (e as SdkError) : undefined;
}

/** True for the error of a request whose key (or upload) does not exist. */
function isNotFound(err: unknown): boolean {
  const e = sdkError(err);
  return e !== undefined && (e.name === 'NoSuchKey' || e.name === 'NotFound' || (e.$metadata?.httpStatusCode === 404 && e.name !== 'NoSuchBucket'));
}

interface SdkError {
  name?: string;
  Code?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}

const CREDENTIAL_ERRORS = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'CredentialsProviderError', 'InvalidToken', 'ExpiredToken', 'AuthorizationHeaderMalformed']);
/** Node's codes for a certificate chain it cannot trust (a private or self-signed CA). */
const UNTRUSTED_CERTIFICATE = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY']);
const NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

/**
 * A RegfsError for a failed request. The message carries the operation, `s3://bucket/key`,
 * the service's error code and HTTP status: never the SDK's own message, which may quote a
 * request's headers.
 */
export function s3Error(err: unknown, what: string, bucket: string, key: string): RegfsError {
  if (err instanceof RegfsError) return err;
  const e = (err ?? {}) as SdkError;
  const path = `s3://${bucket}/${key}`;
  const name = e.name ?? e.Code ?? 'Error';
  const status = e.$metadata?.httpStatusCode;
  const code = errnoCode(err) ?? errnoCode((err as { cause?: unknown } | undefined)?.cause);
  if (name === 'NoSuchBucket') {
    return new RegfsError('S3_BUCKET_UNKNOWN', `${what} ${path}: the bucket ${JSON.stringify(bucket)} does not exist`, { path, cause: err });
  }
  if (CREDENTIAL_ERRORS.has(name) || status === 403) {
    const why = name === 'CredentialsProviderError' ? 'no S3 credentials found (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile)' : `the S3 service refused the credentials (${name}${status === undefined ? '' : `, HTTP ${status}`})`;
    return new RegfsError('S3_CREDENTIALS', `${what} ${path}: ${why}`, { path, cause: err });
  }
  if (code !== undefined && UNTRUSTED_CERTIFICATE.has(code)) {
    return new RegfsError('S3_UNREACHABLE', `${what} ${path}: the endpoint's TLS certificate is not trusted (${code}); for a private CA, set NODE_EXTRA_CA_CERTS to its certificate file`, { path, cause: err });
  }
  if (code !== undefined && (code === 'EPROTO' || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code.startsWith('CERT_') || code.endsWith('_CERT'))) {
    return new RegfsError('S3_UNREACHABLE', `${what} ${path}: TLS failed (${code}): is the endpoint's scheme (https://) what it speaks?`, { path, cause: err });
  }
  if ((code !== undefined && NETWORK_ERRORS.has(code)) || name === 'TimeoutError' || name === 'RequestTimeout') {
    return new RegfsError('S3_UNREACHABLE', `${what} ${path}: the S3 endpoint cannot be reached (${code ?? name})`, { path, cause: err });
  }
  return new RegfsError('IO_ERROR', `${what} ${path}: ${name}${status === undefined ? '' : ` (HTTP ${status})`}`, { path, cause: err });
}

/**
 * What one flat listing of a prefix found: every key below it with its size, and the
 * "directories" (key prefixes) with their children, so that stat, list and the existence of
 * a link below the prefix need no request of their own.
 */
class Listing {
  readonly files = new Map<string, number>();
  /** The ETags the listing gave (without quotes), or this driver's writes made. */
  readonly etags = new Map<string, string>();
  /** Directory to its children (name to "is a directory"). */
  readonly dirs = new Map<string, Map<string, boolean>>();

  constructor(readonly dir: string) {
    this.dirs.set(dir, new Map());
  }

  covers(path: string): boolean {
    return path === this.dir || path.startsWith(`${this.dir}/`);
  }

  add(path: string, size: number, etag?: string): void {
    this.files.set(path, size);
    if (etag === undefined) this.etags.delete(path);
    else this.etags.set(path, etag);
    this.link(path, false);
  }

  /**
   * A directory marker (a key `path/`, as consoles' "Create folder" make): a directory, even
   * with nothing below it, as the registry's driver lists it (by delimiter).
   */
  addDir(path: string): void {
    if (path === this.dir || !this.covers(path) || path.endsWith('/')) return;
    if (!this.dirs.has(path)) this.dirs.set(path, new Map());
    this.link(path, true);
  }

  /** Enter `path` among its parent's children, and each parent among its own, up to the listed directory. */
  private link(path: string, dir: boolean): void {
    let child = path;
    let isDir = dir;
    while (child !== this.dir) {
      const slash = child.lastIndexOf('/');
      const parent = child.slice(0, slash);
      let kids = this.dirs.get(parent);
      const known = kids !== undefined;
      if (kids === undefined) this.dirs.set(parent, (kids = new Map()));
      kids.set(child.slice(slash + 1), isDir);
      if (known) break;
      child = parent;
      isDir = true;
    }
  }
}

/** A multipart upload in progress (`listUploads`). */
export interface MultipartUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

/** Registry storage under a prefix of a bucket. Paths are object keys (layout.ts builds them from `v2`). */
export class S3Storage implements StorageDriver {
  readonly kind = 's3';
  readonly v2: string;
  readonly location: string;
  readonly bucket: string;
  /** Prefixes listed by prefetch, answering reads below them. Writes through this driver keep them current. */
  private readonly listings = new Map<string, Listing>();

  constructor(
    readonly service: S3Service,
    readonly root: S3Root,
  ) {
    this.bucket = root.bucket;
    this.v2 = s3StorageRoot(root);
    this.location = formatS3Root(root);
  }

  private send<T>(command: { input: object }, what: string, key: string): Promise<T> {
    return this.service.send<T>(command, what, this.bucket, key);
  }

  private sendData<T>(command: { input: object }, what: string, key: string): Promise<T> {
    return this.service.sendData<T>(command, what, this.bucket, key);
  }

  /** `s3://bucket/path`: a key of this driver as users name it, for messages and results. */
  urlOf(path: string): string {
    return `s3://${this.bucket}/${path}`;
  }

  /** The listing that answers for `path`, if one does. */
  private listingOf(path: string): Listing | undefined {
    // Listings never nest (a new one replaces those it covers): the one answering for a path is
    // at the path or at one of its ancestors, looked up by name, never by a scan of them all.
    for (let dir = path; ; ) {
      const l = this.listings.get(dir);
      if (l !== undefined) return l;
      const slash = dir.lastIndexOf('/');
      if (slash < 0) return undefined;
      dir = dir.slice(0, slash);
    }
  }

  async prefetch(dir: string): Promise<void> {
    if (this.listingOf(dir) !== undefined) return;
    const l = new Listing(dir);
    for await (const page of this.pages(`${dir}/`, undefined)) {
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        if (o.Key.endsWith('/')) l.addDir(o.Key.slice(0, -1));
        else l.add(o.Key, o.Size ?? 0, o.ETag === undefined ? undefined : unquote(o.ETag));
      }
    }
    // A listing made meanwhile by another caller, or one this one covers, gives way.
    if (this.listingOf(dir) !== undefined) return;
    for (const other of [...this.listings.keys()]) if (l.covers(other)) this.listings.delete(other);
    this.listings.set(dir, l);
  }

  listedSize(path: string): number | false | undefined {
    const l = this.listingOf(path);
    if (l === undefined) return undefined;
    return l.files.get(path) ?? false;
  }

  listedHolds(path: string, content: string): boolean {
    const l = this.listingOf(path);
    const bytes = Buffer.from(content);
    return l !== undefined && l.files.get(path) === bytes.length && l.etags.get(path) === md5(bytes);
  }

  async getContent(path: string, maxBytes: number): Promise<Content | undefined> {
    if (this.listedSize(path) === false) return undefined;
    try {
      const bytes = await this.service.sendThen<{ Body?: { transformToByteArray(): Promise<Uint8Array> } }, Buffer>(
        new GetObjectCommand({ Bucket: this.bucket, Key: path, Range: `bytes=0-${Math.max(0, maxBytes - 1)}` }),
        'reading',
        this.bucket,
        path,
        async (res) => Buffer.from((await res.Body?.transformToByteArray()) ?? new Uint8Array()),
      );
      return bytes.subarray(0, maxBytes);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      // A range of an empty object: S3 answers 416 InvalidRange.
      if (sdkError(err)?.name === 'InvalidRange') return Buffer.alloc(0);
      throw err;
    }
  }

  async stat(path: string): Promise<FileInfo | undefined> {
    const l = this.listingOf(path);
    if (l !== undefined) {
      const size = l.files.get(path);
      if (size !== undefined) return { kind: 'file', size };
      // A directory holds a key, or is one's marker; the listed directory itself only if it holds one.
      return l.dirs.has(path) && (path !== l.dir || (l.dirs.get(path)?.size ?? 0) > 0) ? { kind: 'directory' } : undefined;
    }
    try {
      const head = await this.send<{ ContentLength?: number }>(new HeadObjectCommand({ Bucket: this.bucket, Key: path }), 'reading', path);
      return { kind: 'file', size: head.ContentLength ?? 0 };
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    // As the registry's driver: a directory is a prefix some key has.
    const res = await this.send<ListObjectsV2CommandOutput>(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${path}/`, MaxKeys: 1 }), 'listing', `${path}/`);
    return (res.KeyCount ?? res.Contents?.length ?? 0) > 0 ? { kind: 'directory' } : undefined;
  }

  async list(dir: string): Promise<ChildEntry[]> {
    const l = this.listingOf(dir);
    if (l !== undefined) {
      const kids = [...(l.dirs.get(dir) ?? [])].map(([name, isDir]) => ({ name, dir: isDir }));
      return kids.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    }
    const prefix = `${dir}/`;
    const out: ChildEntry[] = [];
    for await (const page of this.pages(prefix, '/')) {
      for (const o of page.Contents ?? []) {
        const name = (o.Key ?? '').slice(prefix.length);
        if (name !== '') out.push({ name, dir: false });
      }
      for (const p of page.CommonPrefixes ?? []) {
        const name = (p.Prefix ?? '').slice(prefix.length, -1);
        if (name !== '') out.push({ name, dir: true });
      }
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async *walk(prefix: string): AsyncIterable<WalkEntry[]> {
    for await (const page of this.pages(`${prefix}/`, undefined)) {
      const files = (page.Contents ?? []).filter((o) => o.Key !== undefined && !o.Key.endsWith('/')).map((o) => ({ path: o.Key!, size: o.Size ?? 0, ...(o.LastModified === undefined ? {} : { mtime: o.LastModified }), ...(o.ETag === undefined ? {} : { etag: unquote(o.ETag) }) }));
      if (files.length > 0) yield files;
    }
  }

  /** Every page of a ListObjectsV2 of `prefix`. */
  private async *pages(prefix: string, delimiter: string | undefined): AsyncIterable<ListObjectsV2CommandOutput> {
    let token: string | undefined;
    do {
      const page = await this.send<ListObjectsV2CommandOutput>(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: this.service.listPage, ...(delimiter === undefined ? {} : { Delimiter: delimiter }), ...(token === undefined ? {} : { ContinuationToken: token }) }),
        'listing',
        prefix,
      );
      // Every S3 listing names its bucket: an answer that does not (an HTML page from a web
      // server at the endpoint) would read as an empty listing.
      if (page.Name === undefined) throw new RegfsError('IO_ERROR', `listing s3://${this.bucket}/${prefix}: the endpoint's answer is not an S3 listing (is the endpoint an S3 service?)`, { path: `s3://${this.bucket}/${prefix}` });
      yield page;
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async putContent(path: string, data: Uint8Array): Promise<void> {
    await this.send(new PutObjectCommand({ Bucket: this.bucket, Key: path, Body: data, ContentType: CONTENT_TYPE, ContentLength: data.length }), 'writing', path);
    this.listingOf(path)?.add(path, data.length, md5(data));
  }

  async placeBlob(src: StorageDriver, srcPath: string, destPath: string, size: number, opts: PlaceOptions = {}): Promise<PlaceOutcome> {
    const outcome = await this.placeBlobData(src, srcPath, destPath, size, opts);
    this.listingOf(destPath)?.add(destPath, size);
    return outcome;
  }

  private async placeBlobData(src: StorageDriver, srcPath: string, destPath: string, size: number, opts: PlaceOptions): Promise<PlaceOutcome> {
    if (opts.absent !== true) {
      const there = await this.stat(destPath);
      if (there?.kind === 'file' && there.size === size) return 'exists';
    }
    if (src instanceof S3Storage && src.service === this.service) {
      try {
        await this.copyWithin(src, srcPath, destPath, size);
      } catch (err) {
        if (isNotFound(err)) throw new RegfsError('BLOB_UNKNOWN', `blob data "${srcPath}" does not exist in ${src.location}`, { path: srcPath, cause: err });
        throw err;
      }
      return 'copied';
    }
    const body = await src.reader(srcPath);
    if (body === undefined) throw new RegfsError('BLOB_UNKNOWN', `blob data "${srcPath}" does not exist in ${src.location}`, { path: srcPath });
    await this.upload(body, destPath, size, `${src.location}: ${srcPath}`);
    return 'copied';
  }

  /** Server-side copy on one service: no byte passes through regfs. */
  private async copyWithin(src: S3Storage, srcPath: string, destPath: string, size: number): Promise<void> {
    const copySource = `${src.bucket}/${srcPath.split('/').map(encodeURIComponent).join('/')}`;
    if (size <= this.service.copyThreshold) {
      await this.sendData(
        new CopyObjectCommand({ Bucket: this.bucket, Key: destPath, CopySource: copySource, MetadataDirective: 'REPLACE', ContentType: CONTENT_TYPE }),
        `copying s3://${src.bucket}/${srcPath} to`,
        destPath,
      );
      return;
    }
    const partSize = Math.max(this.service.copyPartSize, Math.ceil(size / MAX_PARTS));
    await this.multipart(destPath, async (uploadId) => {
      const parts: Promise<{ ETag: string; PartNumber: number }>[] = [];
      for (let first = 0, n = 1; first < size; first += partSize, n++) {
        const last = Math.min(size, first + partSize) - 1;
        const PartNumber = n;
        parts.push(
          this.sendData<{ CopyPartResult?: { ETag?: string } }>(
            new UploadPartCopyCommand({ Bucket: this.bucket, Key: destPath, UploadId: uploadId, PartNumber, CopySource: copySource, CopySourceRange: `bytes=${first}-${last}` }),
            `copying s3://${src.bucket}/${srcPath} to`,
            destPath,
          ).then((r) => ({ ETag: r.CopyPartResult?.ETag ?? '', PartNumber })),
        );
      }
      return Promise.all(parts);
    });
  }

  /**
   * Stream `body` (`size` bytes) to `key`: one PutObject below the part size, else a
   * multipart upload reading one part at a time, at most `partsInFlight` parts held and sent
   * at once (parts grow past `partSize` only for blobs of more than 10,000 parts). A body of another length than `size` fails (SIZE_INVALID) and leaves nothing.
   */
  private async upload(body: Readable, key: string, size: number, from: string): Promise<void> {
    const { partsInFlight } = this.service;
    const partSize = Math.max(this.service.partSize, Math.ceil(size / MAX_PARTS));
    const short = (got: number): RegfsError => new RegfsError('SIZE_INVALID', `blob data ${from} is ${got} bytes, not ${size}`, { path: from });
    if (size < partSize) {
      const data = await readUpTo(body, size + 1);
      if (data.length !== size) throw short(data.length);
      await this.sendData(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: data, ContentType: CONTENT_TYPE, ContentLength: size }), 'writing', key);
      return;
    }
    await this.multipart(key, async (uploadId) => {
      const done: { ETag: string; PartNumber: number }[] = [];
      const inFlight = new Set<Promise<void>>();
      let PartNumber = 0;
      let total = 0;
      for await (const part of partsOf(body, partSize)) {
        total += part.length;
        if (total > size) throw short(total);
        const n = ++PartNumber;
        const p: Promise<void> = this.sendData<{ ETag?: string }>(
          new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: n, Body: part, ContentLength: part.length }),
          'writing',
          key,
        ).then((r) => {
          done.push({ ETag: r.ETag ?? '', PartNumber: n });
          inFlight.delete(p);
        });
        inFlight.add(p);
        // A failed part stops the upload at once; the others are awaited below.
        p.catch(() => undefined);
        if (inFlight.size >= partsInFlight) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      if (total !== size) throw short(total);
      return done.sort((a, b) => a.PartNumber - b.PartNumber);
    });
  }

  /** A multipart upload of `key`: created, its parts made by `parts`, completed; aborted on any failure. */
  private async multipart(key: string, parts: (uploadId: string) => Promise<{ ETag: string; PartNumber: number }[]>): Promise<void> {
    const created = await this.send<{ UploadId?: string }>(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: CONTENT_TYPE }), 'writing', key);
    const uploadId = created.UploadId!;
    try {
      const list = await parts(uploadId);
      await this.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: list } }), 'writing', key);
    } catch (err) {
      try {
        await this.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }), 'aborting the upload of', key);
      } catch {
        // the first failure is the one to report
      }
      throw err;
    }
  }

  /**
   * The multipart uploads in progress below `prefix` (a directory path): invisible to
   * listings, they hold their parts' data until completed or aborted.
   */
  async listUploads(prefix: string): Promise<MultipartUpload[]> {
    const out: MultipartUpload[] = [];
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      const page = await this.send<ListMultipartUploadsCommandOutput>(
        new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: `${prefix}/`, MaxUploads: this.service.listPage, ...(KeyMarker === undefined ? {} : { KeyMarker, UploadIdMarker }) }),
        'listing the multipart uploads of',
        `${prefix}/`,
      );
      for (const u of page.Uploads ?? []) {
        if (u.Key !== undefined && u.UploadId !== undefined) out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated ?? new Date(0) });
      }
      [KeyMarker, UploadIdMarker] = page.IsTruncated === true ? [page.NextKeyMarker, page.NextUploadIdMarker] : [undefined, undefined];
    } while (KeyMarker !== undefined);
    return out;
  }

  /**
   * Delete exactly these keys (none below them), 1,000 a DeleteObjects request, the requests
   * at once under the service's limit: what a caller that has listed the keys already
   * deletes, at one request per 1,000 keys instead of a listing and a request per path. A key
   * that does not exist is no error.
   */
  async deleteKeys(keys: string[]): Promise<void> {
    for (const [dir, l] of [...this.listings]) if (keys.some((k) => l.covers(k))) this.listings.delete(dir);
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += PAGE) batches.push(keys.slice(i, i + PAGE));
    await Promise.all(
      batches.map(async (batch) => {
        const res = await this.send<{ Errors?: { Key?: string; Code?: string }[] }>(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
          'deleting',
          batch[0]!,
        );
        const failed = res.Errors ?? [];
        if (failed.length > 0) {
          const key = failed[0]!.Key ?? batch[0]!;
          throw new RegfsError('IO_ERROR', `deleting s3://${this.bucket}/${key}: ${failed[0]!.Code ?? 'error'}${failed.length > 1 ? ` (and ${failed.length - 1} more keys)` : ''}`, { path: key });
        }
      }),
    );
  }

  /** Abort a multipart upload (its parts' data is freed); one already gone is no error. */
  async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }), 'aborting the upload of', key);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async reader(path: string): Promise<Readable | undefined> {
    let first: GetAnswer;
    try {
      first = await this.sendData<GetAnswer>(new GetObjectCommand({ Bucket: this.bucket, Key: path }), 'reading', path);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    if (first.Body === undefined) return undefined;
    // A connection cut or gone idle mid-body is taken up where it stopped: a ranged GET of the
    // same object (If-Match its ETag: one replaced meanwhile fails, never mixes), up to
    // READ_ATTEMPTS reads in a row that bring nothing. The stream's errors are RegfsErrors
    // naming the key (S3_UNREACHABLE for the network), never the SDK's message.
    const size = first.ContentLength;
    const etag = first.ETag;
    const resume = (offset: number): Promise<GetAnswer> =>
      this.sendData<GetAnswer>(new GetObjectCommand({ Bucket: this.bucket, Key: path, Range: `bytes=${offset}-`, ...(etag === undefined ? {} : { IfMatch: etag }) }), 'reading', path);
    const bucket = this.bucket;
    async function* bytes(): AsyncGenerator<Buffer> {
      let body: AsyncIterable<Buffer> | undefined = first.Body;
      let offset = 0;
      let idle = 0;
      while (body !== undefined) {
        const before = offset;
        try {
          for await (const chunk of body) {
            offset += chunk.length;
            yield chunk;
          }
          return;
        } catch (err) {
          const e = s3Error(err, 'reading', bucket, path);
          idle = offset > before ? 1 : idle + 1;
          if (e.code !== 'S3_UNREACHABLE' || size === undefined || idle >= READ_ATTEMPTS) throw e;
          if (offset >= size) return;
          body = (await resume(offset)).Body;
        }
      }
    }
    return Readable.from(bytes(), { objectMode: false });
  }

  async delete(path: string): Promise<void> {
    const batch: string[] = [];
    const flush = async (): Promise<void> => {
      const keys = batch.splice(0, PAGE);
      const res = await this.send<{ Errors?: { Key?: string; Code?: string }[] }>(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
        'deleting',
        path,
      );
      const failed = res.Errors ?? [];
      if (failed.length > 0) {
        throw new RegfsError('IO_ERROR', `deleting s3://${this.bucket}/${failed[0]!.Key ?? path}: ${failed[0]!.Code ?? 'error'}${failed.length > 1 ? ` (and ${failed.length - 1} more keys)` : ''}`, { path });
      }
    };
    // The key itself (deleting a key that does not exist succeeds) and every key below it,
    // never a sibling that shares the prefix ("a/b" but not "a/bc").
    batch.push(path);
    // A listing that answers for what is deleted is dropped: the next read lists anew.
    for (const [dir, l] of [...this.listings]) {
      if (l.covers(path) || path === l.dir || l.dir.startsWith(`${path}/`)) this.listings.delete(dir);
    }
    for await (const page of this.pages(`${path}/`, undefined)) {
      for (const o of page.Contents ?? []) if (o.Key !== undefined) batch.push(o.Key);
      if (batch.length >= PAGE) await flush();
    }
    while (batch.length > 0) await flush();
  }
}

/** A GetObject's answer, as reader() reads it. */
interface GetAnswer {
  Body?: Readable;
  ContentLength?: number;
  ETag?: string;
}

/** The hex MD5 of bytes: the ETag S3 gives an object written by one PutObject (no KMS encryption). */
function md5(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

/** An ETag without its quotes, in lower case. */
function unquote(etag: string): string {
  return etag.replace(/^"|"$/g, '').toLowerCase();
}

/** At most `max` bytes of a stream, read whole (the rest is left unread and the stream destroyed). */
async function readUpTo(body: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    n += chunk.length;
    if (n >= max) break;
  }
  return Buffer.concat(chunks, n).subarray(0, max);
}

/** A stream cut into parts of exactly `partSize` bytes (the last may be shorter). */
async function* partsOf(body: Readable, partSize: number): AsyncGenerator<Buffer> {
  let chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    let c = chunk;
    while (n + c.length >= partSize) {
      const take = partSize - n;
      chunks.push(c.subarray(0, take));
      yield Buffer.concat(chunks, partSize);
      c = c.subarray(take);
      chunks = [];
      n = 0;
    }
    if (c.length > 0) {
      chunks.push(c);
      n += c.length;
    }
  }
  if (n > 0) yield Buffer.concat(chunks, n);
}
