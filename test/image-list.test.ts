import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { fnv1a, openImageList, parseImageList, readImageList } from '../src/image-list.js';
import { extract } from '../src/ops/extract.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { formatImageRef, type Tag } from '../src/reference.js';
import type { Digest } from '../src/digest.js';
import type { RegistryReader } from '../src/registry/read.js';
import { resolveImages } from '../src/ops/resolve.js';
import { isRegfsError, Problems, type RegfsError } from '../src/errors.js';

const d = `sha256:${'b'.repeat(64)}`;

test('list: comments, blanks, CRLF, white space, every form', () => {
  const text = `# images\r\n\r\n  a/b:t  \r\nc # trailing comment\n\tx@${d}\ny:1@${d}\n`;
  const { entries, problems } = parseImageList(text, 'l.list');
  assert.deepEqual(problems, []);
  assert.deepEqual(entries.map((e) => formatImageRef(e.ref)), ['a/b:t', 'c', `x@${d}`, `y:1@${d}`]);
  assert.deepEqual(entries.map((e) => e.at.line), [3, 4, 5, 6]);
});

test('list: every bad line is reported with file and line, the good ones kept', () => {
  const { entries, problems } = parseImageList('ok:1\nBad/Name:1\na b\nx:\nz@sha256:123\nok:2\n', 'imgs.list');
  assert.deepEqual(entries.map((e) => formatImageRef(e.ref)), ['ok:1', 'ok:2']);
  assert.deepEqual(problems.map((p) => [p.code, p.at?.line]), [
    ['NAME_INVALID', 2],
    ['LIST_SYNTAX', 3],
    ['TAG_INVALID', 4],
    ['DIGEST_INVALID', 5],
  ]);
  assert.match(problems[0]!.message, /^imgs\.list:2: /);
});

