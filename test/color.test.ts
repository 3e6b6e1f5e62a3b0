/** Colour: NO_COLOR, FORCE_COLOR, --color and --no-color, decided in one place (src/cli/color.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { colorFlag, colorLevel, forceColorLevel } from '../src/cli/color.js';
import { main } from '../src/cli/app.js';
import { runCli } from './helpers/cli.js';

const ESC = '\x1b[';
const pipe = { isTTY: false };
/** A terminal that can show 256 colours. */
const terminal = { isTTY: true, getColorDepth: () => 8 };

test('color: a pipe is plain, a terminal is coloured at its own depth', () => {
  assert.equal(colorLevel(pipe, {}, undefined), 0);
  assert.equal(colorLevel(terminal, {}, undefined), 2);
  assert.equal(colorLevel({ isTTY: true, getColorDepth: () => 1 }, {}, undefined), 0, 'a terminal without colours (TERM=dumb)');
});

test('color: NO_COLOR set and not empty turns colour off; empty, it does not', () => {
  assert.equal(colorLevel(terminal, { NO_COLOR: '1' }, undefined), 0);
  assert.equal(colorLevel(terminal, { NO_COLOR: 'anything' }, undefined), 0);
  assert.equal(colorLevel(terminal, { NO_COLOR: '' }, undefined), 2);
});

test('color: FORCE_COLOR as chalk reads it, and it beats NO_COLOR', () => {
  assert.equal(forceColorLevel(undefined), undefined);
  assert.equal(forceColorLevel('0'), 0);
  assert.equal(forceColorLevel('false'), 0);
  assert.equal(forceColorLevel('1'), 1);
  assert.equal(forceColorLevel('2'), 2);
  assert.equal(forceColorLevel('3'), 3);
  assert.equal(forceColorLevel('9'), 3);
  assert.equal(forceColorLevel('true'), 1);
  assert.equal(forceColorLevel(''), 1);
  assert.equal(colorLevel(pipe, { FORCE_COLOR: '1' }, undefined), 1, 'into a pipe');
  assert.equal(colorLevel(pipe, { FORCE_COLOR: '3' }, undefined), 3);
  assert.equal(colorLevel(terminal, { FORCE_COLOR: '0' }, undefined), 0, 'off on a terminal');
  assert.equal(colorLevel(terminal, { FORCE_COLOR: '1' }, undefined), 2, 'a minimum: the terminal shows more');
  assert.equal(colorLevel(pipe, { FORCE_COLOR: '1', NO_COLOR: '1' }, undefined), 1);
});

test('color: --no-color and --color beat the environment', () => {
  assert.equal(colorLevel(terminal, {}, false), 0);
  assert.equal(colorLevel(pipe, { FORCE_COLOR: '3' }, false), 0);
  assert.equal(colorLevel(pipe, {}, true), 1);
  assert.equal(colorLevel(pipe, { NO_COLOR: '1' }, true), 1);
  assert.equal(colorLevel(pipe, { FORCE_COLOR: '0' }, true), 1);
  assert.equal(colorLevel(pipe, { FORCE_COLOR: '3' }, true), 3);
  assert.equal(colorLevel(terminal, {}, true), 2);
});

test('color: the flag is read as yargs reads it, the last one winning, nothing after --', () => {
  assert.equal(colorFlag(['ls', 'root']), undefined);
  assert.equal(colorFlag(['ls', 'root', '--color']), true);
  assert.equal(colorFlag(['ls', '--no-color', 'root']), false);
  assert.equal(colorFlag(['--color=false', 'ls']), false);
  assert.equal(colorFlag(['--color', '--no-color']), false);
  assert.equal(colorFlag(['--no-color', '--color']), true);
  assert.equal(colorFlag(['ls', '--', '--color']), undefined);
});

// The CLI as run: an error on stderr, which is a pipe here.
const failing = ['ls', '/nonexistent-regfs-root'];

test('cli color: piped stderr is plain; FORCE_COLOR colours it; --no-color beats FORCE_COLOR; --color forces it', async () => {
  const plain = await runCli(failing, { env: { FORCE_COLOR: '0' } });
  assert.equal(plain.code, 1);
  assert.match(plain.stderr, /^error: .*\[NOT_REGISTRY\]\n$/);
  const forced = await runCli(failing, { env: { FORCE_COLOR: '1' } });
  assert.ok(forced.stderr.startsWith(`${ESC}31merror:${ESC}39m `), JSON.stringify(forced.stderr));
  const both = await runCli(failing, { env: { FORCE_COLOR: '1', NO_COLOR: '1' } });
  assert.ok(both.stderr.includes(ESC), 'FORCE_COLOR beats NO_COLOR');
  const off = await runCli([...failing, '--no-color'], { env: { FORCE_COLOR: '1' } });
  assert.ok(!off.stderr.includes(ESC), JSON.stringify(off.stderr));
  assert.match(off.stderr, /\[NOT_REGISTRY\]/);
  const on = await runCli([...failing, '--color'], { env: { FORCE_COLOR: '0', NO_COLOR: '1' } });
  assert.ok(on.stderr.startsWith(`${ESC}31merror:`), JSON.stringify(on.stderr));
  assert.equal(on.stdout, '', 'stdout stays plain (and empty)');
});

test('cli color: NO_COLOR turns off colour on a terminal; --color turns it back on', async () => {
  const saved = { NO_COLOR: process.env['NO_COLOR'], FORCE_COLOR: process.env['FORCE_COLOR'] };
  const run = async (args: string[]): Promise<string> => {
    const stderr = Object.assign(new PassThrough(), { isTTY: true, getColorDepth: () => 8 });
    let err = '';
    stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    assert.equal(await main(args, { stdout: new PassThrough(), stderr }), 1);
    return err;
  };
  try {
    delete process.env['FORCE_COLOR'];
    delete process.env['NO_COLOR'];
    assert.ok((await run(failing)).includes(ESC), 'a terminal is coloured');
    process.env['NO_COLOR'] = '1';
    assert.ok(!(await run(failing)).includes(ESC), 'NO_COLOR');
    assert.ok((await run([...failing, '--color'])).includes(ESC), '--color beats NO_COLOR');
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});
