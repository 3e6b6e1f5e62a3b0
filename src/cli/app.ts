/**
 * The regfs command line: builds yargs, maps arguments to one library call per command, and
 * turns errors into exit codes. A RegfsError prints its message and code (no stack trace);
 * anything else is a bug and says so.
 */
import yargs, { type Argv } from 'yargs';
import { RegfsError } from '../errors.js';
import * as extractCmd from './commands/extract.js';
import { ExitCode, printError, processIo, type Io } from './output.js';

interface CommandModule<A> {
  command: string;
  describe: string;
  builder: (y: Argv) => Argv<A>;
  handler: (args: A, io: Io) => Promise<number>;
}

const EPILOGUE = `Exit codes: 0 done; 1 error (nothing written); 2 usage; 3 --keep-going left images out; 70 internal error.
Docs: README.md and docs/ in the regfs package.`;

/** Run the CLI with the given arguments; resolves to the exit code. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let exitCode: number = ExitCode.ok;
  let usageError: string | undefined;
  const register = <A>(y: Argv, mod: CommandModule<A>): Argv =>
    y.command(mod.command, mod.describe, mod.builder, async (args) => {
      exitCode = await mod.handler(args as unknown as A, io);
    });

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
      if (err !== undefined && err !== null) throw err;
      usageError = msg;
    });
  y = register(y, extractCmd as CommandModule<unknown>);

  try {
    await y.parseAsync();
  } catch (err) {
    if (err instanceof RegfsError) {
      printError(io, err);
      return ExitCode.error;
    }
    io.stderr.write(`regfs: internal error (a bug; please report it with this text):\n${(err as Error).stack ?? String(err)}\n`);
    return ExitCode.internal;
  }
  if (usageError !== undefined) {
    io.stderr.write(`regfs: ${usageError}\nRun "regfs --help" for usage.\n`);
    return ExitCode.usage;
  }
  return exitCode;
}
