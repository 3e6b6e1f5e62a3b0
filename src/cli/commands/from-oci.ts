/** `regfs from-oci LAYOUT DEST` */
import type { Argv } from 'yargs';
import type { FromOciResult } from '../../ops/from-oci.js';
import { renderWriteResult, type Io, type RunOutput } from '../output.js';
import { examples, finishWrite, runWithProgress, treeOutput, verifiedLine, withWriteOptions, type WriteArgs } from './shared.js';

interface FromOciArgs extends WriteArgs {
  layout: string;
  dest: string;
  name: string | undefined;
  repo: string | undefined;
  verify: boolean;
  'strip-registry': boolean;
  staging: string | undefined;
}

export const command = 'from-oci <layout> <dest>';
export const describe = 'Seed registry storage from an OCI image layout (a directory, or a tar of one)';

export function builder(y: Argv): Argv<FromOciArgs> {
  return withWriteOptions(y)
    .positional('layout', { type: 'string', demandOption: true, describe: 'OCI layout directory (skopeo oci:, crane, regctl), or a tar of one (skopeo oci-archive:, docker save), - for stdin' })
    .positional('dest', { type: 'string', demandOption: true, describe: 'registry root to write, or s3://BUCKET/PREFIX; created if missing, merged into if it holds a registry' })
    .option('name', { type: 'string', describe: 'repo:tag (or repo@sha256:…) for a layout of one image' })
    .option('repo', { type: 'string', describe: 'repository of entries named by a bare tag (docker save, regctl); unnamed entries are imported into it by digest' })
    .option('verify', { type: 'boolean', default: true, describe: 'hash every blob against its digest (--no-verify checks sizes only; manifests are always hashed)' })
    .option('strip-registry', { type: 'boolean', default: false, describe: 'drop a leading registry host from names' })
    .option('staging', { type: 'string', describe: "into s3://: the local directory a tar's blobs are staged in before they are uploaded (default: the system's temp directory)" })
    .example(
      examples([
        ['$0 from-oci layout /srv/reg', 'a layout directory'],
        ['$0 from-oci app.tar /srv/reg --repo team/app', 'a docker save tar'],
        ['docker save app | $0 from-oci - /srv/reg', 'from a pipe'],
        ['$0 from-oci app.tar s3://bucket/reg --staging /var/tmp', 'into registry storage on S3'],
      ]),
    ) as unknown as Argv<FromOciArgs>;
}

export async function handler(args: FromOciArgs, _io: Io, run: RunOutput): Promise<number> {
  const output = treeOutput(args.dest, 'DEST');
  const { fromOci } = await import('../../ops/from-oci.js');
  const result: FromOciResult = await runWithProgress(run, args, (opts) =>
    fromOci({ ...opts, input: args.layout, output, name: args.name, repo: args.repo, noVerify: !args.verify, stripRegistry: args['strip-registry'], staging: args.staging }),
  );
  return finishWrite(run, args.json, result, (r) => `${renderWriteResult(r, 'imported')}${verifiedLine(args.verify, r.bytesVerified)}`);
}
