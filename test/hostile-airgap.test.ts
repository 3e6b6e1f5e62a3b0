/**
 * inventory, bundle and apply against a hostile user or input (docs/bundle.md): input that
 * never ends, bundles and inventories crafted to mislead, outputs that are inputs. Each run
 * must end, with a stable code naming what is wrong, and leave what it must not touch as it
 * was.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { REGFS_BIN, runCli } from './helpers/cli.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { tempDir } from './helpers/tree.js';

let t: { dir: string; cleanup: () => Promise<void> };
/** A complete bundle of two images of the fixture. */
let bundleTar: string;
let listFile: string;

before(async () => {
  t = await tempDir('regfs-hostile-airgap-');
  listFile = join(t.dir, 'release.list');
  await writeFile(listFile, 'team/app:v1\nlibrary/busybox:1.36\n');
  bundleTar = join(t.dir, 'release.tar');
  const r = await runCli(['bundle', listFile, FIXTURE_ROOT, bundleTar]);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await t?.cleanup();
});

/** `bash -c script` ($REGFS is regfs), killed with its whole process group after `ms`; `output` is its stdout and stderr as they came. */
function shell(script: string, ms: number): Promise<{ code: number | null; output: string; hung: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0', REGFS: `${process.execPath} ${REGFS_BIN}` } });
    let output = '';
    let hung = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
    child.on('error', reject);
    const timer = setTimeout(() => {
      hung = true;
      process.kill(-child.pid!, 'SIGKILL');
    }, ms);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, hung });
    });
  });
}

test('hostile: standard input that never ends (yes, /dev/zero, a whole bundle then zeros or text) ends apply, with its own status', async () => {
  const dest = (n: string): string => join(t.dir, `never-ends-${n}`);
  for (const [n, input, code, says] of [
    ['yes', 'yes', 1, /\[ARCHIVE_INVALID\]/],
    ['zero', 'cat /dev/zero', 1, /\[ARCHIVE_INVALID\]/],
    ['bundle-zero', `cat ${bundleTar} /dev/zero`, 0, /applied 2 images/],
    ['bundle-yes', `{ cat ${bundleTar}; yes; }`, 0, /applied 2 images/],
  ] as const) {
    const r = await shell(`${input} | $REGFS apply - ${dest(n)}; echo "exit $?" >&2`, 20_000);
    assert.equal(r.hung, false, `${input} | regfs apply - DEST hung: ${r.output}`);
    assert.match(r.output, new RegExp(`exit ${code}\\n$`), r.output);
    assert.match(r.output, says);
    assert.doesNotMatch(r.output, /internal error|\n\s+at /);
  }
  // A device as standard input (no pipe: no writer to spare).
  const r = await shell(`$REGFS apply - ${dest('device')} < /dev/zero; echo "exit $?" >&2`, 20_000);
  assert.equal(r.hung, false, `regfs apply - DEST < /dev/zero hung: ${r.output}`);
  assert.match(r.output, /\[ARCHIVE_INVALID\][^]*exit 1\n$/);
});

test('hostile: a BUNDLE that is the image list or the --have inventory is refused, and the input is left as it was', async () => {
  const list = join(t.dir, 'own.list');
  await writeFile(list, 'team/app:v1\n');
  const far = join(t.dir, 'far-own');
  assert.equal((await runCli(['apply', bundleTar, far])).code, 0);
  const inv = join(t.dir, 'far-own.inv');
  assert.equal((await runCli(['inventory', far, '-o', inv])).code, 0);
  const listBefore = await readFile(list);
  const invBefore = await readFile(inv);
  for (const [args, named] of [
    [['bundle', list, FIXTURE_ROOT, list], list],
    [['bundle', list, FIXTURE_ROOT, inv, '--have', inv], inv],
    [['bundle', list, FIXTURE_ROOT, join(t.dir, '.', 'own.list'), '--have', inv], list],
  ] as const) {
    const r = await runCli([...args]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[OUTPUT_IN_SOURCE\]/);
    assert.ok(r.stderr.includes(named), r.stderr);
    assert.deepEqual(await readFile(list), listBefore, 'the list is unchanged');
    assert.deepEqual(await readFile(inv), invBefore, 'the inventory is unchanged');
  }
});