test('list: a directory of *.list files, duplicates merged, stdin', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'regfs-list-'));
  try {
    await writeFile(join(dir, 'b.list'), 'a:1\nb:1\n');
    await writeFile(join(dir, 'a.list'), 'a:1\n');
    await writeFile(join(dir, 'notes.txt'), 'NOT A LIST');
    const { entries, problems } = await readImageList(dir);
    assert.deepEqual(problems, []);
    assert.deepEqual(entries.map((e) => formatImageRef(e.ref)), ['a:1', 'b:1']);
    assert.equal(entries[0]!.at.file, join(dir, 'a.list'));
    const fromStdin = await readImageList('-', { stdin: async () => 'q:1\nq:1\n' });
    assert.deepEqual(fromStdin.entries.map((e) => [formatImageRef(e.ref), e.at.file]), [['q:1', '<stdin>']]);
    await mkdir(join(dir, 'empty'));
    await assert.rejects(readImageList(join(dir, 'empty')), (e) => isRegfsError(e, 'LIST_UNREADABLE'));
    await assert.rejects(readImageList(join(dir, 'missing.list')), (e) => isRegfsError(e, 'LIST_UNREADABLE'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('list: --strip-registry drops the host only', () => {
  const { entries } = parseImageList('mirror.example.com:5000/library/busybox:1\nlibrary/busybox:2\n', 'l', { stripRegistry: true });
  assert.deepEqual(entries.map((e) => formatImageRef(e.ref)), ['library/busybox:1', 'library/busybox:2']);
});

test('list: an over-long line or a line with control characters is quoted bounded and escaped', () => {
  const long = 'a'.repeat(1_000_000);
  const { problems } = parseImageList(`${long}:v1\nx y\x1b[2J\n${'b'.repeat(300)}\n`, 'l.list');
  assert.deepEqual(problems.map((p) => p.code), ['NAME_INVALID', 'LIST_SYNTAX', 'NAME_INVALID']);
  for (const p of problems) {
    assert.ok(p.message.length < 500, `${p.message.length} characters`);
    assert.doesNotMatch(p.message, /[\x00-\x1f]/);
  }
  assert.match(problems[0]!.message, /^l\.list:1: invalid repository name "a{200}…" \(1,000,000 characters\)/);
  assert.match(problems[1]!.message, /found "x y\\u001b\[2J"$/);
});

test('resolve: a repository line of 200,000 tags expands without overflowing the stack', async () => {
  const n = 200_000;
  const tags = Array.from({ length: n }, (_, i) => `t${i}` as Tag);
  const digest = `sha256:${'c'.repeat(64)}` as Digest;
  // A reader over a repository whose tags all point at a manifest it does not link.
  const reader = {
    v2: '/nonexistent/docker/registry/v2',
    hasRepository: () => true,
    repoPath: (r: string) => `/nonexistent/docker/registry/v2/repositories/${r}`,
    listTagNames: () => tags,
    tagDigest: () => digest,
    manifestLink: () => undefined,
  } as unknown as RegistryReader;
  const { entries } = parseImageList('many/tags\n', 'l.list');
  const r = await resolveImages(reader, entries);
  assert.equal(r.images.length, 0);
  assert.equal(r.problems.length, n);
  assert.ok(r.problems.every((p) => p.code === 'MANIFEST_UNKNOWN'));
  assert.match(r.problems[n - 1]!.message, /^l\.list:1: many\/tags:t199999@sha256:c{64}: manifest/);
});

test('list: references whose hashes collide are told apart, each kept once', async () => {
  // Find two different references with the same 32-bit hash: the table must compare them exactly.
  const byHash = new Map<number, string>();
  let pair: [string, string] | undefined;
  for (let i = 0; pair === undefined; i++) {
    const ref = `team/app${i}:v1`;
    const other = byHash.get(fnv1a(ref));
    if (other !== undefined) pair = [other, ref];
    else byHash.set(fnv1a(ref), ref);
  }
  const [a, b] = pair;
  assert.notEqual(a, b);
  assert.equal(fnv1a(a), fnv1a(b));
  const list = await openImageList('-', { stdin: async () => `${a}\n${b}\n${a}\n  ${b} # again\nother:1\n${b}\n` });
  const problems = new Problems();
  const entries = [...list.entries(problems)];
  assert.deepEqual(entries.map((e) => [formatImageRef(e.ref), e.at.line]), [[a, 1], [b, 2], ['other:1', 5]]);
  assert.equal(problems.count, 0);
});

test('list: parsed as it is taken, bad lines reported in order as they are reached', async () => {
  const lines = Array.from({ length: 3000 }, (_, i) => (i % 3 === 2 ? `bad name ${i}` : `ok/app${i}:1`));
  const list = await openImageList('-', { stdin: async () => `${lines.join('\n')}\n` });
  const seen: number[] = [];
  const problems = new Problems((p) => seen.push(p.at!.line));
  const it = list.entries(problems)[Symbol.iterator]();
  assert.equal(formatImageRef(it.next().value!.ref), 'ok/app0:1');
  assert.deepEqual(seen, [], 'nothing beyond the first line read yet');
  let n = 1;
  for (let r = it.next(); r.done !== true; r = it.next()) n++;
  assert.equal(n, 2000);
  assert.equal(problems.count, 1000);
  assert.deepEqual(problems.list, [], 'a sink keeps nothing');
  assert.deepEqual(seen.slice(0, 3), [3, 6, 9]);
});

test('extract: with onProblem every problem is handed over as found and none is kept', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'regfs-list-'));
  try {
    const list = join(dir, 'l.list');
    await writeFile(list, Array.from({ length: 5000 }, (_, i) => `nosuch/app${i}:v1`).join('\n'));
    const codes = new Map<string, number>();
    const lines: number[] = [];
    const onProblem = (p: RegfsError): void => {
      codes.set(p.code, (codes.get(p.code) ?? 0) + 1);
      lines.push(p.at!.line);
    };
    await assert.rejects(extract({ list, source: FIXTURE_ROOT, output: join(dir, 'out'), onProblem }), (e: unknown) => {
      assert.ok(isRegfsError(e, 'INCOMPLETE'));
      assert.equal(e.problems.length, 0);
      assert.match(e.message, /^5000 problems found/);
      return true;
    });
    assert.deepEqual([...codes], [['NAME_UNKNOWN', 5000]]);
    assert.deepEqual(lines, Array.from({ length: 5000 }, (_, i) => i + 1));
    assert.equal(existsSync(join(dir, 'out')), false, 'nothing written');
    const kept = await extract({ list, source: FIXTURE_ROOT, output: join(dir, 'out'), keepGoing: true, dryRun: true });
    assert.equal(kept.problemCount, 5000);
    assert.equal(kept.problems.length, 5000, 'without a sink they are returned');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
