import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseImageList, readImageList } from '../src/image-list.js';
import { formatImageRef, type Tag } from '../src/reference.js';
import type { Digest } from '../src/digest.js';
import type { RegistryReader } from '../src/registry/read.js';
import { resolveImages } from '../src/ops/resolve.js';
import { isRegfsError } from '../src/errors.js';

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
    listTags: () => tags,
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
