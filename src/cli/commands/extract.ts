/** `regfs extract LIST SRC OUT` */
import type { Argv } from 'yargs';
import { extract, type ExtractResult } from '../../ops/extract.js';
import { DEFAULT_JOBS } from '../../ops/common.js';
import { LINK_MODES, type LinkMode } from '../../fs/link.js';
import { ExitCode, createProgressBar, printProblems, printWarning, renderWriteResult, writeResultJson, type Io } from '../output.js';

interface ExtractArgs {
  list: string;
  src: string;
  out: string;
  'strip-registry': boolean;
  'keep-going': boolean;
  link: LinkMode;
  jobs: number;
  'dry-run': boolean;
  json: boolean;
}

export const command = 'extract <list> <src> <out>';
export const describe = 'Extract the listed images into a new (or existing) registry tree, blob data hard-linked';

export function builder(y: Argv): Argv<ExtractArgs> {
  return y
    .positional('list', { type: 'string', demandOption: true, describe: 'image list: a file, - for standard input, or a directory of *.list files' })
    .positional('src', { type: 'string', demandOption: true, describe: 'source registry root (holds docker/registry/v2), or that v2 directory' })
    .positional('out', { type: 'string', demandOption: true, describe: 'output registry root; created if missing, merged into if it holds a registry' })
    .option('strip-registry', { type: 'boolean', default: false, describe: 'drop a leading registry host (host.example.com/, host:5000/, localhost/) from list names' })
    .option('keep-going', { type: 'boolean', default: false, describe: 'extract the images that resolve even if others do not (exit 3)' })
    .option('link', { choices: LINK_MODES, default: 'auto' as LinkMode, describe: 'auto: hard-link, copy if the filesystem refuses; hardlink: fail instead; copy: always copy' })
    .option('jobs', { alias: 'j', type: 'number', default: DEFAULT_JOBS, describe: 'operations in flight at once' })
    .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'print the plan; write nothing' })
    .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON on stdout' })
    .example('$0 extract images.list /var/lib/registry /srv/subset', 'a registry tree with only the listed images')
    .example('grep app images.list | $0 extract - /var/lib/registry /srv/subset --dry-run', 'show what would be written') as unknown as Argv<ExtractArgs>;
}

export async function handler(args: ExtractArgs, io: Io): Promise<number> {
  const bar = createProgressBar(io);
  let result: ExtractResult;
  try {
    result = await extract({
      list: args.list,
      source: args.src,
      output: args.out,
      stripRegistry: args['strip-registry'],
      keepGoing: args['keep-going'],
      link: args.link,
      jobs: args.jobs,
      dryRun: args['dry-run'],
      onProgress: bar.update,
      onWarning: (m) => {
        bar.done();
        printWarning(io, m);
      },
    });
  } finally {
    bar.done();
  }
  printProblems(io, result.problems);
  io.stdout.write(args.json ? writeResultJson(result) : renderWriteResult(result, 'extracted'));
  return result.problems.length > 0 ? ExitCode.partial : ExitCode.ok;
}

