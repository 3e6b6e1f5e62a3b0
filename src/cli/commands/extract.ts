/** `regfs extract LIST SRC OUT` */
import type { Argv } from 'yargs';
import { DEFAULT_JOBS, extract, type ExtractResult } from '../../ops/extract.js';
import { LINK_MODES, type LinkMode } from '../../fs/link.js';
import { ExitCode, createProgressBar, formatBytes, printProblems, printWarning, type Io } from '../output.js';

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
  if (args.json) io.stdout.write(`${JSON.stringify(toJson(result), null, 2)}\n`);
  else io.stdout.write(render(result));
  return result.problems.length > 0 ? ExitCode.partial : ExitCode.ok;
}

function toJson(r: ExtractResult): object {
  return {
    dryRun: r.dryRun,
    output: r.output,
    images: r.images,
    plan: r.plan,
    stats: r.stats,
    warnings: r.warnings,
    problems: r.problems.map((p) => ({ code: p.code, message: p.message, file: p.at?.file, line: p.at?.line })),
    seconds: Number(r.seconds.toFixed(3)),
  };
}

function render(r: ExtractResult): string {
  const lines: string[] = [];
  const n = r.images.length;
  if (r.dryRun) {
    for (const img of r.images) {
      const platforms = img.platforms.length > 0 ? ` [${img.platforms.join(', ')}]` : '';
      lines.push(`${img.ref}  ${img.digest}  ${img.kind}${platforms}  ${img.blobs} blobs  ${formatBytes(img.bytes)}`);
    }
    lines.push(
      `plan: ${n} image${n === 1 ? '' : 's'}, ${r.plan.blobs} blobs (${r.plan.blobsAlreadyThere} already in the output), ` +
        `${formatBytes(r.plan.bytes)}, ${r.plan.blobs + r.plan.links} files (${r.plan.blobs} blob data, ${r.plan.links} links) into ${r.output}; nothing written (dry run)`,
    );
  } else if (r.stats !== undefined) {
    const s = r.stats;
    lines.push(
      `extracted ${n} image${n === 1 ? '' : 's'} into ${r.output}: blobs ${s.blobsLinked} linked, ${s.blobsCopied + s.blobsWritten} copied, ` +
        `${s.blobsExisting} already there; ${formatBytes(s.bytes)} (${formatBytes(s.bytesCopied)} copied); ` +
        `links ${s.linksWritten} written, ${s.linksUnchanged} unchanged; ${r.seconds.toFixed(2)} s`,
    );
  }
  return `${lines.join('\n')}\n`;
}
