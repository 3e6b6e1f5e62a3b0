/** `regfs to-oci LIST SRC LAYOUT` */
import type { Argv } from 'yargs';
import { escapeControl } from '../../errors.js';
import type { ToOciResult } from '../../ops/to-oci.js';
import { alignColumns, clonedPart, formatBytes, contentCell, leftOutPart, renderReferrers, type Io, type RunOutput } from '../output.js';
import { examples, finishWrite, runWithProgress, treeOutput, withReferrersOption, withRepairOption, withWriteOptions, type ReferrersArgs, type RepairArgs, type WriteArgs } from './shared.js';

interface ToOciArgs extends WriteArgs, RepairArgs, ReferrersArgs {
  list: string;
  src: string;
  layout: string;
  platform: string | undefined;
  'strip-registry': boolean;
}

export const command = 'to-oci <list> <src> <layout>';
export const describe = 'Export the listed images into one OCI image layout, blob data hard-linked';

export function builder(y: Argv): Argv<ToOciArgs> {
  return withReferrersOption(withRepairOption(withWriteOptions(y), 'export them'))
    .positional('list', { type: 'string', demandOption: true, describe: 'image list: a file, - for standard input, or a directory of *.list files' })
    .positional('src', { type: 'string', demandOption: true, describe: 'source registry root (holds docker/registry/v2), that v2 directory, or s3://BUCKET/PREFIX' })
    .positional('layout', { type: 'string', demandOption: true, describe: 'OCI image layout directory; created if missing, merged into if it is a layout' })
    .option('platform', { type: 'string', describe: 'export only this image of each index (os/arch[/variant])' })
    .option('strip-registry', { type: 'boolean', default: false, describe: 'drop a leading registry host from list names' })
    .example(
      examples([
        ['$0 to-oci release.list /var/lib/registry /mnt/oci', 'one layout; index.json names each image repo:tag'],
        ['skopeo copy oci:/mnt/oci:team/app:v1 docker://host/team/app:v1', 'then OCI tools read it'],
      ]),
    ) as unknown as Argv<ToOciArgs>;
}

export async function handler(args: ToOciArgs, _io: Io, run: RunOutput): Promise<number> {
  const output = treeOutput(args.layout, 'LAYOUT');
  const { toOci } = await import('../../ops/to-oci.js');
  const result: ToOciResult = await runWithProgress(run, args, (opts) =>
    toOci({ ...opts, list: args.list, source: args.src, output, platform: args.platform, stripRegistry: args['strip-registry'], repair: args.repair, withReferrers: args['with-referrers'] }),
  );
  return finishWrite(run, args.json, result, render);
}

function render(r: ToOciResult): string {
  const n = r.images.length;
  const p = r.plan;
  const entries = `index.json: ${p.entriesAdded} added, ${p.entriesReplaced} replaced, ${p.entriesUnchanged} unchanged`;
  const lines: string[] = [];
  if (r.dryRun) {
    lines.push(...alignColumns(r.images.map((img) => [img.ref, img.digest, img.kind, contentCell(img), `${img.blobs} blobs`, formatBytes(img.bytes)]), [4, 5]));
    lines.push(`plan: ${n} image${n === 1 ? '' : 's'}, ${p.blobs} blobs (${p.blobsAlreadyThere} already in the layout), ${formatBytes(p.bytes)}; ${entries}; into ${r.output}; nothing written (dry run)${leftOutPart(r)}`);
  } else if (r.stats !== undefined) {
    const s = r.stats;
    lines.push(
      `exported ${n} image${n === 1 ? '' : 's'} into ${r.output}: blobs ${s.blobsLinked} linked, ${clonedPart(s.blobsCloned)}${s.blobsCopied + s.blobsWritten} copied, ` +
        `${s.blobsExisting} already there; ${formatBytes(s.bytes)} (${formatBytes(s.bytesCopied)} copied); ${entries}; ${r.seconds.toFixed(2)} s${leftOutPart(r)}`,
    );
  }
  const k = r.repaired.length;
  if (k > 0) lines.push(`${r.dryRun ? 'would export' : 'exported'} ${k} config or layer blob${k === 1 ? '' : 's'} the source repository does not link (--repair; --json lists them)`);
  if (r.referrers !== undefined) lines.push(...renderReferrers(r.images, r.referrers, r.dryRun));
  return `${lines.map(escapeControl).join('\n')}\n`;
}
