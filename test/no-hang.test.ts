/**
 * No file regfs reads but does not own makes it wait: a FIFO (or socket, device, directory)
 * where a lock, a take-over lock, or an export's version, record or manifest file should be
 * is refused at once, naming the path, or (where regfs rewrites the file anyway) replaced.
 * Every run has a timeout: a blocking read shows as a killed child (code null).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { LOCK_FILE } from '../src/fs/lock.js';
import { runCli } from './helpers/cli.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { copyTree, tempDir } from './helpers/tree.js';

const TIMEOUT_MS = 20_000;
const deadPid = (): number => spawnSync(process.execPath, ['-e', '0']).pid!;

async function withStorage(fn: (root: string, v2: string, tmp: string) => Promise<void>): Promise<void> {
  const t = await tempDir();
  try {
    const root = join(t.dir, 'src');
    await copyTree(FIXTURE_ROOT, root);
    await fn(root, join(root, 'docker', 'registry', 'v2'), t.dir);
  } finally {
    await t.cleanup();
  }
}

test('no hang: a FIFO as the lock file makes writers LOCKED and verify report it, at once', async () => {
  await withStorage(async (root, v2) => {
    const lock = join(v2, LOCK_FILE);
    execFileSync('mkfifo', [lock]);
    const gc = await runCli(['gc', root, '--apply'], { timeoutMs: TIMEOUT_MS });
    assert.equal(gc.code, 1, gc.stderr);
    assert.ok(gc.stderr.includes(`"${lock}": it is a FIFO`), gc.stderr);
    assert.match(gc.stderr, /\[LOCKED\]/);
    const rmRun = await runCli(['rm', root, 'team/app:v1'], { timeoutMs: TIMEOUT_MS });
    assert.equal(rmRun.code, 1, rmRun.stderr);
    assert.match(rmRun.stderr, /it is a FIFO.*\[LOCKED\]/);
    const verify = await runCli(['verify', root], { timeoutMs: TIMEOUT_MS });
    assert.notEqual(verify.code, null, 'verify did not hang');
    assert.match(verify.stdout + verify.stderr, /STALE_LOCK/);
    assert.ok((verify.stdout + verify.stderr).includes(`lock file "${lock}" is a FIFO`), verify.stdout + verify.stderr);
  });
});

test('no hang: a FIFO as the take-over lock of a stale lock is LOCKED naming it', async () => {
  await withStorage(async (root, v2) => {
    const lock = join(v2, LOCK_FILE);
    const stale = JSON.stringify({ pid: deadPid(), host: hostname(), command: 'extract', started: '2026-01-01T00:00:00Z' });
    await writeFile(lock, stale);
    const takeover = `${lock}.takeover-${createHash('sha256').update(stale).digest('hex').slice(0, 16)}`;
    execFileSync('mkfifo', [takeover]);
    const r = await runCli(['gc', root, '--apply'], { timeoutMs: TIMEOUT_MS });
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stderr.includes(`"${takeover}": it is a FIFO`), r.stderr);
    assert.match(r.stderr, /\[LOCKED\]/);
    const verify = await runCli(['verify', root], { timeoutMs: TIMEOUT_MS });
    assert.ok((verify.stdout + verify.stderr).includes(`take-over lock "${takeover}" is a FIFO`), verify.stdout + verify.stderr);
  });
});

test('no hang: to-dir over an export whose version, record or manifest file is a FIFO', async () => {
  const t = await tempDir();
  try {
    const list = join(t.dir, 'images.list');
    await writeFile(list, 'team/app:v1\n');
    const out = join(t.dir, 'out');
    const first = await runCli(['to-dir', list, FIXTURE_ROOT, out], { timeoutMs: TIMEOUT_MS });
    assert.equal(first.code, 0, first.stderr);
    const record = join(out, 'digests.txt');
    const recordText = await readFile(record, 'utf8');
    const imageDir = join(out, recordText.trim().split(' ')[1]!);
    assert.ok((await stat(join(imageDir, 'version'))).isFile(), `image directory ${imageDir}`);

    // A FIFO as an image's manifest.json: regfs rewrites that file anyway, so it replaces it.
    await rm(join(imageDir, 'manifest.json'));
    execFileSync('mkfifo', [join(imageDir, 'manifest.json')]);
    // A FIFO as the record: not the record regfs wrote, so no record (nothing is removed by it).
    await rm(record);
    execFileSync('mkfifo', [record]);
    const again = await runCli(['to-dir', list, FIXTURE_ROOT, out], { timeoutMs: TIMEOUT_MS });
    assert.equal(again.code, 0, again.stderr);
    assert.ok((await stat(join(imageDir, 'manifest.json'))).isFile());
    assert.equal(await readFile(record, 'utf8'), recordText);

    // A FIFO as the version file: not a dir: image directory regfs may overwrite.
    await rm(join(imageDir, 'version'));
    execFileSync('mkfifo', [join(imageDir, 'version')]);
    const refused = await runCli(['to-dir', list, FIXTURE_ROOT, out], { timeoutMs: TIMEOUT_MS });
    assert.equal(refused.code, 1, refused.stderr);
    assert.ok(refused.stderr.includes(`"${imageDir}" is not empty and its version file is a FIFO`), refused.stderr);
    assert.match(refused.stderr, /\[NOT_DIR_TRANSPORT\]/);
  } finally {
    await t.cleanup();
  }
});

test('no hang: verify reports take-over leftovers of dead runs as STALE_LOCK; the next writer removes them', async () => {
  await withStorage(async (root, v2) => {
    const lock = join(v2, LOCK_FILE);
    const killed = deadPid();
    const takeover = `${lock}.takeover-${'0'.repeat(16)}`;
    await writeFile(takeover, JSON.stringify({ pid: killed, host: hostname(), command: 'gc', started: '2026-01-01T00:00:01Z' }));
    const temp = `${takeover}.${killed}.0a1b2c.regfs-tmp`;
    await writeFile(temp, 'x');
    const verify = await runCli(['verify', root], { timeoutMs: TIMEOUT_MS });
    const text = verify.stdout + verify.stderr;
    assert.ok(text.includes(`"${takeover}" was left beside the lock`), text);
    assert.ok(text.includes(`"${temp}" was left beside the lock`), text);
    assert.match(text, /STALE_LOCK/);
    const gc = await runCli(['gc', root, '--apply'], { timeoutMs: TIMEOUT_MS });
    assert.equal(gc.code, 0, gc.stderr);
    await assert.rejects(stat(takeover), { code: 'ENOENT' });
    await assert.rejects(stat(temp), { code: 'ENOENT' });
    const after = await runCli(['verify', root], { timeoutMs: TIMEOUT_MS });
    assert.doesNotMatch(after.stdout + after.stderr, /STALE_LOCK/);
  });
});

test('no hang: a FIFO among the *.list files of a list directory is LIST_UNREADABLE naming it', async () => {
  const t = await tempDir();
  try {
    const lists = join(t.dir, 'lists');
    await mkdir(lists);
    await writeFile(join(lists, 'a.list'), 'team/app:v1\n');
    execFileSync('mkfifo', [join(lists, 'b.list')]);
    const r = await runCli(['extract', lists, FIXTURE_ROOT, join(t.dir, 'out')], { timeoutMs: TIMEOUT_MS });
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stderr.includes(`"${join(lists, 'b.list')}": it is a FIFO, not a regular file`), r.stderr);
    assert.match(r.stderr, /\[LIST_UNREADABLE\]/);
  } finally {
    await t.cleanup();
  }
});

test('no hang: a list that is no image list (/dev/zero as LIST, a megabyte line on standard input) is LIST_UNREADABLE at once, not read on', async () => {
  const t = await tempDir();
  try {
    const out = join(t.dir, 'out');
    const started = Date.now();
    const device = await runCli(['extract', '/dev/zero', FIXTURE_ROOT, out], { timeoutMs: TIMEOUT_MS });
    assert.equal(device.code, 1, device.stderr);
    assert.match(device.stderr, /"\/dev\/zero": the line from byte 0 is longer than \d+ bytes.*\[LIST_UNREADABLE\]/);
    assert.ok(Date.now() - started < 10_000, 'refused at once, not after reading a gigabyte');
    const piped = await runCli(['bundle', '-', FIXTURE_ROOT, join(t.dir, 'b.tar')], { stdin: `team/app:v1\n${'x'.repeat(3 << 20)}`, timeoutMs: TIMEOUT_MS });
    assert.equal(piped.code, 1, piped.stderr);
    assert.match(piped.stderr, /the line from byte 12 is longer than \d+ bytes.*\[LIST_UNREADABLE\]/);
    await assert.rejects(stat(out));
    await assert.rejects(stat(join(t.dir, 'b.tar')));
  } finally {
    await t.cleanup();
  }
});
