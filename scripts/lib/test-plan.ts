/**
 * How `npm test` (scripts/test.ts) runs the files in test/: two runs of Node's test runner.
 *
 *   1. `shared`, two files at a time, the longest first. Many tests wait on a child process
 *      (the CLI, docker-registry, skopeo, Ceph), and a second file uses the core one leaves
 *      idle (measured: about 15% off the time of these files one at a time); the
 *      differential harness, the longest file, overlaps the rest.
 *   2. `alone`, one file at a time with nothing beside it: the files that keep both cores busy
 *      by themselves and plan from timed runs (the crash series: two kill points at once, each
 *      placed by the times of uninterrupted runs).
 */
export interface TestPlan {
  shared: string[];
  alone: string[];
}

/** Files that must run with no other test beside them. */
const ALONE = new Set(['crash.test.ts']);
/** The longest of the rest, longest first: started first, so that the others fill the other core beside them. */
const FIRST = ['differential.test.ts', 'bench.test.ts', 'differential-s3.test.ts', 'cli.test.ts'];

/** The plan for the test file names `files` (names in test/, not paths). */
export function testPlan(files: readonly string[]): TestPlan {
  const tests = files.filter((f) => f.endsWith('.test.ts')).sort();
  const rank = (f: string): number => (FIRST.includes(f) ? FIRST.indexOf(f) : FIRST.length);
  return {
    shared: tests.filter((f) => !ALONE.has(f)).sort((a, b) => rank(a) - rank(b)),
    alone: tests.filter((f) => ALONE.has(f)),
  };
}
