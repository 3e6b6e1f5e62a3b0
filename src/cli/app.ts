/**
 * The regfs command line: builds yargs, maps arguments to one library call per command, and
 * turns errors into exit codes. A RegfsError prints its message and code (no stack trace);
 * anything else is a bug and says so.
 */
import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { quote, RegfsError } from '../errors.js';
import * as extractCmd from './commands/extract.js';
import * as toDirCmd from './commands/to-dir.js';
import * as toOciCmd from './commands/to-oci.js';
import * as fromDirCmd from './commands/from-dir.js';
import * as fromOciCmd from './commands/from-oci.js';
import * as applyCmd from './commands/apply.js';
import * as lsCmd from './commands/ls.js';
import * as inspectCmd from './commands/inspect.js';
import * as verifyCmd from './commands/verify.js';
import * as gcCmd from './commands/gc.js';
import * as rmCmd from './commands/rm.js';
import * as inventoryCmd from './commands/inventory.js';
import * as bundleCmd from './commands/bundle.js';
import { ExitCode, processIo, RunOutput, withColor, type Io } from './output.js';
import { colorFlag } from './color.js';
import { emptyArgument } from './commands/shared.js';
import { closeStorage, configureStorage } from '../storage/config.js';

interface CommandModule<A> {
  command: string;
  describe: string;
  builder: (y: Argv) => Argv<A>;
  handler: (args: A, io: Io, run: RunOutput) => Promise<number>;
}

const EPILOGUE = `Exit codes: 0 done; 1 error (nothing written); 2 usage; 3 --keep-going left images out; 4 verify found damage; 70 internal error.
An option given twice takes its last value; after -- every word is an argument; - is standard input where a list is taken.
Registry roots may be s3://BUCKET/PREFIX (PREFIX: the registry's rootdirectory), with AWS's credentials (environment, profile) and --s3-endpoint.
Docs: README.md and docs/ in the regfs package.`;

const COMMANDS = [extractCmd, toDirCmd, fromDirCmd, toOciCmd, fromOciCmd, inventoryCmd, bundleCmd, applyCmd, lsCmd, inspectCmd, verifyCmd, gcCmd, rmCmd] as CommandModule<unknown>[];

/**
 * regfs's own version, from its package.json. yargs's own lookup starts at the path the bin
 * was started by, so installed as a dependency (`node_modules/.bin/regfs`) or run by npx it
 * found the depending project's package.json and printed that version.
 */
function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** A command line yargs could not make sense of. */
class UsageError extends Error {}

/** Run the CLI with the given arguments; resolves to the exit code. */
export function main(argv: string[], ioIn: Io = processIo): Promise<number> {
  return start(argv, ioIn).done;
}

/** A run of the CLI, as src/cli/main.ts starts it. */
export interface CliRun {
  /** The exit code when the run ends; never rejects (a bug is an internal error, 70). */
  done: Promise<number>;
  /**
   * Ends a run whose `done` never settled, for the process to exit when nothing is left to
   * wait for (a bug): the internal error on stderr and, with `--json`, as the document's end.
   * Returns the exit code.
   */
  unfinished(): number;
}

/** Start the CLI with the given arguments. */
export function start(argvIn: string[], ioIn: Io = processIo): CliRun {
  const argv = helpCommand(argvIn);
  const io = withColor(ioIn, () => colorFlag(argv));
  // The command's output channel: made when its handler starts, or when the run fails.
  const state: { run?: RunOutput } = {};
  // The word yargs will take for the command (a usage error names it, if it is one).
  const name = argv[commandIndex(argv)];
  const out = (): RunOutput => (state.run ??= new RunOutput(io, name ?? '', wantsJson(argv)));
  /** A bug: its message, and its stack trace (or what was thrown) for the report. */
  const internal = (message: string, report?: string): number => {
    io.stderr.write(`regfs: internal error (a bug; please report it${report === undefined ? `): ${message}` : ` with this text):\n${report}`}\n`);
    out().json?.fail(ExitCode.internal, { code: 'INTERNAL', message });
    return ExitCode.internal;
  };
  const done = parse(argv, name, io, state, out).catch((err: unknown) => {
    closeStorage();
    return internal(String((err as Error | undefined)?.message ?? err), (err as Error | undefined)?.stack ?? String(err));
  });
  return { done, unfinished: () => internal('the command stopped before it finished') };
}

