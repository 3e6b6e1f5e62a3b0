/** Messages quote what a user or a tree supplies bounded and escaped; problems are cheap; JSON output streams. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { escapeControl, quote, QUOTE_MAX, RegfsError } from '../src/errors.js';
import { JSON_SCHEMA_VERSION, JsonReport } from '../src/cli/output.js';

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

test('JsonReport: one document, its fields the same text as JSON.stringify(value, null, 2), in pieces', () => {
  const values: Array<Record<string, unknown>> = [
    { error: { code: 'X', message: 'a "b"\n', path: undefined }, list: [{ code: 'A', line: 1, f: () => 1 }, [], {}, [undefined, null, 'x']] },
    {},
    { text: 'text', n: 3, nothing: null },
    { nested: [[1, [2, { three: [3] }]], { empty: [] }], date: new Date(0) },
    { many: Array.from({ length: 20_000 }, (_, i) => ({ i, s: `item ${i}` })) },
  ];
  for (const v of values) {
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
    new JsonReport(out, 'ls').finish(0, v);
    const whole = { schemaVersion: JSON_SCHEMA_VERSION, command: 'ls', problems: [], ok: true, exitCode: 0, ...v };
    assert.equal(chunks.join(''), `${JSON.stringify(whole, null, 2)}\n`);
    if (JSON.stringify(v).length > 1 << 17) assert.ok(chunks.length > 1, 'written in pieces');
  }
});

test('JsonReport: problems are written as they come, before the result; a failure is one document too', () => {
  const run = (f: (r: JsonReport, written: () => number) => void): string => {
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
    f(new JsonReport(out, 'extract'), () => chunks.join('').length);
    return chunks.join('');
  };
  let before = 0;
  const text = run((r, written) => {
    for (let i = 0; i < 5000; i++) r.problem(new RegfsError('TAG_UNKNOWN', `l:${i + 1}: x:${i} does not exist`, { at: { file: 'l', line: i + 1 } }));
    before = written();
    r.finish(3, { images: [] });
    r.finish(0, { twice: true });
  });
  // 5,000 problems are well over 64 KiB: most of them are out before the run ends.
  assert.ok(before > text.length / 2, `${before} of ${text.length} bytes written before the end`);
  const doc = JSON.parse(text) as { problems: Array<{ code: string; line: number; file: string }>; ok: boolean; exitCode: number; images: unknown[]; twice?: boolean };
  assert.equal(doc.problems.length, 5000);
  assert.deepEqual(doc.problems[4999], { code: 'TAG_UNKNOWN', message: 'l:5000: x:4999 does not exist', file: 'l', line: 5000 });
  assert.equal(doc.ok, false);
  assert.equal(doc.exitCode, 3);
  assert.equal(doc.twice, undefined, 'finished once');
  const failed = JSON.parse(
    run((r) => {
      r.problem(new RegfsError('NAME_UNKNOWN', 'a'));
      r.fail(1, new RegfsError('INCOMPLETE', '2 problems found', { problems: [new RegfsError('LIST_SYNTAX', 'b', { path: 'p' })] }));
    }),
  ) as Record<string, unknown>;
  assert.deepEqual(failed, {
    schemaVersion: JSON_SCHEMA_VERSION,
    command: 'extract',
    problems: [
      { code: 'NAME_UNKNOWN', message: 'a' },
      { code: 'LIST_SYNTAX', message: 'b', path: 'p' },
    ],
    ok: false,
    exitCode: 1,
    error: { code: 'INCOMPLETE', message: '2 problems found' },
  });
});
