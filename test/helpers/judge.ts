/**
 * The real registry as judge: an image is served when docker-registry gives its digest and
 * skopeo copies it in full; the output is minimal when the registry's own garbage collector
 * finds nothing to delete.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '../../src/digest.js';
import { isIndexKind, parseManifestContent } from '../../src/manifest.js';
import { registryGarbageCollectDryRun, startRegistry } from '../../scripts/lib/registry-server.js';
import { skopeoCopy, skopeoInspectRaw, skopeoManifestDigestOf } from '../../scripts/lib/skopeo.js';

/** An image as skopeo addresses it after the host (`repo:tag` or `repo@digest`), and its digest. */
export interface Served {
  name: string;
  digest: string;
}

/** Start a read-only registry on `root` and judge it; then its garbage collector must find nothing. */
export async function assertServed(root: string, expected: Served[], absent: string[], scratch: string): Promise<void> {
  const reg = await startRegistry({ root, readOnly: true });
  try {
    await assertServing(reg.host, expected, absent, scratch);
  } finally {
    await reg.stop();
  }
  const gc = await registryGarbageCollectDryRun(root);
  assert.deepEqual(gc.blobsEligible, [], gc.output);
}

/** Every expected image has its digest and copies in full; no absent one is served. */
export async function assertServing(host: string, expected: Served[], absent: string[], scratch: string): Promise<void> {
  await mkdir(scratch, { recursive: true });
  for (const s of expected) {
    assert.equal(await skopeoManifestDigestOf(`docker://${host}/${s.name}`), s.digest, s.name);
    await copyInFull(host, s.name, scratch);
  }
  for (const name of absent) await assert.rejects(skopeoManifestDigestOf(`docker://${host}/${name}`), `${name} must not be served`);
}

/**
 * `skopeo copy` the image, every platform of an index. skopeo 1.9 cannot copy a nested index
 * with `--all`, so such an index is walked here and each child copied by digest.
 */
export async function copyInFull(host: string, name: string, into: string): Promise<void> {
  const ref = `docker://${host}/${name}`;
  const raw = await skopeoInspectRaw(ref);
  const m = parseManifestContent(raw, digestOf(raw), ref);
  const repo = name.replace(/[:@].*$/, '');
  if (m.manifests.some((c) => c.mediaType?.includes('index') === true || c.mediaType?.includes('list') === true)) {
    for (const c of m.manifests) await copyInFull(host, `${repo}@${c.digest}`, into);
    return;
  }
  await skopeoCopy(ref, `dir:${join(into, name.replaceAll(/[/:@]/g, '_'))}`, { all: isIndexKind(m.kind) });
}

