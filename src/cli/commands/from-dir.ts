/** `regfs from-dir IN DEST` */
import type { Argv } from 'yargs';
import { fromDir, type FromDirResult } from '../../ops/from-dir.js';
import { DEFAULT_JOBS } from '../../ops/common.js';
import { LINK_MODES, type LinkMode } from '../../fs/link.js';
import { ExitCode, createProgressBar, formatBytes, printProblems, printWarning, renderWriteResult, writeResultJson, type Io } from '../output.js';

interface FromDirArgs {
  in: string;
  dest: string;
  name: string | undefined;
  verify: boolean;
  'strip-registry': boolean;
  'keep-going': boolean;
  link: LinkMode;
  jobs: number;
  'dry-run': boolean;
  json: boolean;
}

export const command = 'from-dir <in> <dest>';
export const describe = "Seed registry storage from skopeo dir: images (a tree of them, or one with --name)";

export function builder(y: Argv): Argv<FromDirArgs> {
  return y
    .positional('in', { type: 'string', demandOption: true, describe: 'a tree of image directories (to-dir, skopeo sync --scoped --dest dir), or one image directory' })
    .positional('dest', { type: 'string', demandOption: true, describe: 'registry root to write; created if missing, merged into if it holds a registry' })
    .option('name', { type: 'string', describe: 'repo:tag (or repo@sha256:…) for a single image directory' })
    .option('verify', { type: 'boolean', default: true, describe: 'hash every blob against its digest (--no-verify checks presence and size only)' })
    .option('strip-registry', { type: 'boolean', default: false, describe: 'drop a leading registry host from directory names (skopeo sync --scoped keeps it)' })
    .option('keep-going', { type: 'boolean', default: false, describe: 'import the images that verify even if others do not (exit 3)' })
    .option('link', { choices: LINK_MODES, default: 'auto' as LinkMode, describe: 'auto: hard-link blob files, copy if the filesystem refuses; hardlink: fail instead; copy: always copy' })
    .option('jobs', { alias: 'j', type: 'number', default: DEFAULT_JOBS, describe: 'operations in flight at once' })
    .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'verify and print the plan; write nothing' })
    .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON on stdout' })
    .example('$0 from-dir /mnt/usb/images /var/lib/registry', 'import every image directory of the tree')
    .example('$0 from-dir /tmp/app /var/lib/registry --name team/app:v1', 'import one image directory') as unknown as Argv<FromDirArgs>;
}

export async function handler(args: FromDirArgs, io: Io): Promise<number> {
  const bar = createProgressBar(io);
  let result: FromDirResult;
  try {
    result = await fromDir({
      input: args.in,
      output: args.dest,
      name: args.name,
      noVerify: !args.verify,
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
  if (args.json) io.stdout.write(writeResultJson(result));
  else {
    const verified = args.verify ? `verified ${formatBytes(result.bytesVerified)} of blobs; ` : 'blobs not hashed (--no-verify); ';
    io.stdout.write(verified + renderWriteResult(result, 'imported'));
  }
  return result.problems.length > 0 ? ExitCode.partial : ExitCode.ok;
}
