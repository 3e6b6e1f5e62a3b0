/** `regfs rm ROOT REF` */
import type { Argv } from 'yargs';
import { ExitCode, printWarning, type Io, type RunOutput } from '../output.js';
import { examples } from './shared.js';

interface RmArgs {
  root: string;
  ref: string;
  force: boolean;
  'dry-run': boolean;
  json: boolean;
}

export const command = 'rm <root> <ref>';
export const describe = 'Delete a tag (repo:tag), a manifest (repo@sha256:…) or a whole repository (repo); blobs are left for gc';

export function builder(y: Argv): Argv<RmArgs> {
  return y
    .positional('root', { type: 'string', demandOption: true, describe: 'registry root (holds docker/registry/v2), that v2 directory, or s3://BUCKET/PREFIX (deleted in order, without a lock: docs/s3.md)' })
    .positional('ref', { type: 'string', demandOption: true, describe: 'repo:tag, repo@sha256:<hex>, repo:tag@sha256:<hex>, or repo' })
    .option('force', { type: 'boolean', default: false, describe: 'delete a manifest even if an index in the repository names it' })
    .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'print what would be removed; remove nothing' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON document on stdout, also on failure (docs/json.md)' })
    .example(
      examples([
        ['$0 rm /var/lib/registry team/app:old', 'delete one tag'],
        ['$0 rm /var/lib/registry team/app', 'delete the repository; team/app/worker stays'],
      ]),
    ) as unknown as Argv<RmArgs>;
}

export async function handler(args: RmArgs, io: Io, run: RunOutput): Promise<number> {
  const { rm } = await import('../../ops/rm.js');
  const r = await rm({ root: args.root, ref: args.ref, force: args.force, dryRun: args['dry-run'] });
  if (args.json) run.finishJson(ExitCode.ok, r);
  else {
    const tags = r.tags.length > 0 ? ` (tags: ${r.tags.join(', ')})` : '';
    io.stdout.write(`${r.dryRun ? 'would remove' : 'removed'} ${r.what} ${r.ref}${tags}\n`);
  }
  if (!r.dryRun) printWarning(io, 'blobs are left for regfs gc; restart any registry serving this storage');
  return ExitCode.ok;
}
