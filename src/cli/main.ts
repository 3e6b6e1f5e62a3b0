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
process.exitCode = await main(argv, io);