/** Parse the command line and run its command; a RegfsError ends the run here, any other error is thrown. */
async function parse(argv: string[], name: string | undefined, io: Io, state: { run?: RunOutput }, out: () => RunOutput): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const register = <A>(y: Argv, mod: CommandModule<A>): Argv =>
    y.command(mod.command, mod.describe, (yy) => valuesRequired(mod.builder(yy)), async (args) => {
      const run = (state.run = new RunOutput(io, commandName(mod.command), args['json'] === true));
      const typed = unmarked(args);
      checkBooleanValues(argv, typed);
      checkNoEmptyValues(mod.command, typed, argv);
      configureStorage({ s3Endpoint: typed['s3-endpoint'] as string | undefined, jobs: typed['jobs'] as number | undefined });
      exitCode = await mod.handler(typed as A, io, run);
      run.endProblems();
      if (run.json !== undefined && !run.json.done) throw new Error(`regfs ${commandName(mod.command)} --json printed no result`);
    });

  let y: Argv = yargs(forYargs(argv))
    .scriptName('regfs')
    // regfs speaks English; yargs's headings and errors too, whatever LANG says (the bundle carries no yargs locales).
    .locale('en')
    .usage('regfs: offline surgery on Docker registry storage (docker/registry/v2)\n\nUsage: $0 <command> [options]')
    .strict()
    .demandCommand(1, 'name a command')
    .recommendCommands()
    .option('color', {
      type: 'boolean',
      global: true,
      describe: 'colour messages on stderr even when it is no terminal (--no-color: never); beats NO_COLOR and FORCE_COLOR',
    })
    .option('s3-endpoint', {
      type: 'string',
      global: true,
      requiresArg: true,
      describe: 'the S3 service of s3://BUCKET/PREFIX roots (path-style addressing); else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, or AWS',
    })
    .epilogue(EPILOGUE)
    .help()
    .alias('h', 'help')
    .version(packageVersion())
    // Help and the version end the run as every command does: their output written (or its
    // failure seen: a full disk, a closed pipe), not by an exit yargs calls as it prints.
    .exitProcess(false)
    // 80 columns unless stdout is a wider terminal (`regfs --help | less` gets 80). yargs
    // prints help and the version to process.stdout: reading io.stdout here guards it too.
    .wrap(Math.min(110, io.stdout.columns ?? 80))
    .fail((msg, err) => {
      // Without a throw here yargs would go on and call the handler.
      throw err ?? new UsageError(msg.replaceAll(LITERAL, ''));
    });
  for (const mod of COMMANDS) y = register(y, mod);

  // Every failure ends the run's output: stderr in regfs's form, and with --json the one
  // document on stdout (a command line yargs rejects too, if it asked for --json).
  try {
    await y.parseAsync();
  } catch (caught) {
    closeStorage();
    // yargs throws what its parser finds wrong (an option without its value) as a YError, past `fail`.
    const err = caught instanceof Error && caught.name === 'YError' ? new UsageError(caught.message.replaceAll(LITERAL, '')) : caught;
    if (err instanceof UsageError || (err instanceof RegfsError && err.code === 'USAGE')) {
      // One line however yargs breaks its message (`Invalid values:\n  Argument: …`), and the
      // word it took for a command named where it only says `Did you mean ls?`.
      let message = err.message.split('\n').map((l) => l.trim()).join(' ');
      const known = COMMANDS.some((m) => commandName(m.command) === name);
      // A word that is no command: yargs says `Unknown argument: bogus` (listing options valid
      // only after a command, such as --json, with it) or only `Did you mean ls?`.
      if (err instanceof UsageError && name !== undefined && !known) message = `unknown command ${quote(name)}${message.startsWith('Did you mean ') ? `; d${message.slice(1)}` : ''}`;
      out().fail(ExitCode.usage, err instanceof RegfsError ? err : new RegfsError('USAGE', message));
      const command = known ? ` ${name}` : '';
      io.stderr.write(`Run "regfs${command} --help" for usage.\n`);
      return ExitCode.usage;
    }
    if (err instanceof RegfsError) {
      out().fail(ExitCode.error, err);
      return ExitCode.error;
    }
    throw err;
  }
  closeStorage();
  return exitCode;
}

