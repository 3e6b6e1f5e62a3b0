/**
 * S3 storage that the registry's `s3` driver accepts or serves in its own way, where regfs
 * must answer as the registry does and as regfs does on disk: an object named as the storage
 * root itself, directory-marker objects (keys ending in `/`), and a link whose listed size is
 * a digest's length but whose content names another digest.
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

  test('a link of a digest\'s length that names another digest, or none: LINK_INVALID, as on disk, not an image the source does not serve', async () => {
    await copy('bad-links');
    const repo = `bad-links/${V2}/repositories/team/app`;
    const v1 = w.digests.get('team/app:v1')!;
    const v2 = w.digests.get('team/app:v2')!;
    const root = w.service.root('s3://dst/bad-links');
    const manifest = JSON.parse(String(await root.getContent(`${root.v2}/blobs/sha256/${v2.slice(7, 9)}/${v2.slice(7)}/data`, 1 << 20))) as { config: { digest: string }; layers: { digest: string }[] };
    const layers = [manifest.layers[0]!.digest, manifest.config.digest];
    // The registry serves another blob's bytes under v2's first layer, and answers 500 for v1.
    await put(`${repo}/_layers/${layers[0]!.replace(':', '/')}/link`, layers[1]!);
    await put(`${repo}/_manifests/revisions/${v1.replace(':', '/')}/link`, `sha256:${'z'.repeat(64)}`);
    const r = await w.regfs(['extract', list, 's3://dst/bad-links', 's3://dst/bad-links-out', '--json']);
    assert.equal(r.code, 1, r.stderr);
    const out = JSON.parse(r.stdout) as { error: { code: string }; problems: { code: string; message: string }[] };
    assert.equal(out.error.code, 'INCOMPLETE');
    assert.ok(out.problems.some((p) => p.code === 'LINK_INVALID' && p.message.includes(layers[0]!.slice(7))), r.stdout);
    assert.ok(out.problems.some((p) => p.code === 'LINK_INVALID' && p.message.includes(v1.slice(7))), r.stdout);
    assert.equal((await w.keysOf('dst', 'bad-links-out')).size, 0, 'nothing written');
    const v = await w.regfs(['verify', 's3://dst/bad-links', '--json']);
    assert.equal(v.code, 4, v.stderr);
    const found = (JSON.parse(v.stdout) as { findings: { code: string }[] }).findings.filter((p) => p.code === 'LINK_INVALID');
    assert.equal(found.length, 2, v.stdout);
  });
});
