/** --dry-run plans are tables in columns, as ls prints them; from-dir's verification line is a line of its own. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { alignColumns } from '../src/cli/output.js';
import { runCli } from './helpers/cli.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { tempDir, writeListFile } from './helpers/tree.js';

test('tables: alignColumns pads left, aligns the columns asked right, escapes each cell, leaves no trailing blanks', () => {
  assert.deepEqual(
    alignColumns(
      [
        ['a', 'sha256:1', '2 blobs', '9 B'],
        ['longer/name', 'x', '10 blobs', '1.5 KiB'],
        ['stale', '(stale)'],
        ['bad\x1bname', 'y', '1 blobs', '1 B'],
      ],
      [2, 3],
    ),
    [
      'a              sha256:1   2 blobs      9 B',
      'longer/name    x         10 blobs  1.5 KiB',
      'stale          (stale)',
      'bad\\u001bname  y          1 blobs      1 B',
    ],
  );
});

/** The start column of each field of each table line: equal down every column. */
function assertAligned(lines: string[], fields: number): void {
  assert.ok(lines.length >= 3, 'a table of several rows');
  const starts = lines.map((l) => [...l.matchAll(/(?<=  )\S/g)].map((m) => m.index).slice(0, fields - 1));
  // Right-aligned columns (blobs, size) end together instead.
  for (const s of starts) assert.deepEqual(s.slice(0, 3), starts[0]!.slice(0, 3), lines.join('\n'));
  const ends = new Set(lines.map((l) => l.length));
  assert.equal(ends.size, 1, `sizes end in one column:\n${lines.join('\n')}`);
}

const LIST = ['library/busybox:1.36', 'multiarch/tool:1.0', 'team/app:v1', 'team/platform/base/alpine:3.20'];
const SIGNATURE = 'team/app:sha256-6d1ddbb23e53cfd97b606fd78932a91c65f116c02fa690a4db6750d4793e35ac.sig';

test('tables: extract, to-dir and from-dir dry runs print aligned columns', async () => {
  const t = await tempDir();
  try {
    const list = await writeListFile(t.dir, LIST);
    const ex = await runCli(['extract', list, FIXTURE_ROOT, join(t.dir, 'out'), '--dry-run']);
    assert.equal(ex.code, 0, ex.stderr);
    const exLines = ex.stdout.trimEnd().split('\n');
    assert.match(exLines.at(-1)!, /^plan: 4 images/);
    assertAligned(exLines.slice(0, -1), 6);
    assert.match(exLines[1]!, /^multiarch\/tool:1\.0 +sha256:\S+  docker-list  linux\/amd64,linux\/arm64,linux\/arm\/v7 +6 blobs +14\.3 KiB$/);
    // An artifact shows its type where an image shows platforms, as in ls.
    const sig = await runCli(['extract', '-', FIXTURE_ROOT, join(t.dir, 'out'), '--dry-run'], { stdin: `${SIGNATURE}\n` });
    assert.match(sig.stdout, /^team\/app:sha256-\S+\.sig  sha256:\S+  oci  application\/vnd\.dev\.cosign\.artifact\.sig\.v1\+json  2 blobs  935 B$/m);

    const exp = join(t.dir, 'export');
    const td = await runCli(['to-dir', list, FIXTURE_ROOT, exp, '--dry-run']);
    assert.equal(td.code, 0, td.stderr);
    const tdLines = td.stdout.trimEnd().split('\n');
    assert.match(tdLines.at(-1)!, /^plan: 4 image directories/);
    assertAligned(tdLines.slice(0, -1), 6);

    assert.equal((await runCli(['to-dir', list, FIXTURE_ROOT, exp])).code, 0);
    const fd = await runCli(['from-dir', exp, join(t.dir, 'dest'), '--dry-run']);
    assert.equal(fd.code, 0, fd.stderr);
    const fdLines = fd.stdout.trimEnd().split('\n');
    assertAligned(fdLines.slice(0, 4), 6);
    assert.match(fdLines[4]!, /^plan: 4 images, /);
    assert.match(fdLines[5]!, /^verified: [\d.]+ KiB of blob data hashed; every blob matches its digest$/);
    assert.equal(fdLines.length, 6);
    const nv = await runCli(['from-dir', exp, join(t.dir, 'dest'), '--no-verify']);
    assert.match(nv.stdout, /^imported 4 images into .*\nnot verified \(--no-verify\): blob sizes checked, not hashed\n$/);
  } finally {
    await t.cleanup();
  }
});
