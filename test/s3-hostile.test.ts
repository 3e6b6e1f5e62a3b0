/**
 * S3 storage that the registry's `s3` driver accepts or serves in its own way, where regfs
 * must answer as the registry does and as regfs does on disk: an object named as the storage
 * root itself, directory-marker objects (keys ending in `/`).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ok, startS3World, type S3World } from './helpers/s3.js';

const V2 = 'docker/registry/v2';
const IMAGES = ['team/app:v1', 'team/app:v2', 'multiarch/tool:1.0'];

let w: S3World;
let list: string;

/** A copy of the source's images under `bucket/prefix`, written by regfs. */
async function copy(prefix: string): Promise<void> {
  ok(await w.regfs(['extract', list, 's3://src/reg', `s3://dst/${prefix}`]));
}

async function put(key: string, body: string): Promise<void> {
  await w.service.root('s3://dst').putContent(key, Buffer.from(body));
}

describe('regfs on S3 storage the registry reads its own way', { timeout: 600_000 }, () => {
  before(async () => {
    w = await startS3World(['src', 'dst']);
    list = join(w.scratch, 'images.list');
    await writeFile(list, `${IMAGES.join('\n')}\n`);
  });

  after(async () => {
    await w?.stop();
  });

  test('an object named as the storage root and directory markers: the keys below still make a registry', async () => {
    await copy('marked');
    const v2 = `marked/${V2}`;
    await put(v2, 'x');
    for (const dir of ['', 'repositories/', 'repositories/team/app/', 'repositories/team/app/_layers/', 'blobs/sha256/']) await put(`${v2}/${dir}`, '');
    await w.assertServedOnS3('dst', 'marked', w.served(IMAGES), []);
    const ls = JSON.parse(ok(await w.regfs(['ls', 's3://dst/marked', '--json'])).stdout) as { repositories: { name: string; tags: { tag: string }[] }[] };
    assert.deepEqual(ls.repositories.flatMap((r) => r.tags.map((t) => `${r.name}:${t.tag}`)).sort(), [...IMAGES].sort());
    ok(await w.regfs(['verify', 's3://dst/marked']));
    ok(await w.regfs(['extract', list, 's3://dst/marked', 's3://dst/marked-out']));
    await w.assertServedOnS3('dst', 'marked-out', w.served(IMAGES), []);
  });
});
