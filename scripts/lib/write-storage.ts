/**
 * A pure-TypeScript writer of Distribution registry storage: given pushes of synthetic images,
 * it writes exactly the files `skopeo copy --all dir:X docker://REG/repo:tag` leaves behind on a
 * docker-registry 2.8 (storage-formats.md §1A.3, §3.2), without running a registry. It is
 * regfs's own writer (src/registry/write.ts) fed with bytes, so test/fixtures.test.ts, which
 * compares this output with the real registry's, proves that writer too.
 *
 * Pushes are written in rounds: a tag pushed twice is written once per round, so a later push
 * moves `current` and keeps the earlier `index/` entry, as the registry does.
 */
import type { Digest } from '../../src/digest.js';
import { createLinker } from '../../src/fs/link.js';
import { storageRoot } from '../../src/registry/layout.js';
import { emptyPlan, repoWrites, writePlan, type WritePlan } from '../../src/registry/write.js';
import { parseRepoName, parseTag } from '../../src/reference.js';
import { manifestsOf, type Manifest } from './images.js';

/** One push: `image` into `repo`, by `tag` or (without one) by digest. */
export interface StoragePush {
  repo: string;
  tag?: string;
  image: Manifest;
}

/** Files in flight at once. */
const CONCURRENCY = 64;

/** Write the storage the given pushes, in order, leave under `<registryRoot>/docker/registry/v2`. */
export async function writeStorage(registryRoot: string, pushes: readonly StoragePush[]): Promise<void> {
  const v2 = storageRoot(registryRoot);
  const linker = createLinker('copy');
  let fresh = true;
  for (const plan of rounds(pushes)) {
    await writePlan(v2, plan, { linker, jobs: CONCURRENCY, fresh });
    fresh = false;
  }
}

/** Split pushes into plans in which each tag appears once, in push order. */
function rounds(pushes: readonly StoragePush[]): WritePlan[] {
  const plans: WritePlan[] = [];
  const tagRound = new Map<string, number>();
  for (const push of pushes) {
    const key = `${push.repo}:${push.tag ?? ''}`;
    const round = push.tag === undefined ? 0 : (tagRound.get(key) ?? -1) + 1;
    if (push.tag !== undefined) tagRound.set(key, round);
    while (plans.length <= round) plans.push(emptyPlan());
    addPush(plans[round]!, push);
  }
  return plans;
}

function addPush(plan: WritePlan, push: StoragePush): void {
  const repo = repoWrites(plan, parseRepoName(push.repo));
  const addBlob = (d: Digest, bytes: Buffer): void => {
    plan.blobs.set(d, { data: bytes, size: bytes.length });
  };
  for (const m of manifestsOf(push.image)) {
    addBlob(m.digest, m.bytes);
    repo.revisions.add(m.digest);
    if (m.kind !== 'image') continue;
    for (const b of [m.config, ...m.layers]) {
      addBlob(b.digest, b.bytes);
      repo.layers.add(b.digest);
    }
  }
  if (push.tag !== undefined) repo.tags.set(parseTag(push.tag), push.image.digest);
}
