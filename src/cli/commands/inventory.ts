/** `regfs inventory ROOT [-o FILE]` */
import type { Argv } from 'yargs';
import { escapeControl, RegfsError } from '../../errors.js';
import type { InventoryResult } from '../../ops/inventory.js';
import { ExitCode, formatBytes, printWarning, type Io, type RunOutput } from '../output.js';
import { examples } from './shared.js';

interface InventoryArgs {
  root: string;
  output: string | undefined;
  json: boolean;
}

export const command = 'inventory <root>';
export const describe = 'Write what registry storage (or an OCI image layout) holds, for bundle --have: every blob, repository, tag and manifest';

export function builder(y: Argv): Argv<InventoryArgs> {
  return y
    .positional('root', { type: 'string', demandOption: true, describe: 'registry root (holds docker/registry/v2), that v2 directory, s3://BUCKET/PREFIX, or an OCI image layout directory' })
    .option('output', { alias: 'o', type: 'string', describe: 'write the inventory to this file (temp file and rename; a symbolic link there is replaced, not followed); default (or -): standard output' })
    .option('json', { type: 'boolean', default: false, describe: 'print the result (identity, counts) as one JSON document on stdout (docs/json.md); needs -o' })
    .example(
      examples([
        ['$0 inventory /var/lib/registry > have.inv', 'what the far side holds; its identity on stderr'],
        ['$0 inventory /var/lib/registry -o have.inv --json', 'to a file, the result as JSON'],
      ]),
    ) as unknown as Argv<InventoryArgs>;
}

export async function handler(args: InventoryArgs, io: Io, run: RunOutput): Promise<number> {
  if (args.json && (args.output === undefined || args.output === '-')) {
    throw new RegfsError('USAGE', '--json prints its document on standard output, where the inventory goes without -o: name the inventory file with -o FILE');
  }
  // `-o -` is standard output, as bundle's `-` is.
  const file = args.output === '-' ? undefined : args.output;
  const { inventory } = await import('../../ops/inventory.js');
  const r: InventoryResult = await inventory({ root: args.root, output: file ?? io.stdout, onWarning: (m) => printWarning(io, m) });
  if (args.json) run.finishJson(ExitCode.ok, r);
  // Not when standard output failed (its error is on stderr): the inventory did not go out.
  else if (file !== undefined || io.stdoutError?.() === undefined) io.stderr.write(`${summary(r)}\n`);
  return ExitCode.ok;
}

/** One line: the identity, the counts, the size and where it went. */
function summary(r: InventoryResult): string {
  const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;
  const where = r.output === null ? 'standard output' : r.output;
  return escapeControl(
    `inventory ${r.id}: ${plural(r.blobs, 'blob')} (${formatBytes(r.bytes)}), ${r.repositories} ${r.repositories === 1 ? 'repository' : 'repositories'}, ` +
      `${plural(r.tags, 'tag')}, ${plural(r.manifests, 'manifest')}; ${formatBytes(r.size)} to ${where}; ${r.seconds.toFixed(2)} s`,
  );
}
