/**
 * The fixture machinery, checked against the real tools: the pushed fixture registry is
 * reproducible byte for byte, the pure-TypeScript storage writer writes what the pushes left,
 * and a real docker-registry serves the pure writer's output.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { test, type TestContext } from 'node:test';
import { digestHex, parseDigest } from '../src/digest.js';
import { storageRoot } from '../src/registry/layout.js';
import { FIXTURE_PUSHES, type FixtureManifest } from '../scripts/lib/fixture-spec.js';
import type { Manifest } from '../scripts/lib/images.js';
import { registryGarbageCollectDryRun, startRegistry } from '../scripts/lib/registry-server.js';
import { skopeoCopy, skopeoManifestDigestOf } from '../scripts/lib/skopeo.js';
import { writeDirImage } from '../scripts/lib/write-dir.js';
import { writeStorage } from '../scripts/lib/write-storage.js';
import { buildFixture, DEFAULT_FIXTURE_ROOT } from '../scripts/make-fixtures.js';

const committed = JSON.parse(await readFile(`${DEFAULT_FIXTURE_ROOT}.json`, 'utf8')) as FixtureManifest;

test('buildFixture reproduces the committed fixtures/registry byte for byte', async (t) => {
  const tmp = await tempDir(t);
  const manifest = await buildFixture(join(tmp, 'registry'));
  assert.deepEqual(manifest, committed);
  assertSameTree(await readTree(join(tmp, 'registry')), await readTree(DEFAULT_FIXTURE_ROOT));
});

test('writeStorage writes what the pushes left, and a read-only registry serves every ref from it', async (t) => {
  const tmp = await tempDir(t);
  const root = join(tmp, 'registry');
  const pushes = FIXTURE_PUSHES.filter((p) => p.schema1 !== true);
  await writeStorage(root, pushes);

  // The registry converts schema1 itself, so leave out its repository and the blobs only it needs.
  const schema1Repos = FIXTURE_PUSHES.filter((p) => p.schema1 === true).map((p) => p.repo);
  const needed = (kind: 'schema1' | 'other'): Set<string> =>
    new Set(committed.refs.filter((r) => (r.kind === 'schema1') === (kind === 'schema1')).flatMap((r) => [r.digest, ...r.blobs]));
  const other = needed('other');
  const schema1Only = [...needed('schema1')].filter((d) => !other.has(d)).map((d) => digestHex(parseDigest(d)));
  const expected = new Map(
    [...(await readTree(DEFAULT_FIXTURE_ROOT))].filter(
      ([path]) =>
        !schema1Repos.some((repo) => path.startsWith(`repositories/${repo}/_`)) &&
        !schema1Only.some((hex) => path === `blobs/sha256/${hex.slice(0, 2)}/${hex}/data`),
    ),
  );
  assertSameTree(await readTree(root), expected);

  const registry = await startRegistry({ root, readOnly: true });
  try {
    for (const [i, push] of pushes.entries()) {
      const overwritten = pushes.slice(i + 1).some((p) => p.repo === push.repo && p.tag === push.tag);
      const suffix = overwritten ? `@${push.image.digest}` : `:${push.tag}`;
      const repoUrl = `docker://${registry.host}/${push.repo}`;
      assert.equal(await skopeoManifestDigestOf(`${repoUrl}${suffix}`), push.image.digest, `${push.repo}${suffix}`);
      await assertPullsAsWritten(repoUrl, suffix, push.image, join(tmp, `pull-${i}`));
    }
  } finally {
    await registry.stop();
  }
});

test('registry garbage-collect --dry-run on the fixture: nothing without -m; with -m, the overwritten image', async () => {
  assert.deepEqual((await registryGarbageCollectDryRun(DEFAULT_FIXTURE_ROOT)).blobsEligible, []);
  const gc = await registryGarbageCollectDryRun(DEFAULT_FIXTURE_ROOT, { deleteUntagged: true });
  const old = committed.refs.find((r) => r.overwritten);
  assert.ok(old !== undefined);
  assert.ok(gc.manifestsEligible.includes(old.digest), gc.output);
  const stillUsed = new Set(committed.refs.filter((r) => !r.overwritten).flatMap((r) => r.blobs));
  for (const d of old.blobs.filter((b) => !stillUsed.has(b))) assert.ok(gc.blobsEligible.includes(d), `${d} eligible`);
});

/**
 * `skopeo copy --all docker://… dir:D` must give exactly what writeDirImage writes. skopeo 1.9.3
 * cannot copy an index that nests an index, so such an index is copied alone and each child
 * is checked by digest.
 */
async function assertPullsAsWritten(repoUrl: string, suffix: string, m: Manifest, dir: string): Promise<void> {
  const nested = m.kind === 'index' && m.children.some((c) => c.kind === 'index');
  if (nested) {
    for (const [i, c] of m.children.entries()) await assertPullsAsWritten(repoUrl, `@${c.digest}`, c, `${dir}-${i}`);
  }
  await skopeoCopy(`${repoUrl}${suffix}`, `dir:${dir}`, nested ? { indexOnly: true } : { all: true });
  const pulled = await readFiles(dir);
  if (nested) {
    assert.deepEqual(pulled.get('manifest.json'), m.bytes);
    return;
  }
  await writeDirImage(`${dir}.expected`, m);
  assertSameTree(pulled, await readFiles(`${dir}.expected`));
}

/** Every file under `<root>/docker/registry/v2` except `_uploads`, by path relative to it. */
async function readTree(registryRoot: string): Promise<Map<string, Buffer>> {
  const files = await readFiles(storageRoot(registryRoot));
  return new Map([...files].filter(([path]) => !path.split('/').includes('_uploads')));
}

/** Every regular file under `dir`, by `/`-separated relative path, sorted. */
async function readFiles(dir: string): Promise<Map<string, Buffer>> {
  const entries = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  const paths = entries.map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/')).sort();
  return new Map(await Promise.all(paths.map(async (p): Promise<[string, Buffer]> => [p, await readFile(join(dir, p))])));
}

function assertSameTree(actual: Map<string, Buffer>, expected: Map<string, Buffer>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [path, bytes] of expected) assert.ok(actual.get(path)?.equals(bytes), `${path} differs`);
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'regfs-fixtures-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
