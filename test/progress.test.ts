/** Progress: the library's events (every long phase, once, totals known first) and the CLI's one bar. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import type { Progress, ProgressPhase } from '../src/progress.js';
import { extract } from '../src/ops/extract.js';
import { toDir } from '../src/ops/to-dir.js';
import { fromDir } from '../src/ops/from-dir.js';
import { verify } from '../src/ops/verify.js';
import { gc } from '../src/ops/gc.js';
import { createProgressBar, renderProgress } from '../src/cli/progress-bar.js';
import { runWithProgress } from '../src/cli/commands/shared.js';
import { main } from '../src/cli/app.js';
import { RunOutput, type Io } from '../src/cli/output.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { copyTree, tempDir, writeListFile } from './helpers/tree.js';

test('renderProgress: phase, count, bytes, rate and ETA in one line', () => {
  const p: Progress = { phase: 'write', done: 1204, total: 2610, bytes: 1024 ** 3, totalBytes: 4 * 1024 ** 3 };
  assert.equal(renderProgress(p, 10, 200), 'writing   [#####---------------]  1,204/2,610  1.0 GiB/4.0 GiB  102.4 MiB/s  ETA 0:30');
  // No bytes: the rate and ETA go by items.
  assert.equal(renderProgress({ phase: 'resolve', done: 50, total: 200 }, 2, 200), 'resolving [#####---------------]  50/200  25/s  ETA 0:06');
  // Nothing done yet, no time passed: no rate, no ETA.
  assert.equal(renderProgress({ phase: 'hash', done: 0, total: 3, bytes: 0, totalBytes: 3000 }, 0, 200), 'hashing   [--------------------]  0/3  0 B/2.9 KiB  ETA -:--');
  assert.equal(renderProgress({ phase: 'sweep', done: 7, total: 7 }, 1, 200), 'sweeping  [####################]  7/7  7/s  ETA 0:00');
  assert.equal(renderProgress({ phase: 'mark', done: 1, total: 3600 }, 1, 200), 'marking   [--------------------]  1/3,600  1/s  ETA 59:59');
  assert.match(renderProgress({ phase: 'mark', done: 1, total: 7201 }, 1, 200), /ETA 2:00:00$/);
  assert.equal(renderProgress({ phase: 'write', done: 0, total: 0 }, 0, 200), 'writing   [####################]  0/0  ETA -:--');
});

test('renderProgress: never as wide as the terminal (a wrapped line cannot be redrawn)', () => {
  const p: Progress = { phase: 'write', done: 1204, total: 2610, bytes: 1024 ** 3, totalBytes: 4 * 1024 ** 3 };
  for (const columns of [20, 40, 79, 80]) assert.ok(renderProgress(p, 10, columns).length < columns, String(columns));
});

/** A fake terminal on stderr, and what was written to it. */
function terminal(): { io: Io; written: () => string } {
  const stderr = Object.assign(new PassThrough(), { isTTY: true, columns: 120 });
  let err = '';
  stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  return { io: { stdout: new PassThrough(), stderr }, written: () => err };
}

test('progress bar: at most one redraw per 100 ms within a phase, one at each new phase, cleared once drawn', async () => {
  const t = terminal();
  let now = 0;
  const bar = createProgressBar(t.io, () => now);
  bar.clear();
  for (let i = 0; i <= 100; i++) {
    now = i * 5; // 500 ms of updates every 5 ms
    bar.update({ phase: 'hash', done: i, total: 100 });
  }
  bar.update({ phase: 'write', done: 0, total: 10 });
  bar.clear();
  bar.clear();
  await new Promise((r) => setImmediate(r));
  const frames = t.written().split('\r').filter((f) => f !== '');
  assert.deepEqual(
    frames.map((f) => f.split(' ')[0]),
    ['hashing', 'hashing', 'hashing', 'hashing', 'hashing', 'hashing', 'writing', '\x1b[K'],
    'hash at 0, 100, 200, 300, 400 and 500 ms, write at once, one clear',
  );
});

test('progress bar: nothing when stderr is not a terminal', async () => {
  const stderr = new PassThrough();
  let err = '';
  stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const bar = createProgressBar({ stdout: new PassThrough(), stderr });
  bar.update({ phase: 'write', done: 0, total: 1 });
  bar.clear();
  await new Promise((r) => setImmediate(r));
  assert.equal(err, '');
});

