/**
 * `--json`: every command prints exactly one JSON document on stdout, on success and on
 * failure alike, and every document matches the command's JSON Schema (schemas/), checked
 * with ajv against real runs over the fixture the real registry wrote.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkJsonDocument, schemaCommands } from '../scripts/lib/json-schemas.js';
import { runCli } from './helpers/cli.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { copyTree, withTempDir, writeListFile } from './helpers/tree.js';
import { makeBundle } from './helpers/bundle.js';

const V2 = 'docker/registry/v2';
// An image, an index and an OCI image, and an artifact (a cosign signature).
const REFS = ['team/app:v1', 'multiarch/tool:1.0', 'library/busybox:1.36', 'team/app:sha256-6d1ddbb23e53cfd97b606fd78932a91c65f116c02fa690a4db6750d4793e35ac.sig'];

/** Run regfs with --json; its stdout must be one document of the command's schema with the process's exit code. */
async function json(args: string[], want: number): Promise<Record<string, unknown>> {
  const r = await runCli([...args, '--json']);
  assert.equal(r.code, want, `regfs ${args.join(' ')}: ${r.stderr}`);
  const doc = checkJsonDocument(args[0]!, r.stdout, r.code);
  assert.equal(doc['schemaVersion'], 1);
  assert.equal(doc['command'], args[0]);
  assert.equal(doc['ok'], want === 0);
  return doc;
}

test('json: every command with --json has a schema', async () => {
  const help = await runCli(['--help']);
  const commands = [...help.stdout.matchAll(/^ {2}regfs ([a-z-]+)/gm)].map((m) => m[1]!);
  assert.ok(commands.length >= 8, help.stdout);
  for (const c of commands) {
    const h = await runCli([c, '--help']);
    if (h.stdout.includes('--json')) assert.ok(schemaCommands().includes(c), `${c} has --json but no schemas/${c}.schema.json`);
  }
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { files: string[] };
  assert.ok(pkg.files.includes('schemas'), 'the schemas ship in the package');
});

test('json: the writing commands, as a dry run, for real, with --keep-going, and failing', async () => {
  await withTempDir(async (dir) => {
    const list = await writeListFile(dir, REFS);
    const out = join(dir, 'out');
    const dry = await json(['extract', list, FIXTURE_ROOT, out, '--dry-run'], 0);
    assert.equal(dry['dryRun'], true);
    assert.equal(dry['stats'], undefined);
    const real = await json(['extract', list, FIXTURE_ROOT, out], 0);
    assert.equal((real['images'] as unknown[]).length, 4);
    assert.deepEqual(real['problems'], []);

    const mixed = await writeListFile(dir, [...REFS, 'nosuch/app:1', 'team/app:nosuch', 'Bad Line']);
    const partial = await json(['extract', mixed, FIXTURE_ROOT, join(dir, 'out2'), '--keep-going'], 3);
    assert.deepEqual(
      (partial['problems'] as Array<{ code: string; line: number }>).map((p) => [p.code, p.line]),
      [
        ['NAME_UNKNOWN', REFS.length + 1],
        ['TAG_UNKNOWN', REFS.length + 2],
        ['LIST_SYNTAX', REFS.length + 3],
      ],
    );
    assert.equal(partial['problemCount'], 3);

    const failed = await json(['extract', mixed, FIXTURE_ROOT, join(dir, 'out3')], 1);
    assert.equal((failed['error'] as { code: string }).code, 'INCOMPLETE');
    assert.equal((failed['problems'] as unknown[]).length, 3);

    const exported = join(dir, 'exported');
    await json(['to-dir', list, FIXTURE_ROOT, exported, '--dry-run'], 0);
    await json(['to-dir', list, FIXTURE_ROOT, exported], 0);
    await json(['to-dir', mixed, FIXTURE_ROOT, join(dir, 'exported2'), '--keep-going'], 3);
    const toDirFailed = await json(['to-dir', mixed, FIXTURE_ROOT, join(dir, 'exported3')], 1);
    assert.equal((toDirFailed['error'] as { code: string }).code, 'INCOMPLETE');

    await json(['from-dir', exported, join(dir, 'seeded'), '--dry-run'], 0);
    const seeded = await json(['from-dir', exported, join(dir, 'seeded')], 0);
    assert.equal(typeof seeded['bytesVerified'], 'number');
    // A damaged export: one image's manifest gone.
    await unlink(join(exported, 'team/app:v1', 'manifest.json'));
    await json(['from-dir', exported, join(dir, 'seeded2'), '--keep-going'], 3);
    await json(['from-dir', exported, join(dir, 'seeded3')], 1);
  });
});

