/**
 * `npm test` after the build: every file in test/ with Node's test runner, in the two runs
 * scripts/lib/test-plan.ts lays out (two files at a time, then the crash series alone). Both
 * runs always run; the exit status is 1 if either failed. `npm test -- FILE…` runs the files
 * named instead, one at a time. Options for the test runner (`--test-name-pattern=RE`, in the
 * `--name=value` form) go to every run.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { testPlan } from './lib/test-plan.js';

const given = process.argv.slice(2);
const options = given.filter((a) => a.startsWith('-'));
const named = given.filter((a) => !a.startsWith('-'));

function runTests(files: string[], concurrency: number): boolean {
  if (files.length === 0) return true;
  const args = ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...options, ...files];
  return spawnSync(process.execPath, args, { stdio: 'inherit' }).status === 0;
}

if (named.length > 0) {
  process.exitCode = runTests(named, 1) ? 0 : 1;
} else {
  const plan = testPlan(readdirSync('test'));
  const ok = [runTests(plan.shared.map((f) => join('test', f)), 2), runTests(plan.alone.map((f) => join('test', f)), 1)];
  process.exitCode = ok.every(Boolean) ? 0 : 1;
}
