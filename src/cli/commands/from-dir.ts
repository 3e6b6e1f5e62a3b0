/** `regfs from-dir IN DEST` */
import type { Argv } from 'yargs';
import type { FromDirResult } from '../../ops/from-dir.js';
import { renderWriteResult, type Io, type RunOutput } from '../output.js';
import { examples, finishWrite, runWithProgress, treeOutput, verifiedLine, withWriteOptions, type WriteArgs } from './shared.js';

interface FromDirArgs extends WriteArgs {
  in: string;
  dest: string;
  name: string | undefined;
  verify: boolean;
  'strip-registry': boolean;
}

export const command = 'from-dir <in> <dest>';
export const describe = "Seed registry storage from skopeo dir: images (a tree of them, or one with --name)";

export function builder(y: Argv): Argv<FromDirArgs> {
  return withWriteOptions(y)
    .positional('in', { type: 'string', demandOption: true, describe: 'a tree of image directories (to-dir, skopeo sync --scoped --dest dir), or one image directory' })
    .positional('dest', { type: 'string', demandOption: true, describe: 'registry root to write, or s3://BUCKET/PREFIX; created if missing, merged into if it holds a registry' })
    .option('name', { type: 'string', describe: 'repo:tag (or repo@sha256:…) for a single image directory' })
    .option('verify', { type: 'boolean', default: true, describe: 'hash every blob against its digest (--no-verify checks presence and size only)' })
    .option('strip-registry', { type: 'boolean', default: false, describe: 'drop a leading registry host from directory names (skopeo sync --scoped keeps it)' })
    .example(
      examples([
        ['$0 from-dir /mnt/usb/images /var/lib/registry', 'import every image directory of the tree'],
        ['$0 from-dir /tmp/app /var/lib/registry --name team/app:v1', 'import one image directory'],
      ]),
    ) as unknown as Argv<FromDirArgs>;
}

export async function handler(args: FromDirArgs, _io: Io, run: RunOutput): Promise<number> {
  const output = treeOutput(args.dest, 'DEST');
  const { fromDir } = await import('../../ops/from-dir.js');
  const result: FromDirResult = await runWithProgress(run, args, (opts) =>
    fromDir({ ...opts, input: args.in, output, name: args.name, noVerify: !args.verify, stripRegistry: args['strip-registry'] }),
  );
  return finishWrite(run, args.json, result, (r) => `${renderWriteResult(r, 'imported')}${verifiedLine(args.verify, r.bytesVerified)}`);
}