/**
 * A word yargs must take for an argument, whatever it looks like, goes to it behind this
 * mark, and comes back without it in every argument and message. An argument cannot hold a
 * NUL byte, so no word a user types is mistaken for one so marked.
 *
 * - A lone `-` (standard input): yargs-parser takes a word starting with `-` for an option,
 *   never for a value: `--list -` came out as `--list ''` and an unknown argument `-`, and a
 *   `-` among a command's variadic positionals (to-dir's LIST) was lost.
 * - Every word after `--`, the end of the options (POSIX): yargs dropped them from the
 *   positionals (`ls ROOT -- 'team/*'` listed everything).
 */
const LITERAL = '\0';

/** The command line as yargs is given it (see LITERAL). */
function forYargs(argv: string[]): string[] {
  const end = optionsEnd(argv);
  const marked = argv.slice(0, end).map((a) => (a === '-' ? `${LITERAL}-` : a));
  if (end === argv.length) return marked;
  // `regfs -- ls ROOT`: with no command before `--`, a command's name right after it is the command.
  const command = commandIndex(argv) === end + 1 && COMMANDS.some((m) => commandName(m.command) === argv[end + 1]) ? argv.slice(end + 1, end + 2) : [];
  return [...marked, ...command, ...argv.slice(end + 1 + command.length).map((a) => `${LITERAL}${a}`)];
}

/** The options of a command as yargs holds them (a method yargs has, which its types leave out). */
interface DeclaredOptions {
  boolean: string[];
  string: string[];
  number: string[];
  array: string[];
}

/**
 * A command's options that take one value, each made to require it: yargs-parser gives an
 * option named without its value (`--list` last, or before another option) an empty string
 * or nothing, which a command would take for a value (the list "", the current directory).
 * Now it is a usage error, as it is for an option with choices.
 */
function valuesRequired<A>(y: Argv<A>): Argv<A> {
  const o = (y as unknown as { getOptions(): DeclaredOptions }).getOptions();
  const single = [...o.string, ...o.number].filter((k) => !o.array.includes(k));
  if (single.length === 0) return y;
  // Given twice, such an option takes its last value, as getopt_long does (`$COMMON --jobs 8`):
  // yargs makes an array of the two, which a command took for garbage (a crash, or ignored).
  return y.requiresArg(single).coerce(Object.fromEntries(single.map((k) => [k, lastValue]))) as unknown as Argv<A>;
}

function lastValue(v: unknown): unknown {
  return Array.isArray(v) ? v.at(-1) : v;
}

/**
 * A boolean option given a value other than true or false (`--dry-run=yes`, `--json=1`) is
 * a usage error. yargs-parser reads any such value as false, so `--dry-run=yes` ran for real.
 * `args` tells which options are booleans (yargs parsed them as such).
 */
function checkBooleanValues(argv: string[], args: Record<string, unknown>): void {
  for (const a of argv) {
    if (a === '--') return;
    const m = /^--([^=]+)=(.*)$/s.exec(a);
    if (m === null || typeof args[m[1]!] !== 'boolean' || m[2] === 'true' || m[2] === 'false') continue;
    throw new RegfsError('USAGE', `--${m[1]!} is true or false, not ${quote(m[2]!)}: give --${m[1]!} or --no-${m[1]!}`);
  }
}

/**
 * An empty argument or option value (`regfs extract LIST SRC "$OUT"` with OUT unset) is a
 * usage error naming it: an empty path names no file (POSIX), and Node would take it for
 * the current directory, where a command would then read or write.
 */
