/**
 * `npm test`'s runner (scripts/test.ts, scripts/lib/test-plan.ts): every file in test/ runs
 * once, the crash series alone, the rest two at a time with the longest first; a failure in
 * either run fails the whole, and the other run still runs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { testPlan } from '../scripts/lib/test-plan.js';
import { withTempDir } from './helpers/tree.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

test('test plan: every test file once; the crash series alone; the differential harness first of the rest', () => {
  const files = readdirSync(join(ROOT, 'test')).filter((f) => f.endsWith('.test.ts'));
  const plan = testPlan([...files, 'tsconfig.json', 'helpers']);
  assert.deepEqual([...plan.shared, ...plan.alone].sort(), files.sort());
  assert.deepEqual(plan.alone, ['crash.test.ts']);
  assert.equal(plan.shared[0], 'differential.test.ts');
});

test('test runner: both runs run; a failure in either exits 1; FILE arguments run just those; options go to every run', async () => {
  await withTempDir(async (dir) => {
    await mkdir(join(dir, 'test'));
    await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    const file = (name: string, ok: boolean): Promise<void> =>
      writeFile(join(dir, 'test', name), `import { test } from 'node:test';\ntest('${name} ran', () => { if (!${ok}) throw new Error('${name} failed'); });\n`);
    await file('a.test.ts', true);
    await file('b.test.ts', true);
    await file('crash.test.ts', false);
    // Without NODE_TEST_CONTEXT, which tells a test runner it runs inside another's file (and then runs no files).
    const { NODE_TEST_CONTEXT: _, ...env } = process.env;
    const run = (args: string[] = []): { status: number | null; out: string } => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'test.ts'), ...args], { cwd: dir, encoding: 'utf8', env: { ...env, FORCE_COLOR: '0' } });
      return { status: r.status, out: r.stdout + r.stderr };
    };
    const all = run();
    assert.equal(all.status, 1, all.out);
    for (const name of ['a.test.ts', 'b.test.ts', 'crash.test.ts']) assert.match(all.out, new RegExp(`${name.replace('.', '\\.')} ran`));
    await file('crash.test.ts', true);
    await file('b.test.ts', false);
    const sharedFails = run();
    assert.equal(sharedFails.status, 1, sharedFails.out);
    assert.match(sharedFails.out, /crash\.test\.ts ran/, 'the crash series runs after a failure in the shared run');
    const named = run([join('test', 'a.test.ts')]);
    assert.equal(named.status, 0, named.out);
    assert.doesNotMatch(named.out, /b\.test\.ts ran/);
    // A runner option goes to both runs: only the tests it names run, b's failing one not.
    const pattern = run(['--test-name-pattern=^(a|crash)\\.test']);
    assert.equal(pattern.status, 0, pattern.out);
    assert.match(pattern.out, /✔ a\.test\.ts ran/);
    assert.match(pattern.out, /✔ crash\.test\.ts ran/);
  });
});
