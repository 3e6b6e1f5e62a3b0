/**
 * Manifest levels (the order index revision links are written in: children first): right for
 * shared and repeated children, and one pass over each child list however often a child is
 * named (an index naming one nested index thousands of times once cost a pass per mention).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manifestLevels } from '../src/ops/common.js';
import type { Digest } from '../src/digest.js';
import type { Manifest } from '../src/manifest.js';

function m(name: string, children: string[]): Manifest {
  return { digest: name as Digest, manifests: children.map((c) => ({ digest: c as Digest })) } as unknown as Manifest;
}

test('levels: a child shared by an index and by a sibling index is levelled before both', () => {
  const levels = manifestLevels([m('A', ['B', 'C']), m('B', ['D']), m('C', ['B']), m('D', [])]);
  assert.deepEqual(Object.fromEntries(levels), { D: 0, B: 1, C: 2, A: 3 });
});

test('levels: each child entry is read a bounded number of times, however many times a child is named', () => {
  const k = 2_000;
  const leaves = Array.from({ length: k }, (_, i) => m(`leaf${i}`, []));
  // Count reads of X's child entries: the old walk read the whole list once per mention of X.
  let reads = 0;
  const list = new Proxy(
    leaves.map((l) => ({ digest: l.digest })),
    {
      get(target, key, receiver) {
        if (typeof key === 'string' && /^[0-9]+$/.test(key)) reads++;
        return Reflect.get(target, key, receiver) as unknown;
      },
    },
  );
  const x = { digest: 'X', manifests: list } as unknown as Manifest;
  const top = m('TOP', Array.from({ length: k }, () => 'X'));
  const levels = manifestLevels([top, x, ...leaves]);
  assert.equal(levels.get('TOP' as Digest), 2);
  assert.equal(levels.get('X' as Digest), 1);
  assert.ok(reads <= 4 * k, `X's ${k} child entries were read ${reads} times`);
});
