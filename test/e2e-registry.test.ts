/**
 * The real registry is the judge: extract lists from the registry-written fixture, start
 * docker-registry 2.8 read-only on the output, and check with skopeo that every listed image
 * is served with its digest and copies in full, that nothing else is served, and that the
 * registry's own garbage collector finds nothing to delete (the output is minimal).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { extract } from '../src/ops/extract.js';
import { startRegistry, registryGarbageCollectDryRun } from '../scripts/lib/registry-server.js';
import { skopeoManifestDigestOf } from '../scripts/lib/skopeo.js';
import type { FixtureRef } from '../scripts/lib/fixture-spec.js';
import { FIXTURE_ROOT, readFixtureManifest } from './helpers/fixture.js';
import { tempDir } from './helpers/tree.js';
import { copyInFull } from './helpers/judge.js';

interface Selected {
  /** The reference as skopeo addresses it after the host. */
  name: string;
  digest: string;
}

async function judge(selected: Selected[], unlisted: Selected[], list: string[]): Promise<void> {
  const t = await tempDir('regfs-e2e-');
  try {
    const listFile = join(t.dir, 'images.list');
    await writeFile(listFile, `${list.join('\n')}\n`);
    const out = join(t.dir, 'out');
    await extract({ list: listFile, source: FIXTURE_ROOT, output: out });
    await mkdir(join(t.dir, 'copy'));
    const reg = await startRegistry({ root: out, readOnly: true });
    try {
      for (const s of selected) {
        const ref = `docker://${reg.host}/${s.name}`;
        assert.equal(await skopeoManifestDigestOf(ref), s.digest, s.name);
        await copyInFull(reg.host, s.name, join(t.dir, 'copy'));
      }
      for (const s of unlisted) {
        await assert.rejects(skopeoManifestDigestOf(`docker://${reg.host}/${s.name}`), `${s.name} must not be served`);
      }
    } finally {
      await reg.stop();
    }
    const gc = await registryGarbageCollectDryRun(out);
    assert.deepEqual(gc.blobsEligible, [], gc.output);
  } finally {
    await t.cleanup();
  }
}

const current = async (): Promise<FixtureRef[]> => (await readFixtureManifest()).refs.filter((r) => !r.overwritten);
const byTag = (r: FixtureRef): Selected => ({ name: `${r.repo}:${r.tag}`, digest: r.digest });

test('e2e: the whole fixture, extracted, is served exactly by docker-registry', async () => {
  const refs = await current();
  await judge(refs.map(byTag), [], refs.map((r) => r.ref));
});

test('e2e: a subset (an index, a nested repo, a digest line, schema1) is served; the rest is not', async () => {
  const refs = await current();
  const pick = (ref: string): FixtureRef => refs.find((r) => r.ref === ref)!;
  const tagged = ['multiarch/tool:1.0', 'team/platform/base/alpine:3.20', 'legacy/app:1.0', 'team/app/worker:1.1'].map(pick);
  const byDigest = pick('multiarch/tool:nested');
  const selected = [...tagged.map(byTag), { name: `${byDigest.repo}@${byDigest.digest}`, digest: byDigest.digest }];
  const chosen = new Set(tagged.map((r) => r.ref));
  const unlisted = refs.filter((r) => !chosen.has(r.ref)).map(byTag);
  await judge(selected, unlisted, [...tagged.map((r) => r.ref), `${byDigest.repo}@${byDigest.digest}`]);
});
