/** `regfs bundle LIST SRC BUNDLE` */
import type { Argv } from 'yargs';
import { escapeControl, RegfsError } from '../../errors.js';
import type { BundleResult } from '../../ops/bundle.js';
import { alignColumns, contentCell, ExitCode, formatBytes, leftOutPart, renderReferrers, type Io, type RunOutput } from '../output.js';
import { examples, finishWrite, runWithProgress, withReferrersOption, withRepairOption, type ReferrersArgs, type RepairArgs } from './shared.js';

interface BundleArgs extends RepairArgs, ReferrersArgs {
  list: string;
  src: string;
  bundle: string;
  have: string | undefined;
  split: string | undefined;
  platform: string | undefined;
  'strip-registry': boolean;
  'keep-going': boolean;
  'dry-run': boolean;
  json: boolean;
}

export const command = 'bundle <list> <src> <bundle>';
export const describe = 'Write the listed images as one tar (an OCI layout) for an air gap, without the blobs the far side has';

export function builder(y: Argv): Argv<BundleArgs> {
  return withReferrersOption(withRepairOption(y, 'bundle them'))
    .positional('list', { type: 'string', demandOption: true, describe: 'image list: a file, - for standard input, or a directory of *.list files' })
    .positional('src', { type: 'string', demandOption: true, describe: 'source registry root (holds docker/registry/v2), that v2 directory, or s3://BUCKET/PREFIX' })
    .positional('bundle', { type: 'string', demandOption: true, describe: 'the bundle file (replaced whole, by temp file and rename), or - for standard output' })
    .option('have', { type: 'string', describe: 'inventory of the far side (regfs inventory): leave out the blobs it lists with the same size' })
    .option('split', { type: 'string', describe: 'write volumes BUNDLE.000, BUNDLE.001, … of at most this size (700M, 4G, 4GiB, bytes; powers of 1024; at least 1M)' })
    .option('platform', { type: 'string', describe: 'bundle only this image of each index (os/arch[/variant])' })
    .option('strip-registry', { type: 'boolean', default: false, describe: 'drop a leading registry host from list names' })
    .option('keep-going', { type: 'boolean', default: false, describe: 'bundle the images that check out even if others do not (exit 3)' })
    .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'say what the bundle would hold and its exact size; write nothing' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON document on stdout, also on failure (docs/json.md); not with BUNDLE -' })
    .example(
      examples([
        ['$0 bundle release.list /srv/registry rel.tar', 'a complete bundle: skopeo reads it as oci-archive:rel.tar:REF'],
        ['$0 bundle release.list /srv/registry rel.tar --have far.inv', 'only the blobs the far side lacks (far.inv: regfs inventory there)'],
        ['$0 bundle release.list /srv/registry rel.tar --split 4G', 'volumes rel.tar.000, rel.tar.001, …; cat rel.tar.* is the bundle'],
      ]),
    ) as unknown as Argv<BundleArgs>;
}

export async function handler(args: BundleArgs, io: Io, run: RunOutput): Promise<number> {
  const toStream = args.bundle === '-';
  if (toStream && args.json) throw new RegfsError('USAGE', '--json prints its document on standard output, where BUNDLE "-" writes the tar: name a BUNDLE file');
  if (toStream && io.stdout.isTTY === true && !args['dry-run']) throw new RegfsError('USAGE', 'BUNDLE "-" writes a tar to standard output, which is a terminal: redirect it, or name a BUNDLE file');
  if (args.have === '-') throw new RegfsError('USAGE', '--have takes an inventory file (or a pipe: --have <(…)), not "-"');
  const { bundle, parseSize } = await import('../../ops/bundle.js');
  const split = args.split === undefined ? undefined : parseSize(args.split);
  const result: BundleResult = await runWithProgress(run, args, (opts) =>
    bundle({
      ...opts,
      list: args.list,
      source: args.src,
      output: args.bundle,
      stream: toStream ? io.stdout : undefined,
      have: args.have,
      split,
      platform: args.platform,
      stripRegistry: args['strip-registry'],
      repair: args.repair,
      withReferrers: args['with-referrers'],
    }),
  );
  if (!toStream || args['dry-run']) return finishWrite(run, args.json, result, render);
  // The tar went to standard output: the summary goes to standard error.
  io.stderr.write(render(result));
  return result.problemCount > 0 ? ExitCode.partial : ExitCode.ok;
}

function render(r: BundleResult): string {
  const n = r.images.length;
  const p = r.plan;
  const what =
    `${n} image${n === 1 ? '' : 's'} (${p.entries} index.json entr${p.entries === 1 ? 'y' : 'ies'}); ` +
    `${p.blobsCarried} blobs carried (${formatBytes(p.bytesCarried)}), ${p.blobsAssumed} assumed (${formatBytes(p.bytesAssumed)}) ` +
    `${r.inventory === null ? '(complete: no --have)' : `against inventory ${r.inventory}`}; bundle ${p.size} bytes (${formatBytes(p.size)})`;
  const where = p.volumes.length > 1 ? `in ${p.volumes.length} volumes ${p.volumes[0]} … ${p.volumes.at(-1)}` : p.volumes[0] === '-' ? 'to standard output' : `in ${p.volumes[0]}`;
  const lines: string[] = [];
  if (r.dryRun) {
    lines.push(...alignColumns(r.images.map((img) => [img.ref, img.digest, img.kind, contentCell(img), `${img.blobs} blobs`, formatBytes(img.bytes)]), [4, 5]));
    lines.push(`plan: ${what}, ${where}; nothing written (dry run)${leftOutPart(r)}`);
  } else {
    lines.push(`bundled ${what}, ${where}; ${r.seconds.toFixed(2)} s${leftOutPart(r)}`);
  }
  const k = r.repaired.length;
  if (k > 0) lines.push(`${r.dryRun ? 'would bundle' : 'bundled'} ${k} config or layer blob${k === 1 ? '' : 's'} the source repository does not link (--repair; --json lists them)`);
  if (r.referrers !== undefined) lines.push(...renderReferrers(r.images, r.referrers, r.dryRun));
  return `${lines.map(escapeControl).join('\n')}\n`;
}
