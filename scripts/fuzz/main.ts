/**
 * The differential harness's command line (regfs must be built first: `npm run fuzz` builds it, or `npm run build`):
 *
 *   npm run fuzz -- [--seeds N] [--seed S] [--damage KINDS] [--lists N] [--keep] [--s3]
 *
 * runs N seeds from S (default: 10 seeds from 1; `--seed S` alone runs that one), prints per seed what the state holds, the
 * lists judged, the checks made and every discrepancy, with a line that reproduces it. Exits
 * 1 if any discrepancy was found, 2 if the harness itself failed on a seed. KINDS: see kinds.ts (`all`, `none`, groups, `-kind`).
 * `--s3` judges regfs on S3 instead (a Ceph RADOS Gateway started for the run: see run.ts).
 */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { scratchDir } from '../../test/helpers/crash.js';
import { ALL_KINDS, KIND_GROUPS, parseKinds } from './kinds.js';
import { reproduction, runSeed, startS3Target } from './run.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string' },
      seed: { type: 'string' },
      damage: { type: 'string', default: 'all' },
      lists: { type: 'string', default: '2' },
      keep: { type: 'boolean', default: false },
      s3: { type: 'boolean', default: false },
      verbose: { type: 'boolean', short: 'v', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(
      [
        'npm run fuzz -- [--seeds N] [--seed S] [--damage KINDS] [--lists N] [--keep] [--verbose]',
        '  --seeds N      how many seeds (default 10; 1 when --seed is given)',
        '  --seed S       the first seed (default 1)',
        '  --damage K,..  kinds of trouble (default all); groups: ' + Object.keys(KIND_GROUPS).join(', '),
        '                 kinds: ' + ALL_KINDS.join(', ') + '; -kind removes one',
        '  --lists N      random lists judged per state (default 2)',
        '  --keep         keep each seed\'s files (source, outputs, lists) and print where',
        '  --s3           judge regfs on S3: each source uploaded to a Ceph RADOS Gateway, extract S3 to S3 and S3 to disk',
        '  --verbose      print every state line and list even for a seed without discrepancies',
      ].join('\n'),
    );
    return 0;
  }
  const seeds = Number(values.seeds ?? (values.seed === undefined ? 10 : 1));
  const first = Number(values.seed ?? 1);
  const lists = Number(values.lists);
  if (!Number.isInteger(seeds) || seeds < 1 || !Number.isInteger(first) || !Number.isInteger(lists) || lists < 1) {
    throw new Error('--seeds, --seed and --lists take positive integers');
  }
  const kinds = parseKinds(values.damage);
  const scratch = await scratchDir('regfs-fuzz-');
  const s3 = values.s3 ? await startS3Target() : undefined;
  let total = 0;
  let checks = 0;
  let bad = 0;
  let failed = 0;
  /** "check: kind" -> count, and the first seed that showed it. */
  const classes = new Map<string, { count: number; seeds: Set<number>; first: string }>();
  try {
    for (let seed = first; seed < first + seeds; seed++) {
      const dir = await mkdtemp(join(scratch.dir, `seed-${seed}-`));
      let r;
      try {
        r = await runSeed(seed, { kinds, lists, dir, keep: values.keep, ...(s3 === undefined ? {} : { s3: s3.target }) });
      } catch (err) {
        // The harness itself failed (a push refused, a registry that would not start): not a finding about regfs.
        failed++;
        console.log(`seed ${seed}: HARNESS FAILURE ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      total += r.discrepancies.length;
      checks += r.checks;
      if (r.discrepancies.length > 0) bad++;
      const phases = Object.entries(r.phases).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}`).join(', ');
      console.log(`seed ${seed}: ${r.checks} checks, ${r.discrepancies.length} discrepancies, ${(r.ms / 1000).toFixed(1)} s (${phases})`);
      if (values.verbose || r.discrepancies.length > 0) {
        for (const s of r.state) console.log(`  state: ${s}`);
        for (const [i, l] of r.lists.entries()) console.log(`  list ${i}: ${l.join(' | ')}`);
      }
      for (const d of r.discrepancies) {
        console.log(`  DISCREPANCY [${d.check}] ${d.detail}`);
        const key = `${d.check.replace(/ list \d+$/, '')}: ${d.kind}`;
        const c = classes.get(key) ?? { count: 0, seeds: new Set<number>(), first: reproduction(seed, kinds, lists, s3 !== undefined) };
        c.count++;
        c.seeds.add(seed);
        classes.set(key, c);
      }
      if (r.discrepancies.length > 0) console.log(`  reproduce: ${reproduction(seed, kinds, lists, s3 !== undefined)}`);
      if (r.kept !== undefined) console.log(`  kept: ${r.kept}`);
    }
  } finally {
    await s3?.stop();
    if (!values.keep) await scratch.cleanup();
  }
  if (classes.size > 0) console.log('discrepancies by kind (count, seeds, first reproduction):');
  for (const [key, c] of [...classes].sort((a, b) => b[1].count - a[1].count || (a[0] < b[0] ? -1 : 1))) {
    console.log(`  ${c.count} in ${c.seeds.size} seeds  ${key}\n      ${c.first}`);
  }
  console.log(`${seeds - failed} states, ${checks} checks, ${total} discrepancies in ${bad} states${failed > 0 ? `; ${failed} seeds failed in the harness` : ''}`);
  return failed > 0 ? 2 : total > 0 ? 1 : 0;
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 2;
  },
);
