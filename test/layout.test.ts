import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as layout from '../src/registry/layout.js';
import { parseDigest } from '../src/digest.js';
import { parseRepoName, parseTag } from '../src/reference.js';

const v2 = '/r/docker/registry/v2';
const d = parseDigest(`sha256:${'ab'.repeat(32)}`);
const d512 = parseDigest(`sha512:${'cd'.repeat(64)}`);
const name = parseRepoName('foo/bar');
const tag = parseTag('thetag');
const hex = 'ab'.repeat(32);

test('layout: every path of paths.go, literally', () => {
  const cases: Array<[string, string]> = [
    [layout.storageRoot('/r'), '/r/docker/registry/v2'],
    [layout.blobDir(v2, d), `${v2}/blobs/sha256/ab/${hex}`],
    [layout.blobDataPath(v2, d), `${v2}/blobs/sha256/ab/${hex}/data`],
    [layout.blobDataPath(v2, d512), `${v2}/blobs/sha512/cd/${'cd'.repeat(64)}/data`],
    [layout.repoDir(v2, name), `${v2}/repositories/foo/bar`],
    [layout.layerLinkPath(v2, name, d), `${v2}/repositories/foo/bar/_layers/sha256/${hex}/link`],
    [layout.revisionLinkPath(v2, name, d), `${v2}/repositories/foo/bar/_manifests/revisions/sha256/${hex}/link`],
    [layout.tagsDir(v2, name), `${v2}/repositories/foo/bar/_manifests/tags`],
    [layout.tagCurrentLinkPath(v2, name, tag), `${v2}/repositories/foo/bar/_manifests/tags/thetag/current/link`],
    [layout.tagIndexEntryLinkPath(v2, name, tag, d), `${v2}/repositories/foo/bar/_manifests/tags/thetag/index/sha256/${hex}/link`],
    [layout.uploadsDir(v2, name), `${v2}/repositories/foo/bar/_uploads`],
  ];
  for (const [got, want] of cases) assert.equal(got, want);
});

test('layout: a nested repository lives inside its parent\'s directory', () => {
  assert.equal(layout.repoDir(v2, parseRepoName('a/b')), `${layout.repoDir(v2, parseRepoName('a'))}/b`);
});

test('layout: a registry host stays part of the directory path', () => {
  assert.equal(
    layout.repoDir(v2, parseRepoName('registry.example.com:5000/busybox')),
    `${v2}/repositories/registry.example.com:5000/busybox`,
  );
});
