/** `regfs rm ROOT REF` */
import type { Argv } from 'yargs';
import { ExitCode, printWarning, type Io } from '../output.js';

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
    .positional('root', { type: 'string', demandOption: true, describe: 'registry root (holds docker/registry/v2), or that v2 directory' })
    .positional('ref', { type: 'string', demandOption: true, describe: 'repo:tag, repo@sha256:<hex>, repo:tag@sha256:<hex>, or repo' })
    .option('force', { type: 'boolean', default: false, describe: 'delete a manifest even if an index in the repository names it' })
    .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'print what would be removed; remove nothing' })
    .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON on stdout' })
    .example('$0 rm /var/lib/registry team/app:old', 'delete one tag')
    .example('$0 rm /var/lib/registry team/app', 'delete the repository; team/app/worker stays') as unknown as Argv<RmArgs>;
}

export async function handler(args: RmArgs, io: Io): Promise<number> {
  const { rm } = await import('../../ops/rm.js');
  const r = await rm({ root: args.root, ref: args.ref, force: args.force, dryRun: args['dry-run'] });
  if (args.json) io.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else {
    const tags = r.tags.length > 0 ? ` (tags: ${r.tags.join(', ')})` : '';
    io.stdout.write(`${r.dryRun ? 'would remove' : 'removed'} ${r.what} ${r.ref}${tags}\n`);
  }
  if (!r.dryRun) printWarning(io, 'blobs are left for regfs gc; restart any registry serving this storage');
  return ExitCode.ok;
}
