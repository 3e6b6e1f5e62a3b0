/** `regfs gc ROOT [--delete-untagged] [--apply]` */
import type { Argv } from 'yargs';
import type { GcResult } from '../../ops/gc.js';
import { DEFAULT_JOBS } from '../../defaults.js';
import { escapeControl } from '../../errors.js';
import { ExitCode, formatBytes, printWarning, type Io, type RunOutput } from '../output.js';
import { withProgressBar } from '../progress-bar.js';
import { examples } from './shared.js';

interface GcArgs {
  root: string;
  'delete-untagged': boolean;
  'keep-referrers': boolean;
  apply: boolean;
  verbose: boolean;
  'upload-age': number;
  jobs: number;
  json: boolean;
}

export const command = 'gc <root>';
export const describe = 'Garbage-collect registry storage, index-aware; a dry run unless --apply';

export function builder(y: Argv): Argv<GcArgs> {
  return y
    .positional('root', { type: 'string', demandOption: true, describe: 'registry root (holds docker/registry/v2), that v2 directory, or s3://BUCKET/PREFIX' })
    .option('delete-untagged', { alias: 'm', type: 'boolean', default: false, describe: 'also delete manifests no tag reaches (children of tagged indexes are reached)' })
    .option('keep-referrers', {
      type: 'boolean',
      default: true,
      describe: 'with --delete-untagged: keep every manifest whose subject is kept, transitively (signatures, SBOMs, attestations); --no-keep-referrers deletes them',
    })
    .option('apply', { type: 'boolean', default: false, describe: 'delete; without it, only report what would go' })
    .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'list every blob, manifest and link' })
    .option('upload-age', { type: 'number', default: 24, describe: 'on S3: abort multipart uploads started more than this many hours ago (the registry never does)' })
    .option('jobs', { alias: 'j', type: 'number', default: DEFAULT_JOBS, describe: 'files read or deleted at once' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON document on stdout, also on failure (docs/json.md)' })
    .example(
      examples([
        ['$0 gc /var/lib/registry', 'what would be deleted, and how many bytes'],
        ['$0 gc /var/lib/registry --delete-untagged --apply', 'delete, sparing children of tagged indexes and referrers of what is kept'],
        ['$0 gc s3://registry/prod --apply', 'storage on S3: also abort multipart uploads older than a day'],
      ]),
    ) as unknown as Argv<GcArgs>;
}

export async function handler(args: GcArgs, io: Io, run: RunOutput): Promise<number> {
  const { gc } = await import('../../ops/gc.js');
  const r: GcResult = await withProgressBar(io, (onProgress) => gc({ root: args.root, deleteUntagged: args['delete-untagged'], keepReferrers: args['keep-referrers'], apply: args.apply, uploadAgeHours: args['upload-age'], jobs: args.jobs, onProgress }));
  if (args.json) {
    run.finishJson(ExitCode.ok, r);
  } else {
    if (args.verbose) {
      for (const m of r.manifests) io.stdout.write(`manifest  ${m.repo}@${m.digest}\n`);
      for (const b of r.blobs) io.stdout.write(`blob      ${b.digest}  ${formatBytes(b.size)}\n`);
      for (const l of r.links) io.stdout.write(`link      ${escapeControl(l)}\n`);
      for (const l of r.temps) io.stdout.write(`leftover  ${escapeControl(l)}\n`);
      for (const l of r.strays) io.stdout.write(`stray     ${escapeControl(l)}\n`);
      for (const u of r.uploads ?? []) io.stdout.write(`upload    ${escapeControl(u.key)}  ${u.initiated}\n`);
    }
    if (args.verbose) for (const x of r.referrers) io.stdout.write(`referrer  ${x.repo}@${x.digest}  of ${x.subject}  ${x.kept ? 'kept' : 'deleted'}\n`);
    for (const p of r.problems) io.stdout.write(`${p.code}  ${escapeControl(p.message)}\n`);
    const n = r.referrers.length;
    if (n > 0) {
      io.stdout.write(
        r.referrers[0]!.kept
          ? `kept ${n} untagged referrer${n === 1 ? '' : 's'} (signatures, SBOMs, attestations) of kept manifests; --no-keep-referrers deletes them\n`
          : `${r.applied ? 'deleted' : 'would delete'} ${n} untagged referrer${n === 1 ? '' : 's'} (signatures, SBOMs, attestations) of kept manifests (--no-keep-referrers)\n`,
      );
    }
    const k = r.strays.length;
    if (k > 0) io.stdout.write(`left ${k} ${k === 1 ? 'entry that is' : 'entries that are'} no part of the registry layout (someone's: regfs verify lists them)\n`);
    const u = r.uploads?.length ?? 0;
    if (u > 0) io.stdout.write(`${r.applied ? 'aborted' : 'would abort'} ${u} multipart upload${u === 1 ? '' : 's'} older than ${args['upload-age']} hours (the registry never aborts them; listings do not show them)\n`);
    const what = `${r.blobs.length} blobs (${formatBytes(r.bytes)}), ${r.manifests.length} untagged manifests, ${r.links.length} links, ${r.temps.length} leftovers`;
    io.stdout.write(r.applied ? `deleted ${what}; ${r.marked} blobs in use; ${r.seconds.toFixed(2)} s\n` : `would delete ${what}; ${r.marked} blobs in use; nothing deleted (dry run: --apply deletes)\n`);
  }
  if (r.applied) printWarning(io, 'restart any registry serving this storage: its blob descriptor cache still holds what was deleted');
  if (!r.applied && r.problems.length > 0) printWarning(io, `${r.problems.length} thing(s) gc relies on could not be read; --apply will refuse until regfs verify is clean`);
  return ExitCode.ok;
}