test('json: bundle, as a dry run, for real, against an inventory, with --keep-going, and failing', async () => {
  await withTempDir(async (dir) => {
    const list = await writeListFile(dir, REFS);
    const out = join(dir, 'b.tar');
    const dry = await json(['bundle', list, FIXTURE_ROOT, out, '--dry-run'], 0);
    assert.equal(dry['stats'], undefined);
    assert.equal(dry['inventory'], null);
    const real = await json(['bundle', list, FIXTURE_ROOT, out, '--with-referrers'], 0);
    assert.equal((real['images'] as unknown[]).length, 4);
    const inv = join(dir, 'have.inv');
    await writeFile(inv, 'regfs-inventory 1\n');
    const delta = await json(['bundle', list, FIXTURE_ROOT, out, '--have', inv, '--split', '1M'], 0);
    assert.match(delta['inventory'] as string, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual((delta['plan'] as { volumes: string[] }).volumes, [`${out}.000`]);
    const mixed = await writeListFile(dir, [...REFS, 'nosuch/app:1']);
    await json(['bundle', mixed, FIXTURE_ROOT, out, '--keep-going'], 3);
    assert.equal(((await json(['bundle', mixed, FIXTURE_ROOT, out], 1))['error'] as { code: string }).code, 'INCOMPLETE');
    assert.equal(((await json(['bundle', list, FIXTURE_ROOT, '-'], 2))['error'] as { code: string }).code, 'USAGE');
  });
});

test('json: apply of a bundle, as a dry run, for real, and refused', async () => {
  await withTempDir(async (dir) => {
    const full = await makeBundle({ list: REFS, source: FIXTURE_ROOT, tar: join(dir, 'full.tar') });
    const out = join(dir, 'applied');
    const dry = await json(['apply', full.tar, out, '--dry-run'], 0);
    assert.equal(dry['dryRun'], true);
    const real = await json(['apply', full.tar, out], 0);
    assert.deepEqual(real['bundle'], { inventory: null, carried: full.carried, assumed: 0 });
    // A delta against `out`, applied to an empty root; a file that is no tar.
    const delta = await makeBundle({ list: REFS, source: FIXTURE_ROOT, tar: join(dir, 'delta.tar'), have: out });
    assert.equal(((await json(['apply', delta.tar, join(dir, 'other')], 1))['error'] as { code: string }).code, 'BUNDLE_BASE_MISSING');
    await writeFile(join(dir, 'junk.tar'), 'not a tar');
    assert.equal(((await json(['apply', join(dir, 'junk.tar'), out], 1))['error'] as { code: string }).code, 'ARCHIVE_INVALID');
  });
});

test('json: the reading commands, clean and damaged, and their failures', async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, 'reg');
    await copyTree(FIXTURE_ROOT, root);
    const ls = await json(['ls', root], 0);
    assert.ok((ls['repositories'] as unknown[]).length > 3);
    for (const ref of ['team/app:v1', 'multiarch/tool:1.0', 'library/busybox:1.36']) await json(['inspect', root, ref], 0);
    assert.deepEqual((await json(['verify', root, '--fast'], 0))['findings'], []);
    await json(['gc', root], 0);
    await json(['rm', root, 'team/app:v1', '--dry-run'], 0);
    const inv = await json(['inventory', root, '-o', join(dir, 'have.inv')], 0);
    assert.equal(inv['format'], 'registry');

    // Damage: a tag whose link names nothing; another's manifest no longer JSON.
    const tagLink = join(root, V2, 'repositories/team/app/_manifests/tags/v1/current/link');
    await writeFile(tagLink, 'not a digest');
    const busybox = (ls['repositories'] as Array<{ name: string; tags: Array<{ tag: string; digest: string }> }>).find((r) => r.name === 'library/busybox')!;
    const hex = busybox.tags.find((t) => t.tag === '1.36')!.digest.slice('sha256:'.length);
    await writeFile(join(root, V2, 'blobs/sha256', hex.slice(0, 2), hex, 'data'), 'not a manifest');
    const lsBroken = await json(['ls', root, 'team/app'], 0);
    const tags = (lsBroken['repositories'] as Array<{ tags: Array<{ tag: string; error?: { code: string } }> }>)[0]!.tags;
    assert.ok(tags.some((t) => t.tag === 'v1' && t.error !== undefined));
    const damaged = await json(['verify', root, '--fast'], 4);
    assert.ok((damaged['findings'] as unknown[]).length > 0);
    const gcDry = await json(['gc', root], 0);
    assert.ok((gcDry['problems'] as unknown[]).length > 0, 'what gc could not read');
    const unsafe = await json(['gc', root, '--apply'], 1);
    assert.equal((unsafe['error'] as { code: string }).code, 'UNSAFE');
    assert.ok((unsafe['problems'] as unknown[]).length > 0);

    // Failures: not registry storage, an unknown image, a usage error.
    const empty = join(dir, 'empty');
    await mkdir(empty);
    for (const args of [['ls', empty], ['inspect', empty, 'a:1'], ['verify', empty], ['gc', empty], ['rm', empty, 'a:1'], ['inventory', empty, '-o', join(dir, 'x.inv')]]) {
      const doc = await json(args, 1);
      assert.equal((doc['error'] as { code: string }).code, 'NOT_REGISTRY');
    }
    assert.equal(((await json(['inspect', root, 'nosuch/app:1'], 1))['error'] as { code: string }).code, 'NAME_UNKNOWN');
    assert.equal(((await json(['inspect', root, 'team/app'], 2))['error'] as { code: string }).code, 'USAGE');
    await rm(root, { recursive: true, force: true });
  });
});

test('json: a command line that does not parse, with --json, still gets one document', async () => {
  const r = await runCli(['extract', 'only-one-arg', '--json']);
  assert.equal(r.code, 2);
  const doc = checkJsonDocument('extract', r.stdout, 2);
  assert.equal((doc['error'] as { code: string }).code, 'USAGE');
  const unknown = await runCli(['ls', '/nonexistent', '--no-such-option', '--json']);
  assert.equal(unknown.code, 2);
  assert.equal((checkJsonDocument('ls', unknown.stdout, 2)['error'] as { code: string }).code, 'USAGE');
});
