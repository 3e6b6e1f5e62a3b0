/**
 * The differential harness (scripts/fuzz) on S3: for each seed, the damaged source the
 * generator made through docker-registry 2.8.2 is uploaded key for key to a Ceph RADOS
 * Gateway, a registry on that prefix is the oracle, and extract S3 to S3 and S3 to disk of
 * random lists are judged request by request by a registry on each output (docs/testing.md).
 * Every seed must show zero discrepancies, and the source's keys must not change.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseKinds, formatKinds } from '../scripts/fuzz/kinds.js';
import { reproduction, runSeed, startS3Target } from '../scripts/fuzz/run.js';
import { scratchDir } from './helpers/crash.js';

const KINDS = parseKinds('all');
const SEEDS = [1, 2, 3, 4, 5, 6];
const LISTS = 2;

let s3: Awaited<ReturnType<typeof startS3Target>>;

before(async () => {
  s3 = await startS3Target();
});

after(async () => {
  await s3?.stop();
});

for (const seed of SEEDS) {
  test(`differential on S3: seed ${seed} (${formatKinds(KINDS)})`, async () => {
    const s = await scratchDir('regfs-differential-s3-');
    try {
      const r = await runSeed(seed, { kinds: KINDS, lists: LISTS, dir: join(s.dir, 'seed'), keep: false, s3: s3.target });
      assert.ok(r.checks > 20, `only ${r.checks} checks ran`);
      const lines = [...r.state, ...r.lists.map((l, i) => `list ${i}: ${l.join(' | ')}`), ...r.discrepancies.map((d) => `DISCREPANCY [${d.check}] ${d.detail}`)];
      assert.deepEqual(r.discrepancies, [], `${lines.join('\n')}\nreproduce: ${reproduction(seed, KINDS, LISTS, true)}`);
    } finally {
      await s.cleanup();
    }
  });
}
