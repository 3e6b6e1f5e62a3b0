/**
 * `s3://BUCKET/PREFIX`: a registry root on S3, PREFIX being the registry's `rootdirectory`
 * (the `s3` storage driver's keys are `<rootdirectory>/docker/registry/v2/...`, the
 * rootdirectory's leading and trailing `/` dropped: distribution's s3Path). The one place
 * such a root is parsed, and where the S3 endpoint a user gives is checked.
 */
import { quote, RegfsError } from '../errors.js';
import { STORAGE_PREFIX } from '../registry/layout.js';
import { isS3Url, S3_SCHEME } from './scheme.js';


/** A registry root on S3. */
export interface S3Root {
  bucket: string;
  /** The rootdirectory without leading or trailing `/`; '' for none. */
  prefix: string;
}


/** S3's bucket naming rule (3-63 characters, lower-case letters, digits, dots and hyphens). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Parse `s3://BUCKET[/PREFIX][/]`; S3_URL_INVALID saying what is wrong. */
export function parseS3Url(url: string): S3Root {
  const bad = (why: string): RegfsError => new RegfsError('S3_URL_INVALID', `${quote(url)} is not an S3 registry root (s3://BUCKET/PREFIX): ${why}`, { path: url });
  if (!isS3Url(url)) throw bad(`it does not start with ${S3_SCHEME}`);
  const rest = url.slice(S3_SCHEME.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  if (bucket === '') throw bad('no bucket');
  if (!BUCKET.test(bucket) || bucket.includes('..')) {
    throw bad(`${quote(bucket)} is not a bucket name (3 to 63 characters of a-z, 0-9, "." and "-", starting and ending with a letter or digit)`);
  }
  const prefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
  if (CONTROL.test(prefix)) throw bad('the prefix holds a control character');
  if (prefix !== '') {
    for (const part of prefix.split('/')) {
      if (part === '' || part === '.' || part === '..') throw bad(`the prefix has ${part === '' ? 'an empty' : `a ${quote(part)}`} component`);
    }
  }
  return { bucket, prefix };
}

/** The storage root's key prefix, `<prefix>/docker/registry/v2`, as layout.ts takes it for `v2`. */
export function s3StorageRoot(root: S3Root): string {
  return root.prefix === '' ? STORAGE_PREFIX : `${root.prefix}/${STORAGE_PREFIX}`;
}

/** `s3://bucket/prefix`, for messages. */
export function formatS3Root(root: S3Root): string {
  return `${S3_SCHEME}${root.bucket}${root.prefix === '' ? '' : `/${root.prefix}`}`;
}

/**
 * Check an endpoint URL (`--s3-endpoint`, `AWS_ENDPOINT_URL`): http or https, no user or
 * password in it (such a URL is refused without being printed: it may carry a secret).
 */
export function checkS3Endpoint(endpoint: string): string {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new RegfsError('S3_URL_INVALID', `the S3 endpoint ${quote(endpoint)} is not a URL`);
  }
  if (u.username !== '' || u.password !== '') {
    throw new RegfsError('S3_URL_INVALID', 'the S3 endpoint holds a user name or password; give credentials through AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new RegfsError('S3_URL_INVALID', `the S3 endpoint ${quote(endpoint)} is not an http:// or https:// URL`);
  return endpoint;
}
