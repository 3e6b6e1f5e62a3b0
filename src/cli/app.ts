/**
 * The regfs command line: builds yargs, maps arguments to one library call per command, and
 * turns errors into exit codes. A RegfsError prints its message and code (no stack trace);
 * anything else is a bug and says so.
 */
import yargs, { type Argv } from 'yargs';
import { RegfsError } from '../errors.js';
import * as extractCmd from './commands/extract.js';
import * as toDirCmd from './commands/to-dir.js';
import * as fromDirCmd from './commands/from-dir.js';
import * as lsCmd from './commands/ls.js';
import * as inspectCmd from './commands/inspect.js';
import * as verifyCmd from './commands/verify.js';
import * as gcCmd from './commands/gc.js';
import * as rmCmd from './commands/rm.js';
import { ExitCode, printError, processIo, writeErrorJson, type Io } from './output.js';

interface CommandModule<A> {
  command: string;
  describe: string;
  builder: (y: Argv) => Argv<A>;
  handler: (args: A, io: Io) => Promise<number>;
}

const EPILOGUE = `Exit codes: 0 done; 1 error (nothing written); 2 usage; 3 --keep-going left images out; 4 verify found damage; 70 internal error.
Docs: README.md and docs/ in the regfs package.`;

/** A command line yargs could not make sense of. */
class UsageError extends Error {}

/** Run the CLI with the given arguments; resolves to the exit code. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const register = <A>(y: Argv, mod: CommandModule<A>): Argv =>
    y.command(mod.command, mod.describe, mod.builder, async (args) => {
      try {
        exitCode = await mod.handler(restoreDash(args, stdinMarker) as A, io);
      } catch (err) {
        // --json: the error and every problem it carries on stdout too; stderr has the short form.
        if (err instanceof RegfsError && args['json'] === true) writeErrorJson(io, err);
        throw err;
      }
    });

  // yargs hands a lone `-` (standard input) to a positional as an empty string; keep it `-`.
  const stdinMarker = argv.includes('-');
  let y = yargs(argv)
    .scriptName('regfs')
    // regfs speaks English; yargs's headings and errors too, whatever LANG says (the bundle carries no yargs locales).
    .locale('en')
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
  y = register(y, lsCmd as CommandModule<unknown>);
  y = register(y, inspectCmd as CommandModule<unknown>);
  y = register(y, verifyCmd as CommandModule<unknown>);
  y = register(y, gcCmd as CommandModule<unknown>);
  y = register(y, rmCmd as CommandModule<unknown>);

  try {
    await y.parseAsync();
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`regfs: ${err.message}\nRun "regfs --help" for usage.\n`);
      return ExitCode.usage;
    }
    if (err instanceof RegfsError) {
      printError(io, err);
      return err.code === 'USAGE' ? ExitCode.usage : ExitCode.error;
    }
    io.stderr.write(`regfs: internal error (a bug; please report it with this text):\n${(err as Error).stack ?? String(err)}\n`);
    return ExitCode.internal;
  }
  return exitCode;
}

function restoreDash(args: Record<string, unknown>, hadDash: boolean): Record<string, unknown> {
  if (!hadDash) return args;
  return Object.fromEntries(Object.entries(args).map(([k, v]) => [k, v === '' ? '-' : v]));
}
