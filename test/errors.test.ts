/** Messages quote what a user or a tree supplies bounded and escaped; problems are cheap; JSON output streams. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { escapeControl, quote, QUOTE_MAX, RegfsError } from '../src/errors.js';
import { LazyArray, writeJson } from '../src/cli/output.js';

test('quote: control characters, quotes and backslashes escaped; an over-long string cut to a bounded prefix', () => {
  assert.equal(quote('team/app'), '"team/app"');
  assert.equal(quote('a\nb\tc\rd\x1b[2Je\x7f\x9bf\u202eg'), '"a\\nb\\tc\\rd\\u001b[2Je\\u007f\\u009bf\\u202eg"');
  assert.equal(quote('say "hi" \\ bye'), '"say \\"hi\\" \\\\ bye"');
  const long = quote('x'.repeat(1_000_000));
  assert.equal(long, `"${'x'.repeat(QUOTE_MAX)}…" (1,000,000 characters)`);
  assert.equal(quote('y'.repeat(50), 10), `"${'y'.repeat(10)}…" (50 characters)`);
  assert.equal(quote(`${'z'.repeat(9)}😀😀`, 10), `"${'z'.repeat(9)}…" (13 characters)`, 'no half of a surrogate pair');
});

test('escapeControl: one line stays one line; text already escaped is left as it is', () => {
  assert.equal(escapeControl('ok: "a\\nb"'), 'ok: "a\\nb"');
  assert.equal(escapeControl('line\nLINK_INVALID  forged'), 'line\\nLINK_INVALID  forged');
  assert.equal(escapeControl(escapeControl('\x1b\n')), '\\u001b\\n');
});

test('RegfsError: no stack trace is captured; name and code as before', () => {
  const e = new RegfsError('NAME_UNKNOWN', 'repository x does not exist');
  assert.equal(e.name, 'RegfsError');
  assert.equal(e.stack, 'RegfsError: repository x does not exist');
  assert.ok(e instanceof Error);
  assert.deepEqual(e.problems, []);
  // Other errors keep theirs.
  assert.match(new Error('x').stack ?? '', /\n\s+at /);
});

test('writeJson: the same text as JSON.stringify(value, null, 2), in pieces', () => {
  const values: unknown[] = [
    { ok: false, error: { code: 'X', message: 'a "b"\n', path: undefined }, problems: [{ code: 'A', line: 1, f: () => 1 }, [], {}, [undefined, null, 'x']] },
    [],
    {},
    'text',
    3,
    null,
    { nested: [[1, [2, { three: [3] }]], { empty: [] }], date: new Date(0) },
    { many: Array.from({ length: 20_000 }, (_, i) => ({ i, s: `item ${i}` })) },
    { lazy: new LazyArray([1, 2, 3], (n) => ({ n, twice: n * 2, gone: undefined })), none: new LazyArray([], (n) => n) },
  ];
  for (const v of values) {
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
    writeJson(out, v);
    assert.equal(chunks.join(''), `${JSON.stringify(v, null, 2)}\n`);
    if (JSON.stringify(v).length > 1 << 17) assert.ok(chunks.length > 1, 'written in pieces');
  }
});
