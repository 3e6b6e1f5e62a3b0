import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDigest, isDigest, digestOf } from '../src/digest.js';
import { parseRepoName, parseTag, parseImageRef, formatImageRef } from '../src/reference.js';
import { isRegfsError } from '../src/errors.js';

const hex = 'a'.repeat(64);

test('digest: valid forms', () => {
  assert.equal(parseDigest(`sha256:${hex}`), `sha256:${hex}`);
  assert.equal(parseDigest(`sha512:${'0'.repeat(128)}`), `sha512:${'0'.repeat(128)}`);
  assert.equal(digestOf(Buffer.from('{}')), 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
});

test('digest: invalid forms are DIGEST_INVALID, never trimmed', () => {
  for (const bad of [
    '',
    hex,
    `sha256:${hex}\n`,
    ` sha256:${hex}`,
    `sha256:${'A'.repeat(64)}`,
    `sha256:${'a'.repeat(63)}`,
    `sha256:${'a'.repeat(65)}`,
    `md5:${'a'.repeat(32)}`,
    `sha256:../../${'a'.repeat(58)}`,
    `sha512:${hex}`,
  ]) {
    assert.throws(() => parseDigest(bad), (e) => isRegfsError(e, 'DIGEST_INVALID'), JSON.stringify(bad));
    assert.equal(isDigest(bad), false);
  }
});

test('names: the distribution grammar', () => {
  // A first component with '.' is a path component if it fits that grammar (the 2.8 registry serves my_host.example/x).
  for (const ok of ['my_host.example/x', 'a_b.c/d', 'a.b/c', 'a', 'library/alpine', 'a/b/c/d', 'a.b_c__d-e--f', 'team/platform/base/alpine', 'localhost/app', 'host.example.com/app', 'Host.Example.com:5000/app', 'host:5000/app']) {
    assert.equal(parseRepoName(ok), ok);
  }
  for (const bad of ['', 'A', 'a/B', '../a', 'a/../b', '/a', 'a/', 'a//b', '-a', 'a-', 'a..b', 'a___b', '.', 'a/.b', 'x'.repeat(256), 'a b', 'a\\b']) {
    assert.throws(() => parseRepoName(bad), (e) => isRegfsError(e, 'NAME_INVALID'), JSON.stringify(bad));
  }
  assert.equal(parseRepoName('x'.repeat(255)), 'x'.repeat(255));
});

test('names: a first component with upper case is a domain, which 2.8 stores and serves (Team/app)', () => {
  for (const ok of ['Team/app', 'Team/app/worker', 'My-Host/a', 'A1/x', 'TEAM.Example/x']) assert.equal(parseRepoName(ok), ok);
  for (const bad of ['Team', 'team/App', 'Team/App', 'Te_am/x', '-Team/x', 'Team-/x', 'Team:x/y']) {
    assert.throws(() => parseRepoName(bad), (e) => isRegfsError(e, 'NAME_INVALID'), JSON.stringify(bad));
  }
});

test('tags: [\\w][\\w.-]{0,127}', () => {
  for (const ok of ['latest', 'v1.2.3', 'A_b-c.', '_x', '1', 'x'.repeat(128), `sha256-${hex}.sig`]) assert.equal(parseTag(ok), ok);
  for (const bad of ['', '.a', '-a', 'a/b', 'a:b', 'x'.repeat(129), 'a b', '..']) {
    assert.throws(() => parseTag(bad), (e) => isRegfsError(e, 'TAG_INVALID'), JSON.stringify(bad));
  }
});

test('references: every form of a list line', () => {
  const d = `sha256:${hex}`;
  assert.deepEqual(parseImageRef('a/b'), { repo: 'a/b', tag: undefined, digest: undefined });
  assert.deepEqual(parseImageRef('a/b:t'), { repo: 'a/b', tag: 't', digest: undefined });
  assert.deepEqual(parseImageRef(`a/b@${d}`), { repo: 'a/b', tag: undefined, digest: d });
  assert.deepEqual(parseImageRef(`a/b:t@${d}`), { repo: 'a/b', tag: 't', digest: d });
  assert.deepEqual(parseImageRef('host:5000/a:t'), { repo: 'host:5000/a', tag: 't', digest: undefined });
  assert.deepEqual(parseImageRef('host:5000/a'), { repo: 'host:5000/a', tag: undefined, digest: undefined });
  assert.deepEqual(parseImageRef('host:5000/a:t', { stripRegistry: true }), { repo: 'a', tag: 't', digest: undefined });
  assert.deepEqual(parseImageRef('localhost/a/b', { stripRegistry: true }), { repo: 'a/b', tag: undefined, digest: undefined });
  assert.deepEqual(parseImageRef('library/a', { stripRegistry: true }), { repo: 'library/a', tag: undefined, digest: undefined });
  assert.equal(formatImageRef(parseImageRef(`a/b:t@${d}`)), `a/b:t@${d}`);
  assert.throws(() => parseImageRef('a@sha256:zz'), (e) => isRegfsError(e, 'DIGEST_INVALID'));
  assert.throws(() => parseImageRef('a:t:u'), (e) => isRegfsError(e, 'NAME_INVALID'));
  assert.throws(() => parseImageRef('a:'), (e) => isRegfsError(e, 'TAG_INVALID'));
});
