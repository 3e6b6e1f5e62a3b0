/** `regfs apply BUNDLE DEST` */
import type { Argv } from 'yargs';
import { DEFAULT_JOBS } from '../../defaults.js';
import type { ApplyResult } from '../../ops/apply.js';
import { formatBytes, renderWriteResult, type Io, type RunOutput } from '../output.js';
import { examples, finishWrite, runWithProgress, treeOutput, verifiedLine } from './shared.js';

interface ApplyArgs {
  bundle: string;
  dest: string;
  'keep-going': boolean;
  'dry-run': boolean;
  json: boolean;
  staging: string | undefined;
}

export const command = 'apply <bundle> <dest>';
export const describe = 'Write a bundle (regfs bundle, or any OCI layout tar) into registry storage, checked before anything is visible';

export function builder(y: Argv): Argv<ApplyArgs> {
  return y
    .positional('bundle', { type: 'string', demandOption: true, describe: 'the bundle: a tar, NAME.000 of volumes (NAME.001, … read after it), - for stdin' })
    .positional('dest', { type: 'string', demandOption: true, describe: 'registry root to write, or s3://BUCKET/PREFIX (created if missing, merged into if it holds a registry), or an existing OCI layout to merge into' })
    .option('keep-going', { type: 'boolean', default: false, describe: 'write the images that check out even if others do not (exit 3)' })
    .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'read and check the whole bundle and print the plan; write nothing' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON document on stdout, also on failure (docs/json.md)' })
    .option('staging', { type: 'string', describe: "into s3://: the local directory the bundle's blobs are staged in before they are uploaded (default: the system's temp directory)" })
    .example(
      examples([
        ['$0 apply rel.tar /srv/registry', 'a bundle file'],
        ['$0 apply rel.tar.000 /srv/registry', 'volumes of bundle --split'],
        ['ssh near cat rel.tar | $0 apply - /srv/registry', 'from a pipe'],
        ['$0 apply rel.tar s3://bucket/reg --staging /var/tmp', 'into registry storage on S3'],
      ]),
    ) as unknown as Argv<ApplyArgs>;
}

export async function handler(args: ApplyArgs, _io: Io, run: RunOutput): Promise<number> {
  const output = treeOutput(args.dest, 'DEST');
  const { apply } = await import('../../ops/apply.js');
  const result: ApplyResult = await runWithProgress(run, { ...args, link: 'auto', jobs: DEFAULT_JOBS }, (opts) =>
    apply({ keepGoing: opts.keepGoing, dryRun: opts.dryRun, onProgress: opts.onProgress, onWarning: opts.onWarning, onProblem: opts.onProblem, input: args.bundle, output, staging: args.staging }),
  );
  return finishWrite(run, args.json, result, (r) => `${summary(r)}${bundleLine(r)}${verifiedLine(true, r.bytesVerified)}`);
}

/** from-oci's summary; into an OCI layout, its links are index.json entries. */
function summary(r: ApplyResult): string {
  const text = renderWriteResult(r, 'applied');
  return r.into === 'layout' ? text.replace(/\blinks\b/g, 'index.json entries') : text;
}

/** What the bundle was: complete or a delta, what it carried and assumed. */
function bundleLine(r: ApplyResult): string {
  const volumes = r.volumes > 1 ? ` in ${r.volumes} volumes` : '';
  const b = r.bundle;
  if (b === null) return `bundle: an OCI layout tar${volumes} without regfs-bundle.json, applied as complete\n`;
  const carried = `${b.carried.blobs} blobs carried (${formatBytes(b.carried.bytes)})${volumes}`;
  if (b.inventory === null) return `bundle: complete, ${carried}\n`;
  return `bundle: delta against inventory ${b.inventory}, ${carried}, ${b.assumed} assumed present and found in the output\n`;
}