function checkNoEmptyValues(spec: string, args: Record<string, unknown>, argv: string[]): void {
  const positionals = new Set([...spec.matchAll(/[<[]([^>\].]+)/g)].map((m) => m[1]!));
  for (const [k, v] of Object.entries(args)) {
    // `_` and `$0` are yargs's own; a one-letter key is an alias (-o) and a camelCase one
    // repeats a kebab-case option: each option is named once, by its long name.
    // A variadic positional (to-dir's LIST SRC OUT) is its command's to name, word by word.
    if (k === '_' || k === '$0' || k.length === 1 || /[A-Z]/.test(k) || v !== '') continue;
    throw emptyArgument(positionals.has(k) ? k.toUpperCase() : `--${k}`);
  }
  // What the command line says of the options that take a value, before any `--`: each one's
  // last word (the one it takes). A number read from a blank word is 0 (`--upload-age ''` or
  // ' ': every upload stale), so the word itself is looked at. An option right before `--`
  // has no value: `--` ends the options (yargs took the first argument after it).
  const end = optionsEnd(argv);
  const flag = (key: string): string => (key.length === 1 ? `-${key}` : `--${key}`);
  const last = new Map<string, string | undefined>();
  for (let i = 0; i < end; i++) {
    const m = /^--?([^=]+)(?:=(.*))?$/s.exec(argv[i]!);
    if (m === null || !(m[1]! in args) || typeof args[m[1]!] === 'boolean') continue;
    if (m[2] === undefined && i + 1 === end && end < argv.length) throw new RegfsError('USAGE', `${flag(m[1]!)} has no value: -- ends the options`);
    last.set(m[1]!, m[2] ?? argv[i + 1]);
    if (m[2] === undefined) i++;
  }
  for (const [key, word] of last) {
    if (typeof args[key] === 'number' && word !== undefined && word.trim() === '') throw emptyArgument(flag(key));
  }
}

/** Where the options end: the index of `--`, else the command line's length. */
function optionsEnd(argv: string[]): number {
  const end = argv.indexOf('--');
  return end < 0 ? argv.length : end;
}

/** `regfs help COMMAND …` is `regfs COMMAND --help` (as `git help`, `npm help`); `regfs help` alone is `--help`. */
function helpCommand(argv: string[]): string[] {
  const i = commandIndex(argv);
  if (argv[i] !== 'help') return argv;
  // Before any `--`: after it, `--help` would be an argument (a path, a pattern).
  const rest = argv.slice(i + 1);
  const end = optionsEnd(rest);
  return [...argv.slice(0, i), ...rest.slice(0, end), '--help', ...rest.slice(end)];
}

/** Global options that take a value, which may stand before the command: `--s3-endpoint URL ls ROOT`. */
const GLOBAL_VALUE_OPTIONS = new Set(['--s3-endpoint']);

/** Where the word yargs takes for the command stands: the first that is neither an option nor a global option's value (argv.length if none). */
function commandIndex(argv: string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return i + 1;
    if (GLOBAL_VALUE_OPTIONS.has(a)) i++;
    else if (!a.startsWith('-')) return i;
  }
  return argv.length;
}

/** Whether the command line asks for --json (`--json`, `--json=true`; the last one given wins over `--no-json`, `--json=false`). */
function wantsJson(argv: string[]): boolean {
  let json = false;
  for (const a of argv) {
    if (a === '--') break;
    if (a === '--json' || a === '--json=true') json = true;
    else if (a === '--no-json' || a === '--json=false') json = false;
  }
  return json;
}

/** `extract <list> <src> <out>` → `extract` */
function commandName(spec: string): string {
  return spec.split(' ')[0]!;
}

/** The parsed arguments with every marked word as it was typed (see LITERAL). */
function unmarked(args: Record<string, unknown>): Record<string, unknown> {
  const back = (v: unknown): unknown => (typeof v === 'string' && v.startsWith(LITERAL) ? v.slice(LITERAL.length) : Array.isArray(v) ? v.map(back) : v);
  return Object.fromEntries(Object.entries(args).map(([k, v]) => [k, back(v)]));
}
