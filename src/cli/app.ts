/**
 * The regfs command line: builds yargs, maps arguments to one library call per command, and
 * turns errors into exit codes. A RegfsError prints its message and code (no stack trace);
 * anything else is a bug and says so.
 */
import yargs, { type Argv } from 'yargs';
import { RegfsError } from '../errors.js';
import * as extractCmd from './commands/extract.js';
import * as toDirCmd from './commands/to-dir.js';
import * as toOciCmd from './commands/to-oci.js';
import * as fromDirCmd from './commands/from-dir.js';
import * as fromOciCmd from './commands/from-oci.js';
import * as lsCmd from './commands/ls.js';
import * as inspectCmd from './commands/inspect.js';
import * as verifyCmd from './commands/verify.js';
import * as gcCmd from './commands/gc.js';
import * as rmCmd from './commands/rm.js';
import { ExitCode, processIo, RunOutput, type Io } from './output.js';

interface CommandModule<A> {
  command: string;
  describe: string;
  builder: (y: Argv) => Argv<A>;
  handler: (args: A, io: Io, run: RunOutput) => Promise<number>;
}

const EPILOGUE = `Exit codes: 0 done; 1 error (nothing written); 2 usage; 3 --keep-going left images out; 4 verify found damage; 70 internal error.
Docs: README.md and docs/ in the regfs package.`;

/** A command line yargs could not make sense of. */
class UsageError extends Error {}

/** Run the CLI with the given arguments; resolves to the exit code. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let exitCode: number = ExitCode.ok;
  // The command's output channel: made when its handler starts, or when the command line fails.
  let run: RunOutput | undefined;
  const register = <A>(y: Argv, mod: CommandModule<A>): Argv =>
    y.command(mod.command, mod.describe, mod.builder, async (args) => {
      run = new RunOutput(io, commandName(mod.command), args['json'] === true);
      exitCode = await mod.handler(restoreDash(args, stdinMarker) as A, io, run);
      run.endProblems();
      if (run.json !== undefined && !run.json.done) throw new Error(`regfs ${commandName(mod.command)} --json printed no result`);
    });

  // yargs hands a lone `-` (standard input) to a positional as an empty string; keep it `-`.
  const stdinMarker = argv.includes('-');
  let y = yargs(argv)
    .scriptName('regfs')
    .usage('regfs: offline surgery on Docker registry storage (docker/registry/v2)\n\nUsage: $0 <command> [options]')
    .strict()
    .demandCommand(1, 'name a command')
    .recommendCommands()
    .epilogue(EPILOGUE)
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      // Without a throw here yargs would go on and call the handler.
      throw err ?? new UsageError(msg);
    });
  y = register(y, extractCmd as CommandModule<unknown>);
  y = register(y, toDirCmd as CommandModule<unknown>);
  y = register(y, fromDirCmd as CommandModule<unknown>);
  y = register(y, toOciCmd as CommandModule<unknown>);
  y = register(y, fromOciCmd as CommandModule<unknown>);
  y = register(y, lsCmd as CommandModule<unknown>);
  y = register(y, inspectCmd as CommandModule<unknown>);
  y = register(y, verifyCmd as CommandModule<unknown>);
  y = register(y, gcCmd as CommandModule<unknown>);
  y = register(y, rmCmd as CommandModule<unknown>);

  // Every failure ends the run's output: stderr in regfs's form, and with --json the one
  // document on stdout (a command line yargs rejects too, if it asked for --json).
  const out = (): RunOutput => run ?? new RunOutput(io, argv.find((a) => !a.startsWith('-')) ?? '', argv.includes('--json'));
  try {
    await y.parseAsync();
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`regfs: ${err.message}\nRun "regfs --help" for usage.\n`);
      out().json?.fail(ExitCode.usage, { code: 'USAGE', message: err.message });
      return ExitCode.usage;
    }
    if (err instanceof RegfsError) {
      const code = err.code === 'USAGE' ? ExitCode.usage : ExitCode.error;
      out().fail(code, err);
      return code;
    }
    const text = (err as Error).stack ?? String(err);
    io.stderr.write(`regfs: internal error (a bug; please report it with this text):\n${text}\n`);
    out().json?.fail(ExitCode.internal, { code: 'INTERNAL', message: String((err as Error).message ?? err) });
    return ExitCode.internal;
  }
  return exitCode;
}

/** `extract <list> <src> <out>` → `extract` */
function commandName(spec: string): string {
  return spec.split(' ')[0]!;
}

function restoreDash(args: Record<string, unknown>, hadDash: boolean): Record<string, unknown> {
  if (!hadDash) return args;
  return Object.fromEntries(Object.entries(args).map(([k, v]) => [k, v === '' ? '-' : v]));
}
