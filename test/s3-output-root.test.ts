/**
 * Where an S3 output may go beside an S3 source: never in the source's registry root (its
 * rootdirectory), as on disk an output inside the source's directory is refused; a prefix
 * that merely starts with the same characters is another root. The refusal comes before any
 * request, so no server is needed: an allowed output gets as far as its first request, to an
 * endpoint where nothing listens.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pLimit from 'p-limit';
import { RegfsError } from '../src/errors.js';
import { s3OutputRoot } from '../src/ops/output-root.js';
import { S3Service } from '../src/storage/s3.js';

const service = new S3Service({ limit: pLimit(1), endpoint: 'http://127.0.0.1:1', region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: 'k', secretAccessKey: 's' } });

async function codeOf(source: string, output: string): Promise<string> {
  try {
    await s3OutputRoot(service.root(output), service.root(source));
    return 'none';
  } catch (err) {
    assert.ok(err instanceof RegfsError, String(err));
    return err.code;
  }
}

test('an S3 output inside the source registry root is refused; a sibling prefix is not', async () => {
  const refused: Array<[string, string]> = [
    ['s3://bkt/reg', 's3://bkt/reg'],
    ['s3://bkt/reg', 's3://bkt/reg/x'],
    ['s3://bkt/reg', 's3://bkt/reg/x/y'],
    ['s3://bkt/reg', 's3://bkt/reg/docker'],
    ['s3://bkt', 's3://bkt/out'],
  ];
  for (const [source, output] of refused) assert.equal(await codeOf(source, output), 'OUTPUT_IN_SOURCE', `${source} -> ${output}`);
  const allowed: Array<[string, string]> = [
    ['s3://bkt/reg', 's3://bkt/reg2'],
    ['s3://bkt/reg', 's3://bkt/re'],
    ['s3://bkt/reg', 's3://bkt/other/reg'],
    // As on disk, an output root around the source's is not inside it.
    ['s3://bkt/reg/x', 's3://bkt/reg'],
    ['s3://bkt/reg', 's3://bk2/reg'],
  ];
  for (const [source, output] of allowed) assert.equal(await codeOf(source, output), 'S3_UNREACHABLE', `${source} -> ${output}`);
  service.destroy();
});
