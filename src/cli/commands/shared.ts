/** What the commands that write a tree (extract, to-dir, from-dir) share on the command line. */
import type { Argv } from 'yargs';
import { DEFAULT_JOBS, LINK_MODES, type LinkMode } from '../../defaults.js';
import type { OnProgress } from '../../progress.js';
import { RegfsError } from '../../errors.js';
import { ExitCode, formatBytes, printWarning, type RunOutput } from '../output.js';
import { createProgressBar } from '../progress-bar.js';

export interface WriteArgs {
  'keep-going': boolean;
  link: LinkMode;
  jobs: number;
  'dry-run': boolean;
  json: boolean;
}

/**
 * Examples for --help, each as `# what it does` above the whole command: yargs sets an
 * example's two columns side by side and, at 80 columns, cuts the command in two. Keep each
 * command within 76 columns (the help's indent and margin make 80), so that it can be copied
 * as it stands.
 */
export function examples(list: ReadonlyArray<readonly [command: string, what: string]>): Array<[string, string]> {
  return list.flatMap(([command, what]): Array<[string, string]> => [
    [`# ${what}`, ''],
    [command, ''],
  ]);
}

/** --keep-going, --link, --jobs, --dry-run, --json. */
export function withWriteOptions<T>(y: Argv<T>): Argv<T & WriteArgs> {
  return y
    .option('keep-going', { type: 'boolean', default: false, describe: 'write the images that check out even if others do not (exit 3)' })
    .option('link', { type: 'string', choices: LINK_MODES, default: 'auto' as LinkMode, describe: 'auto: reflink blob data where the filesystem can, else hard-link, else copy; hardlink: hard-link or fail; copy: always copy' })
    .option('jobs', { alias: 'j', type: 'number', default: DEFAULT_JOBS, describe: 'large blobs hashed at once (from-dir, verify); metadata work runs in order (docs/performance.md)' })
    .option('dry-run', { alias: 'n', type: 'boolean', default: false, describe: 'check and print the plan; write nothing' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON document on stdout, also on failure (docs/json.md)' }) as unknown as Argv<T & WriteArgs>;
}

/**
 * The library options WriteArgs map to, with a progress bar (every phase of the run) and
 * warnings on stderr, and each problem to stderr and the JSON document as it is found (RunOutput).
 */
export async function runWithProgress<R>(
  out: RunOutput,
  args: Pick<WriteArgs, 'keep-going' | 'dry-run' | 'json'> & Partial<Pick<WriteArgs, 'link' | 'jobs'>>,
  run: (opts: {
    keepGoing: boolean;
    link: LinkMode;
    jobs: number;
    dryRun: boolean;
    platforms: boolean;
    onProgress: OnProgress;
    onWarning: (m: string) => void;
    onProblem: (p: RegfsError) => void;
  }) => Promise<R>,
): Promise<R> {
  const { io } = out;
  const bar = createProgressBar(io);
  try {
    return await run({
      keepGoing: args['keep-going'],
      link: args.link ?? 'auto',
      jobs: args.jobs ?? DEFAULT_JOBS,
      dryRun: args['dry-run'],
      // The text summary of a real run shows no platforms: the configs need not be read.
      platforms: args.json || args['dry-run'],
      onProgress: bar.update,
      onWarning: (m) => {
        bar.clear();
        printWarning(io, m);
      },
      onProblem: (p) => {
        bar.clear();
        out.problem(p);
      },
    });
  } finally {
    bar.clear();
  }
}

export interface RepairArgs {
  repair: boolean;
}

/** --repair, for the commands that resolve images in registry storage (extract, to-dir). */
export function withRepairOption<T>(y: Argv<T>, what: string): Argv<T & RepairArgs> {
  return y.option('repair', {
    type: 'boolean',
    default: false,
    describe: `take configs and layers whose data the source holds but whose repository lacks the _layers link (the source registry answers 404 for them: LAYER_UNLINKED) and ${what}`,
  }) as unknown as Argv<T & RepairArgs>;
}

export interface ReferrersArgs {
  'with-referrers': boolean;
}

/** `--with-referrers`, the same for every export. */
export function withReferrersOption<T>(y: Argv<T>): Argv<T & ReferrersArgs> {
  return y.option('with-referrers', {
    type: 'boolean',
    default: false,
    describe: 'take the signatures, SBOMs and attestations of every image too, transitively (tags sha256-<hex> and sha256-<hex>.*, and every manifest whose subject is one taken)',
  }) as unknown as Argv<T & ReferrersArgs>;
}

/** The end of a command that writes: its one JSON document, or the text `render` makes of it; exit 3 when it left images out. */
export function finishWrite<R extends { problemCount: number }>(run: RunOutput, json: boolean, result: R, render: (r: R) => string): number {
  const code = result.problemCount > 0 ? ExitCode.partial : ExitCode.ok;
  if (json) run.finishJson(code, result);
  else run.io.stdout.write(render(result));
  return code;
}

/** The line from-dir and from-oci end with, after the plan or summary: what was verified. */
export function verifiedLine(verify: boolean, bytes: number): string {
  return verify ? `verified: ${formatBytes(bytes)} of blob data hashed; every blob matches its digest\n` : 'not verified (--no-verify): blob sizes checked, not hashed\n';
}

/**
 * An empty argument (`"$OUT"` with OUT unset): a usage error naming it. An empty path names
 * no file (POSIX); Node would take it for the current directory.
 */
export function emptyArgument(what: string): RegfsError {
  return new RegfsError('USAGE', `${what} is empty: give it a value (an empty path names no file; . is the current directory)`);
}

/**
 * The tree a command writes (OUT, DEST, LAYOUT): `-`, which names standard input or output
 * elsewhere, is a usage error here rather than a directory named "-" made in the working
 * directory.
 */
export function treeOutput(path: string, what: string): string {
  if (path === '-') throw new RegfsError('USAGE', `${what} "-": this command writes a tree of files, not to standard output; name a directory (./- for one named "-")`);
  return path;
}
