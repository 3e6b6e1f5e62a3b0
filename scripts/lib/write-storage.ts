/**
 * A pure-TypeScript writer of Distribution registry storage: given pushes of synthetic images,
 * it writes exactly the files `skopeo copy --all dir:X docker://REG/repo:tag` leaves behind on a
 * docker-registry 2.8 (storage-formats.md §1A.3, §3.2), without running a registry. It is
 * regfs's own planner and writer (src/ops/common.ts planWrites, src/registry/write.ts) fed
 * with bytes, so test/fixtures.test.ts, which compares this output with the real registry's,
 * proves them too.
 *
 * Pushes are written in rounds: a tag pushed twice is written once per round, so a later push
 * moves `current` and keeps the earlier `index/` entry, as the registry does.
 */
import { createLinker } from '../../src/fs/link.js';
import { parseManifest } from '../../src/manifest.js';
import { planWrites, type ImageContent } from '../../src/ops/common.js';
import { storageRoot } from '../../src/registry/layout.js';
import { writePlan } from '../../src/registry/write.js';
import { parseRepoName, parseTag } from '../../src/reference.js';
import { blobsOf, manifestsOf, type Manifest } from './images.js';

/** One push: `image` into `repo`, by `tag` or (without one) by digest. */
export interface StoragePush {
  repo: string;
  tag?: string;
  image: Manifest;
}

/** Write the storage the given pushes, in order, leave under `<registryRoot>/docker/registry/v2`. */
export async function writeStorage(registryRoot: string, pushes: readonly StoragePush[]): Promise<void> {
  const v2 = storageRoot(registryRoot);
  const linker = createLinker('copy');
  let fresh = true;
  for (const round of rounds(pushes)) {
    const plan = planWrites(round.map(content), (m) => ({ data: m.raw, size: m.raw.length }));
    await writePlan(v2, plan, { linker, fresh });
    fresh = false;
  }
}

/** Split pushes into rounds in which each tag appears once, in push order. */
function rounds(pushes: readonly StoragePush[]): StoragePush[][] {
  const out: StoragePush[][] = [];
  const tagRound = new Map<string, number>();
  for (const push of pushes) {
    const key = `${push.repo}:${push.tag ?? ''}`;
    const round = push.tag === undefined ? 0 : (tagRound.get(key) ?? -1) + 1;
    if (push.tag !== undefined) tagRound.set(key, round);
    while (out.length <= round) out.push([]);
    out[round]!.push(push);
  }
  return out;
}

/** A push as regfs's writer takes an image: parsed manifests, blob bytes. */
function content(push: StoragePush): ImageContent {
  return {
    repo: parseRepoName(push.repo),
    tag: push.tag === undefined ? undefined : parseTag(push.tag),
    digest: push.image.digest,
    manifests: manifestsOf(push.image).map((m) => parseManifest(m.bytes, m.digest, `${push.repo}@${m.digest}`)),
    blobs: new Map(blobsOf(push.image).map((b) => [b.digest, { data: b.bytes, size: b.size }])),
  };
}
