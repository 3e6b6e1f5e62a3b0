/** `s3://`: what marks a root on S3. Alone in a module so that the CLI can tell one without loading storage code. */
export const S3_SCHEME = 's3://';

/** True if a root argument names S3 storage (then parseS3Url parses it). */
export function isS3Url(s: string): boolean {
  return s.startsWith(S3_SCHEME);
}
