/** `regfs to-dir LIST SRC OUT` and `regfs to-dir --image REF SRC DIR` */
import type { Argv } from 'yargs';
import { escapeControl, RegfsError } from '../../errors.js';
import type { ToDirResult } from '../../ops/to-dir.js';
import { DIGEST_FILE } from '../../defaults.js';
import { alignColumns, clonedPart, formatBytes, contentCell, leftOutPart, renderReferrers, type Io, type RunOutput } from '../output.js';
import { emptyArgument, examples, finishWrite, runWithProgress, treeOutput, withReferrersOption, withRepairOption, withWriteOptions, type ReferrersArgs, type RepairArgs, type WriteArgs } from './shared.js';

interface ToDirArgs extends WriteArgs, RepairArgs, ReferrersArgs {
  paths: string[];
  image: string | undefined;
  platform: string | undefined;
  'portable-names': boolean;
  'strip-registry': boolean;
}

export const command = 'to-dir <paths..>';
export const describe = "Export images to skopeo's dir: format: LIST SRC OUT, or --image REF SRC DIR";

export function builder(y: Argv): Argv<ToDirArgs> {
  return withReferrersOption(withRepairOption(withWriteOptions(y), 'export them'))
    .usage('regfs to-dir LIST SRC OUT\nregfs to-dir --image REF SRC DIR\n\n' + describe)
    .positional('paths', { type: 'string', array: true, describe: 'LIST SRC OUT (an image list: a file, - for standard input, or a directory of *.list files; the source registry root, or s3://BUCKET/PREFIX; the export tree); with --image: SRC DIR' })
    .option('image', { type: 'string', describe: 'export one image (repo:tag or repo@sha256:…) into DIR itself, as skopeo copy docker://… dir:DIR does' })
    .option('platform', { type: 'string', describe: 'export only this child of an index (os/arch[/variant]), as skopeo without --all does' })
    .option('portable-names', { type: 'boolean', default: false, describe: 'escape ":", "%" and upper case in directory names (%3A, %25, %41…) for FAT/exFAT media; from-dir decodes them' })
    .option('strip-registry', { type: 'boolean', default: false, describe: 'drop a leading registry host from list names' })
    .example(
      examples([
        ['$0 to-dir release.list /var/lib/registry /mnt/usb/images', `one image directory per line, and ${DIGEST_FILE}`],
        ['$0 to-dir --image team/app:v1 /var/lib/registry /tmp/app', 'one image, as skopeo copy would write it'],
        ['$0 to-dir release.list /var/lib/registry /mnt/exfat --portable-names', 'for FAT/exFAT media'],
      ]),
    ) as unknown as Argv<ToDirArgs>;
}

export async function handler(args: ToDirArgs, _io: Io, run: RunOutput): Promise<number> {
  const { toDir } = await import('../../ops/to-dir.js');
  const want = args.image === undefined ? 3 : 2;
  if (args.paths.length !== want) {
    throw new RegfsError('USAGE', args.image === undefined ? 'to-dir takes LIST SRC OUT (or --image REF SRC DIR)' : 'to-dir --image REF takes SRC DIR');
  }
  const [list, src, out] = args.image === undefined ? args.paths : [undefined, ...args.paths];
  for (const [value, what] of [[list, 'LIST'], [src, 'SRC'], [out, args.image === undefined ? 'OUT' : 'DIR']] as const) if (value === '') throw emptyArgument(what);
  const output = treeOutput(out!, args.image === undefined ? 'OUT' : 'DIR');
  const result: ToDirResult = await runWithProgress(run, args, (opts) =>
    toDir({
      ...opts,
      list,
      image: args.image,
      source: src!,
      output,
      platform: args.platform,
      portableNames: args['portable-names'],
      stripRegistry: args['strip-registry'],
      repair: args.repair,
      withReferrers: args['with-referrers'],
    }),
  );
  return finishWrite(run, args.json, result, render);
}

function render(r: ToDirResult): string {
  const n = r.images.length;
  const lines: string[] = [];
  if (r.dryRun) {
    const rows = r.images.map((img) => [img.dir, img.digest, img.kind, contentCell(img), `${img.blobs} blobs`, formatBytes(img.bytes)]);
    lines.push(...alignColumns([...rows, ...r.staleImages.map((s) => [s, '(stale: would be removed)'])], [4, 5]));
    const bytes = r.images.reduce((a, i) => a + i.bytes, 0);
    lines.push(escapeControl(`plan: ${n} image director${n === 1 ? 'y' : 'ies'}, ${formatBytes(bytes)}, ${r.staleImages.length} stale to remove, in ${r.output}; nothing written (dry run)${leftOutPart(r)}`));
  } else if (r.stats !== undefined) {
    const s = r.stats;
    lines.push(
      escapeControl(
        `exported ${n} image${n === 1 ? '' : 's'} into ${r.output}: blobs ${s.blobsLinked} linked, ${clonedPart(s.blobsCloned)}${s.blobsCopied} copied, ${s.blobsExisting} already there; ` +
          `manifests ${s.manifestsWritten} written, ${s.manifestsUnchanged} unchanged; removed ${s.staleFilesRemoved} stale files, ${s.staleImagesRemoved} stale images; ` +
          `${formatBytes(s.bytes)} (${formatBytes(s.bytesCopied)} copied); ${r.seconds.toFixed(2)} s${leftOutPart(r)}`,
      ),
    );
  }
  const k = r.repaired.length;
  if (k > 0) lines.push(escapeControl(`${r.dryRun ? 'would export' : 'exported'} ${k} config or layer blob${k === 1 ? '' : 's'} the source repository does not link (--repair; --json lists them)`));
  if (r.referrers !== undefined) lines.push(...renderReferrers(r.images, r.referrers, r.dryRun).map(escapeControl));
  return `${lines.join('\n')}\n`;
}
