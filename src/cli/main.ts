#!/usr/bin/env node
/** The `regfs` executable. */
import { hideBin } from 'yargs/helpers';
import { start } from './app.js';
import { colorFlag } from './color.js';
import { ExitCode, guardedProcessIo } from './output.js';

// A write error on stdout may come after main has returned (the write completes later): it
// turns a success, a partial run (3) or found damage (4) into a failure (1) as the process
// exits, so that a script never takes a report it did not get for one.
let outputFailed = false;
const OVERRIDDEN: ReadonlySet<number | string | undefined> = new Set([ExitCode.ok, ExitCode.partial, ExitCode.damage]);
const argv = hideBin(process.argv);
const io = guardedProcessIo(
  () => (outputFailed = true),
  () => colorFlag(argv),
);
process.on('exit', () => {
  if (outputFailed && OVERRIDDEN.has(process.exitCode)) process.exitCode = ExitCode.error;
});
// No top-level await: the bundle is CommonJS (scripts/build/cli.ts). Were the run's promise
// never settled, the process would end when nothing is left to wait for, and must not end as a
// success (an unsettled top-level await ends 13).
const run = start(argv, io);
let settled = false;
process.once('beforeExit', () => {
  if (!settled) process.exitCode = run.unfinished();
});
void run.done.then((code) => {
  settled = true;
  process.exitCode = code;
});
