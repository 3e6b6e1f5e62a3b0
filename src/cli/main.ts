#!/usr/bin/env node
/** The `regfs` executable. */
import { hideBin } from 'yargs/helpers';
import { main } from './app.js';
import { colorFlag } from './color.js';
import { ExitCode, guardedProcessIo } from './output.js';

// A write error on stdout may come after main has returned (the write completes later): it
// turns a success into a failure as the process exits.
let outputFailed = false;
const argv = hideBin(process.argv);
const io = guardedProcessIo(
  () => (outputFailed = true),
  () => colorFlag(argv),
);
process.on('exit', () => {
  if (outputFailed && process.exitCode === ExitCode.ok) process.exitCode = ExitCode.error;
});
// No top-level await: the bundle is CommonJS (scripts/build/cli.ts). Were main's promise never
// settled, the process would end when nothing is left to wait for, and must not end as a
// success (an unsettled top-level await ends 13).
let settled = false;
process.once('beforeExit', () => {
  if (settled) return;
  process.exitCode = ExitCode.internal;
  io.stderr.write('regfs: internal error (a bug; please report it): the command stopped before it finished\n');
});
void main(argv, io).then((code) => {
  settled = true;
  process.exitCode = code;
});
