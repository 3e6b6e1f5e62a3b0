/** `regfs extract LIST SRC OUT` */
import type { Argv } from 'yargs';
import type { ExtractResult } from '../../ops/extract.js';
import { renderWriteResult, type Io, type RunOutput } from '../output.js';
import { examples, finishWrite, runWithProgress, treeOutput, withReferrersOption, withRepairOption, withWriteOptions, type ReferrersArgs, type RepairArgs, type WriteArgs } from './shared.js';

interface ExtractArgs extends WriteArgs, RepairArgs, ReferrersArgs {
  list: string;
  src: string;
  out: string;
  'strip-registry': boolean;
}

export const command = 'extract <list> <src> <out>';
export const describe = 'Extract the listed images into a new (or existing) registry tree, blob data hard-linked';

export function builder(y: Argv): Argv<ExtractArgs> {
  return withReferrersOption(withRepairOption(withWriteOptions(y), 'write the missing links in the output'))
    .positional('list', { type: 'string', demandOption: true, describe: 'image list: a file, - for standard input, or a directory of *.list files' })
    .positional('src', { type: 'string', demandOption: true, describe: 'source registry root (holds docker/registry/v2), or that v2 directory; or s3://BUCKET/PREFIX' })
    .positional('out', { type: 'string', demandOption: true, describe: 'output registry root (or s3://BUCKET/PREFIX); created if missing, merged into if it holds a registry' })
    .option('strip-registry', { type: 'boolean', default: false, describe: 'drop a leading registry host (host.example.com/, host:5000/, localhost/) from list names' })
    .example(
      examples([
        ['$0 extract images.list /var/lib/registry /srv/subset', 'a registry tree with only the listed images'],
        ['grep app all.list | $0 extract - /var/lib/registry /srv/app --dry-run', 'what would be written for the images of app, from standard input'],
      ]),
    ) as unknown as Argv<ExtractArgs>;
}

export async function handler(args: ExtractArgs, _io: Io, run: RunOutput): Promise<number> {
  const output = treeOutput(args.out, 'OUT');
  const { extract } = await import('../../ops/extract.js');
  const result: ExtractResult = await runWithProgress(run, args, (opts) =>
    extract({ ...opts, list: args.list, source: args.src, output, stripRegistry: args['strip-registry'], repair: args.repair, withReferrers: args['with-referrers'] }),
  );
  return finishWrite(run, args.json, result, (r) => renderWriteResult(r, 'extracted'));
}
