/** `regfs verify ROOT [--list LIST]` */
import type { Argv } from 'yargs';
import type { VerifyResult } from '../../ops/verify.js';
import { DEFAULT_JOBS, VERIFY_TARGETS, type VerifyTarget } from '../../defaults.js';
import { ExitCode, formatBytes, printWarning, type Io, type RunOutput } from '../output.js';
import { withProgressBar } from '../progress-bar.js';
import { examples } from './shared.js';
import { escapeControl } from '../../errors.js';
import { isS3Url } from '../../storage/scheme.js';

interface VerifyArgs {
  root: string;
  list: string | undefined;
  target: VerifyTarget;
  fast: boolean;
  deep: boolean;
  'upload-age': number;
  jobs: number;
  json: boolean;
}

export const command = 'verify <root>';
export const describe = 'Check registry storage (an fsck): links, tags, index children, layers, blob hashes, leftovers';

export function builder(y: Argv): Argv<VerifyArgs> {
  return y
    .positional('root', { type: 'string', demandOption: true, describe: 'registry root (holds docker/registry/v2), that v2 directory, or s3://BUCKET/PREFIX' })
    .option('list', { type: 'string', describe: 'check only what the listed images need (an image list, - or a directory of *.list)' })
    .option('target', { type: 'string', choices: VERIFY_TARGETS, default: 'v2' as VerifyTarget, describe: 'v3: also report what a distribution v3 registry would not serve (schema1, manifests linked only in _layers, sparse indexes)' })
    .option('fast', { type: 'boolean', default: false, describe: 'check sizes, do not hash blob data' })
    .option('deep', {
      type: 'boolean',
      default: false,
      describe: 'on S3: also read every link and hash every blob (one GET each; without it, links are checked by their listed size and ETag, blobs by their listed size); on disk the default',
    })
    .option('upload-age', { type: 'number', default: 24, describe: 'report uploads older than this many hours as stale' })
    .option('jobs', { alias: 'j', type: 'number', default: DEFAULT_JOBS, describe: 'files read or hashed at once' })
    .option('json', { type: 'boolean', default: false, describe: 'print the findings as one JSON document on stdout (docs/json.md)' })
    .example(
      examples([
        ['$0 verify /var/lib/registry', 'everything, every blob hashed'],
        ['$0 verify /srv/subset --list release.list --fast', 'what the release needs, sizes only'],
        ['$0 verify /var/lib/registry --target v3 --fast', 'before serving this storage with a v3 registry'],
        ['$0 verify s3://registry/prod --deep', 'storage on S3, every blob read and hashed'],
      ]),
    ) as unknown as Argv<VerifyArgs>;
}

export async function handler(args: VerifyArgs, io: Io, run: RunOutput): Promise<number> {
  const { verify } = await import('../../ops/verify.js');
  const r: VerifyResult = await withProgressBar(io, (onProgress) => verify({ root: args.root, list: args.list, target: args.target, fast: args.fast, deep: args.deep, uploadAgeHours: args['upload-age'], jobs: args.jobs, onProgress }));
  if (r.liveLock !== undefined) {
    printWarning(io, `regfs ${r.liveLock.command} (pid ${r.liveLock.pid} on ${r.liveLock.host}) is writing this storage now; what it has not finished may show as problems`);
  }
  if (args.json) {
    run.finishJson(r.findings.length === 0 ? ExitCode.ok : ExitCode.damage, { findings: r.findings, counts: r.counts, liveLock: r.liveLock, seconds: r.seconds });
  } else {
    // One line per finding, whatever a name in the tree holds; written in batches.
    let text = '';
    for (const f of r.findings) {
      text += `${f.code}  ${escapeControl(f.message)}\n`;
      if (text.length >= 1 << 16) {
        io.stdout.write(text);
        text = '';
      }
    }
    io.stdout.write(text);
    const c = r.counts;
    const hashed = args.fast ? 'sizes only (--fast)' : isS3Url(args.root) && !args.deep ? 'sizes only (--deep hashes)' : `${formatBytes(c.bytesHashed)} hashed`;
    io.stdout.write(
      `checked ${c.repositories} repositories, ${c.tags} tags, ${c.manifests} manifests, ${c.links} links, ${c.blobs} blobs (${hashed}): ` +
        `${r.findings.length === 0 ? 'no problems' : `${r.findings.length} problem${r.findings.length === 1 ? '' : 's'}`}; ${r.seconds.toFixed(2)} s\n`,
    );
  }
  return r.findings.length === 0 ? ExitCode.ok : ExitCode.damage;
}