test('progress bar: a terminal of unknown width (0 columns, as under script(1)) is taken as 80 wide', async () => {
  const stderr = Object.assign(new PassThrough(), { isTTY: true, columns: 0 });
  let err = '';
  stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  createProgressBar({ stdout: new PassThrough(), stderr }).update({ phase: 'resolve', done: 0, total: 17 });
  await new Promise((r) => setImmediate(r));
  assert.equal(err, '\rresolving [--------------------]  0/17  ETA -:--\x1b[K');
});

test('progress bar: cleared before a warning, drawn again after it', async () => {
  const t = terminal();
  const args = { 'keep-going': false, link: 'auto' as const, jobs: 1, 'dry-run': false, json: false };
  await runWithProgress(new RunOutput(t.io, 'extract', false), args, async (opts) => {
    opts.onProgress({ phase: 'write', done: 0, total: 2 });
    opts.onWarning('careful');
    opts.onProgress({ phase: 'write', done: 2, total: 2 });
  });
  await new Promise((r) => setImmediate(r));
  assert.match(t.written(), /^\rwriting +\[-+\] +0\/2 +ETA -:--\x1b\[K\r\x1b\[K(\x1b\[\d+m)?warning:(\x1b\[\d+m)? careful\n\rwriting .*2\/2.*\x1b\[K\r\x1b\[K$/);
});

/**
 * The contract of src/progress.ts: the phases come in `want`'s order, each once (one run of
 * reports); each phase's first report has done 0 and its totals, which never change; done and
 * bytes never go back nor pass their totals; the last report of each phase is complete.
 */
function assertPhases(events: Progress[], want: ProgressPhase[]): void {
  const runs: Progress[][] = [];
  for (const e of events) {
    if (runs.length === 0 || runs.at(-1)![0]!.phase !== e.phase) runs.push([e]);
    else runs.at(-1)!.push(e);
  }
  assert.deepEqual(
    runs.map((r) => r[0]!.phase),
    want,
    'each phase once, in order',
  );
  for (const run of runs) {
    const first = run[0]!;
    assert.equal(first.done, 0, `${first.phase} starts at 0`);
    let prev = first;
    for (const e of run) {
      assert.equal(e.total, first.total, `${e.phase}: the total is known at the start`);
      assert.equal(e.totalBytes, first.totalBytes, `${e.phase}: so are the bytes`);
      assert.ok(e.done >= prev.done && e.done <= e.total, `${e.phase}: ${e.done} of ${e.total} after ${prev.done}`);
      if (e.totalBytes !== undefined) assert.ok(e.bytes! >= prev.bytes! && e.bytes! <= e.totalBytes, `${e.phase}: ${e.bytes} bytes of ${e.totalBytes}`);
      prev = e;
    }
    assert.equal(prev.done, prev.total, `${prev.phase} ends complete`);
    assert.equal(prev.bytes, prev.totalBytes, `${prev.phase} ends with all its bytes`);
  }
}

const LIST = ['team/app:v1', 'multiarch/tool:1.0', 'multiarch/tool:nested', 'library/busybox:1.36'];

test('progress events: extract and to-dir resolve then write; from-dir hashes then writes; verify hashes; gc marks then sweeps', async () => {
  const t = await tempDir();
  try {
    const list = await writeListFile(t.dir, LIST);
    const on = (events: Progress[]) => (p: Progress) => events.push({ ...p });

    const ex: Progress[] = [];
    const out = join(t.dir, 'out');
    await extract({ list, source: FIXTURE_ROOT, output: out, onProgress: on(ex) });
    assertPhases(ex, ['resolve', 'write']);
    assert.equal(ex[0]!.total, LIST.length);
    assert.ok(ex.at(-1)!.totalBytes! > 0);

    const exDry: Progress[] = [];
    await extract({ list, source: FIXTURE_ROOT, output: join(t.dir, 'dry'), dryRun: true, onProgress: on(exDry) });
    assertPhases(exDry, ['resolve']);

    const td: Progress[] = [];
    const exp = join(t.dir, 'export');
    const r = await toDir({ list, source: FIXTURE_ROOT, output: exp, onProgress: on(td) });
    assertPhases(td, ['resolve', 'write']);
    assert.equal(td.at(-1)!.totalBytes, r.stats!.bytes, 'the bar counts what the summary counts');

    const fd: Progress[] = [];
    const fr = await fromDir({ input: exp, output: join(t.dir, 'dest'), onProgress: on(fd) });
    assertPhases(fd, ['hash', 'write']);
    assert.equal(fd.at(-1)!.totalBytes, fr.stats!.bytes);
    // Blobs shared by image directories (hard links of one inode) are hashed once, and counted once.
    const hashing = fd.filter((e) => e.phase === 'hash').at(-1)!;
    assert.equal(hashing.totalBytes, fr.bytesVerified, 'the bar hashes what the summary says was verified');
    assert.ok(hashing.total < fr.images.reduce((a, i) => a + i.blobs, 0), 'shared blobs hashed once');

    const v: Progress[] = [];
    await verify({ root: out, onProgress: on(v) });
    assertPhases(v, ['hash']);
    assert.ok(v[0]!.total > 0);

    const root = join(t.dir, 'gc');
    await copyTree(out, root);
    // Untag one image so that the sweep has work.
    const { rm } = await import('../src/ops/rm.js');
    await rm({ root, ref: 'team/app:v1' });
    const g: Progress[] = [];
    const gr = await gc({ root, deleteUntagged: true, apply: true, onProgress: on(g) });
    assertPhases(g, ['mark', 'sweep']);
    assert.ok(gr.blobs.length > 0);
    assert.equal(g.at(-1)!.total, gr.blobs.length + gr.manifests.length + gr.links.length + gr.temps.length);
  } finally {
    await t.cleanup();
  }
});

test('cli: one bar on a terminal for every phase, each phase once, cleared at the end', async () => {
  const t = await tempDir();
  try {
    const list = await writeListFile(t.dir, LIST);
    const term = terminal();
    assert.equal(await main(['extract', list, FIXTURE_ROOT, join(t.dir, 'out')], term.io), 0);
    await new Promise((r) => setImmediate(r));
    const err = term.written();
    const labels = err
      .split('\r')
      .filter((f) => f !== '' && f !== '\x1b[K')
      .map((f) => f.split(' ')[0]);
    assert.deepEqual([...new Set(labels)], ['resolving', 'writing']);
    assert.deepEqual(labels, [...labels].sort((a, b) => (a === b ? 0 : a === 'resolving' ? -1 : 1)), 'no phase comes back');
    assert.match(err, /\rresolving \[-{20}\]  0\/4  /);
    assert.ok(err.endsWith('\r\x1b[K'), 'the bar is cleared');
  } finally {
    await t.cleanup();
  }
});

test('progress events: bundle resolves then writes, its bytes the bundle size', async () => {
  const { bundle } = await import('../src/ops/bundle.js');
  const t = await tempDir();
  try {
    const list = await writeListFile(t.dir, LIST);
    const events: Progress[] = [];
    const r = await bundle({ list, source: FIXTURE_ROOT, output: join(t.dir, 'b.tar'), onProgress: (p) => events.push({ ...p }) });
    assertPhases(events, ['resolve', 'write']);
    assert.equal(events.at(-1)!.totalBytes, r.plan.size, 'the bar counts every byte of the tar');
    const dry: Progress[] = [];
    await bundle({ list, source: FIXTURE_ROOT, output: join(t.dir, 'c.tar'), dryRun: true, onProgress: (p) => dry.push({ ...p }) });
    assertPhases(dry, ['resolve']);
  } finally {
    await t.cleanup();
  }
});

test('progress events: from-oci of a tar hashes by bytes against the tar size, counting blob entries, then writes', async () => {
  const { bundle } = await import('../src/ops/bundle.js');
  const { fromOci } = await import('../src/ops/from-oci.js');
  const { stat } = await import('node:fs/promises');
  const t = await tempDir();
  try {
    const tar = join(t.dir, 'b.tar');
    const made = await bundle({ list: await writeListFile(t.dir, LIST), source: FIXTURE_ROOT, output: tar });
    const events: Progress[] = [];
    await fromOci({ input: tar, output: join(t.dir, 'reg'), onProgress: (p) => events.push({ ...p }) });
    assertPhases(events, ['hash', 'write']);
    const hash = events.filter((e) => e.phase === 'hash');
    const size = (await stat(tar)).size;
    for (const e of hash) {
      assert.equal(e.totalBytes, size, 'bytes against the tar size');
      assert.ok(e.done <= e.total && e.total <= made.plan.blobsCarried, `blob entries, not bytes: ${e.done}/${e.total}`);
    }
    assert.equal(hash.at(-1)!.bytes, size);
  } finally {
    await t.cleanup();
  }
});
