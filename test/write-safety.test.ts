/**
 * Writes stay inside the output and never touch what regfs did not write: no symbolic link
 * in the output is followed for writing, an output that cannot be made fails at once, to-dir
 * removes only image directories its own record names, from-dir refuses ambiguous input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, lstat, mkdir, open, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { extract } from '../src/ops/extract.js';
import { isTempName } from '../src/fs/atomic.js';
import { fromDir } from '../src/ops/from-dir.js';
import { DIGEST_FILE, toDir } from '../src/ops/to-dir.js';
import { DIR_VERSION } from '../src/dir/layout.js';
import { isRegfsError } from '../src/errors.js';
import { MANIFEST_MAX_BYTES } from '../src/registry/read.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { runCli } from './helpers/cli.js';
import { copyTree, listFiles, snapshotTree, withTempDir, writeListFile } from './helpers/tree.js';
import { deadPid, MY_TAG } from './helpers/owner.js';

test('from-dir: two directories naming one repo:tag with different manifests are an error naming both; nothing is written', async () => {
  await withTempDir(async (dir) => {
    const exp = join(dir, 'exp');
    await toDir({ list: await writeListFile(dir, ['team/app:v1', 'library/busybox:1.36']), source: FIXTURE_ROOT, output: exp });
    // The portable spelling of library/busybox:1.36, holding another image.
    await cp(join(exp, 'team/app:v1'), join(exp, 'library/busybox%3A1.36'), { recursive: true });
    const dest = join(dir, 'dest');
    await assert.rejects(fromDir({ input: exp, output: dest }), (e) => {
      assert.ok(isRegfsError(e, 'INCOMPLETE'));
      assert.equal(e.problems.length, 1);
      assert.equal(e.problems[0]!.code, 'TAG_CONFLICT');
      assert.match(e.problems[0]!.message, /library\/busybox:1\.36 and library\/busybox%3A1\.36|library\/busybox%3A1\.36 and library\/busybox:1\.36/);
      return true;
    });
    await assert.rejects(stat(dest), 'nothing written');
    // --keep-going writes neither of the two, and the rest.
    const kept = await fromDir({ input: exp, output: dest, keepGoing: true });
    assert.deepEqual(kept.images.map((i) => i.ref), ['team/app:v1']);
    assert.deepEqual(kept.problems.map((p) => p.code), ['TAG_CONFLICT']);
    // The same manifest under both spellings is no conflict.
    await rm(join(exp, 'library/busybox%3A1.36'), { recursive: true });
    await cp(join(exp, 'library/busybox:1.36'), join(exp, 'library/busybox%3A1.36'), { recursive: true });
    const same = await fromDir({ input: exp, output: join(dir, 'dest2') });
    assert.equal(same.images.length, 3);
  });
});

test('from-dir: a manifest.json larger than the registry accepts is refused before it is read', async () => {
  await withTempDir(async (dir) => {
    const exp = join(dir, 'exp');
    await toDir({ list: await writeListFile(dir, ['team/app:v1']), source: FIXTURE_ROOT, output: exp });
    // Sparse, and far larger than this process could read into memory.
    const manifest = join(exp, 'team/app:v1', 'manifest.json');
    const f = await open(manifest, 'r+');
    await f.truncate(64 * 2 ** 30);
    await f.close();
    await assert.rejects(fromDir({ input: exp, output: join(dir, 'dest') }), (e) => {
      assert.ok(isRegfsError(e, 'INCOMPLETE'));
      assert.equal(e.problems[0]!.code, 'MANIFEST_INVALID');
      assert.match(e.problems[0]!.message, new RegExp(`larger than the registry's ${MANIFEST_MAX_BYTES}-byte limit`));
      return true;
    });
    assert.ok((await readFile(join(exp, 'team/app:v1', 'version'), 'utf8')).length > 0);
  });
});

const V2 = 'docker/registry/v2';
const BUSYBOX = 'repositories/library/busybox';
const LAYER = '95795ac77aab2d4f3ae09cdba2de2b742e973c12e404b2dcc7229e0ac1cd9a09';
const MANIFEST = '3271c4fec4a89f06c12edeadbb942bb5aba4b9d57b3671bb5a1f6d149778b82c';

/**
 * A directory of an existing output replaced by a symbolic link to the same directory in a
 * copy of the source, from which what the extract would write is removed, so that following
 * the link would write into the copy; or nothing is removed, so that only reading through
 * the link would find what the output needs (it is not the output's own all the same).
 */
const LINKED: Array<{ what: string; link: string; removeInCopy?: string }> = [
  { what: "a link's own directory, content right", link: `${V2}/${BUSYBOX}/_layers/sha256/${LAYER}` },
  { what: 'a tag directory, content right', link: `${V2}/${BUSYBOX}/_manifests/tags/1.36` },
  { what: 'the docker/registry/v2 chain', link: 'docker', removeInCopy: `${V2}/${BUSYBOX}/_manifests/tags/1.36` },
  { what: 'a repository directory', link: `${V2}/${BUSYBOX}`, removeInCopy: `${V2}/${BUSYBOX}/_manifests/tags/1.36` },
  { what: 'a tag directory', link: `${V2}/${BUSYBOX}/_manifests/tags/1.36`, removeInCopy: `${V2}/${BUSYBOX}/_manifests/tags/1.36/current/link` },
  { what: "a tag's current directory", link: `${V2}/${BUSYBOX}/_manifests/tags/1.36/current`, removeInCopy: `${V2}/${BUSYBOX}/_manifests/tags/1.36/current/link` },
  { what: '_layers/sha256', link: `${V2}/${BUSYBOX}/_layers/sha256`, removeInCopy: `${V2}/${BUSYBOX}/_layers/sha256/${LAYER}` },
  { what: 'revisions/sha256', link: `${V2}/${BUSYBOX}/_manifests/revisions/sha256`, removeInCopy: `${V2}/${BUSYBOX}/_manifests/revisions/sha256/${MANIFEST}` },
  { what: 'a blob fan-out directory', link: `${V2}/blobs/sha256/${LAYER.slice(0, 2)}`, removeInCopy: `${V2}/blobs/sha256/${LAYER.slice(0, 2)}/${LAYER}` },
];

test('extract: a symbolic link in the output is never followed for writing', async () => {
  await withTempDir(async (dir) => {
    const copy = join(dir, 'copy');
    await copyTree(FIXTURE_ROOT, copy);
    const list = await writeListFile(dir, ['library/busybox:1.36']);
    for (const [i, c] of LINKED.entries()) {
      const out = join(dir, `out${i}`);
      await extract({ list, source: FIXTURE_ROOT, output: out });
      await rm(join(out, c.link), { recursive: true });
      await symlink(join(copy, c.link), join(out, c.link));
      if (c.removeInCopy !== undefined) await rm(join(copy, c.removeInCopy), { recursive: true });
      const before = await snapshotTree(copy);
      await assert.rejects(extract({ list, source: FIXTURE_ROOT, output: out }), (e) => isRegfsError(e, 'OUTPUT_SYMLINK') && e.message.includes(join(out, c.link)), c.what);
      assert.deepEqual(await snapshotTree(copy), before, `${c.what}: the other tree is untouched`);
      assert.deepEqual((await listFiles(out)).filter((f) => f.split('/').some(isTempName)), [], `${c.what}: no temp file left`);
      if (c.removeInCopy !== undefined) await copyTree(join(FIXTURE_ROOT, c.removeInCopy), join(copy, c.removeInCopy));
    }
    // A link at a file's own place (a tag's current/link, a blob's data) is replaced, never written through.
    const files = join(dir, 'files');
    await extract({ list, source: FIXTURE_ROOT, output: files });
    const placed = [`${V2}/${BUSYBOX}/_manifests/tags/1.36/current/link`, `${V2}/blobs/sha256/${LAYER.slice(0, 2)}/${LAYER}/data`];
    for (const f of placed) {
      await writeFile(join(copy, f), 'not what regfs would write');
      await rm(join(files, f));
      await symlink(join(copy, f), join(files, f));
    }
    const copyBefore = await snapshotTree(copy);
    await extract({ list, source: FIXTURE_ROOT, output: files });
    assert.deepEqual(await snapshotTree(copy), copyBefore);
    for (const f of placed) {
      assert.ok((await lstat(join(files, f))).isFile(), `${f} is a regular file again`);
      assert.deepEqual(await readFile(join(files, f)), await readFile(join(FIXTURE_ROOT, f)));
    }
    // The CLI: exit 1 and the code.
    const out = join(dir, 'out3');
    const r = await runCli(['extract', list, FIXTURE_ROOT, out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /OUTPUT_SYMLINK/);
  });
});

test('to-dir: a symbolic link in the export is never followed for writing', async () => {
  await withTempDir(async (dir) => {
    const other = join(dir, 'other');
    await mkdir(other);
    const out = join(dir, 'out');
    await mkdir(out);
    await symlink(other, join(out, 'team'));
    const before = await snapshotTree(other);
    await assert.rejects(toDir({ list: await writeListFile(dir, ['team/app:v1']), source: FIXTURE_ROOT, output: out }), (e) => isRegfsError(e, 'OUTPUT_SYMLINK'));
    assert.deepEqual(await snapshotTree(other), before);
  });
});

test('an output that cannot be created fails at once with a clear code', async () => {
  await withTempDir(async (dir) => {
    const list = await writeListFile(dir, ['library/busybox:1.36']);
    await symlink(join(dir, 'nowhere'), join(dir, 'dangling'));
    const exp = join(dir, 'exp');
    await toDir({ list, source: FIXTURE_ROOT, output: exp });
    for (const [cmd, args] of [
      ['extract', [list, FIXTURE_ROOT]],
      ['to-dir', [list, FIXTURE_ROOT]],
      ['from-dir', [exp]],
    ] as const) {
      for (const out of ['/proc/regfs-no-such/out', join(dir, 'dangling', 'out'), join(dir, 'a-file'), join(dir, 'a-file', 'out'), join(dir, 'loop', 'out')]) {
        await writeFile(join(dir, 'a-file'), 'notes\n');
        await symlink('loop', join(dir, 'loop')).catch(() => undefined);
        const started = Date.now();
        const r = await runCli([cmd, ...args, out], { timeoutMs: 20_000 });
        assert.equal(r.code, 1, `${cmd} ${out}: ${r.stderr}`);
        assert.match(r.stderr, /OUTPUT_UNWRITABLE/, `${cmd} ${out}`);
        if (out.includes('a-file')) {
          assert.match(r.stderr, new RegExp(`"${join(dir, 'a-file')}" is not a directory`), `${cmd} ${out}: names the file`);
          assert.equal(await readFile(join(dir, 'a-file'), 'utf8'), 'notes\n');
        }
        assert.ok(Date.now() - started < 20_000);
      }
    }
  });
});

test('to-oci, from-oci, apply, bundle and inventory -o: an output below a file, a dangling link or a loop is OUTPUT_UNWRITABLE, as for extract', async () => {
  await withTempDir(async (dir) => {
    const list = await writeListFile(dir, ['library/busybox:1.36']);
    const layout = join(dir, 'layout');
    const bundle = join(dir, 'b.tar');
    for (const args of [['to-oci', list, FIXTURE_ROOT, layout], ['bundle', list, FIXTURE_ROOT, bundle]]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, r.stderr);
    }
    await writeFile(join(dir, 'a-file'), 'notes\n');
    await symlink(join(dir, 'nowhere'), join(dir, 'dangling'));
    await symlink('loop', join(dir, 'loop'));
    for (const [cmd, ...args] of [
      ['to-oci', list, FIXTURE_ROOT],
      ['from-oci', layout],
      ['apply', bundle],
      ['bundle', list, FIXTURE_ROOT],
      ['inventory', FIXTURE_ROOT, '-o'],
    ] as const) {
      for (const out of [join(dir, 'a-file', 'out'), join(dir, 'dangling', 'out'), join(dir, 'loop', 'out')]) {
        const before = await snapshotTree(dir);
        const r = await runCli([cmd, ...args, out], { timeoutMs: 20_000 });
        assert.equal(r.code, 1, `${cmd} ${out}: ${r.stderr}`);
        assert.match(r.stderr, /\[OUTPUT_UNWRITABLE\]/, `${cmd} ${out}`);
        assert.doesNotMatch(r.stderr, /^\s+at /m);
        if (out.includes('a-file')) assert.match(r.stderr, new RegExp(`"${join(dir, 'a-file')}" is not a directory`), `${cmd} ${out}: names the file`);
        assert.deepEqual(await snapshotTree(dir), before, `${cmd} ${out}: nothing written`);
      }
    }
  });
});

test("to-dir: a re-export removes only image directories it exported itself; a foreign directory with a version file stays", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, 'out');
    await toDir({ list: await writeListFile(dir, ['team/app:v1', 'library/busybox:1.36']), source: FIXTURE_ROOT, output: out });
    // Someone's directories: one with another version text, one with the right text but not in the record.
    const foreign = [join(out, 'notes'), join(out, 'team/app:v9')];
    await mkdir(foreign[0]!);
    await writeFile(join(foreign[0]!, 'version'), 'my own version file\n');
    await writeFile(join(foreign[0]!, 'data'), 'precious');
    await mkdir(foreign[1]!);
    await writeFile(join(foreign[1]!, 'version'), DIR_VERSION);
    await writeFile(join(foreign[1]!, 'data'), 'precious');
    const before = await Promise.all(foreign.map((f) => snapshotTree(f)));
    const r = await toDir({ list: await writeListFile(dir, ['team/app:v1']), source: FIXTURE_ROOT, output: out });
    assert.deepEqual(r.staleImages, ['library/busybox:1.36'], 'only the image regfs exported and no longer lists');
    await assert.rejects(stat(join(out, 'library/busybox:1.36')));
    assert.deepEqual(await Promise.all(foreign.map((f) => snapshotTree(f))), before, 'foreign directories untouched');
    assert.deepEqual((await readFile(join(out, DIGEST_FILE), 'utf8')).trimEnd().split('\n').map((l) => l.split(' ')[1]), ['team/app:v1']);
  });
});

test('to-dir --keep-going: the export of an image that no longer resolves stays, and stays in the record', async () => {
  await withTempDir(async (dir) => {
    const src = join(dir, 'src');
    await copyTree(FIXTURE_ROOT, src);
    const out = join(dir, 'out');
    const list = await writeListFile(dir, ['team/app:v1', 'library/busybox:1.36']);
    await toDir({ list, source: src, output: out });
    const busybox = join(out, 'library/busybox:1.36');
    const before = await snapshotTree(busybox);
    const record = (await readFile(join(out, DIGEST_FILE), 'utf8')).split('\n').find((l) => l.endsWith(' library/busybox:1.36'));
    await rm(join(src, 'docker/registry/v2/repositories/library/busybox/_manifests/tags/1.36'), { recursive: true });
    const r = await toDir({ list, source: src, output: out, keepGoing: true });
    assert.deepEqual(r.problems.map((p) => p.code), ['TAG_UNKNOWN']);
    assert.deepEqual(r.staleImages, []);
    assert.deepEqual(await snapshotTree(busybox), before, 'the previous export stays');
    assert.ok((await readFile(join(out, DIGEST_FILE), 'utf8')).split('\n').includes(record!), 'and stays in the record');
    // A complete run that no longer lists it removes it: it is regfs's own.
    const r2 = await toDir({ list: await writeListFile(dir, ['team/app:v1']), source: src, output: out });
    assert.deepEqual(r2.staleImages, ['library/busybox:1.36']);
    await assert.rejects(stat(busybox));
  });
});

test('to-dir, to-oci and bundle: a directory, a FIFO or a symbolic link named like a regfs temp file is not one; it stays and the run completes', async () => {
  await withTempDir(async (dir) => {
    const list = await writeListFile(dir, ['team/app:v1']);
    const dead = deadPid();
    await writeFile(join(dir, 'target'), 'not ours');
    /** Beside `dir/<name>`: `.<name>.<dead pid>-<this host's tag>-0a1b2c3d-<n>.regfs-tmp` as a directory holding a file, a FIFO and a symbolic link. */
    const plant = async (at: string, name: string): Promise<Array<[string, string]>> => {
      const temp = (n: number) => join(at, `.${name}.${dead}-${MY_TAG}-0a1b2c3d-${n}.regfs-tmp`);
      await mkdir(temp(1));
      await writeFile(join(temp(1), 'keep'), 'not ours');
      execFileSync('mkfifo', [temp(2)]);
      await symlink(join(dir, 'target'), temp(3));
      return [[temp(1), 'directory'], [temp(2), 'FIFO'], [temp(3), 'symbolic link']];
    };
    const kind = async (p: string) => {
      const s = await lstat(p);
      return s.isDirectory() ? 'directory' : s.isFIFO() ? 'FIFO' : s.isSymbolicLink() ? 'symbolic link' : 'other';
    };
    const runs: Array<[string[], () => Promise<Array<[string, string]>>]> = [
      [['to-dir', list, FIXTURE_ROOT, join(dir, 'd')], () => plant(join(dir, 'd'), DIGEST_FILE)],
      [['to-oci', list, FIXTURE_ROOT, join(dir, 'o')], async () => [...(await plant(join(dir, 'o'), 'index.json')), ...(await plant(join(dir, 'o', 'blobs'), 'sha256'))]],
      [['bundle', list, FIXTURE_ROOT, join(dir, 'b', 'x.tar')], () => plant(join(dir, 'b'), 'x.tar')],
    ];
    await mkdir(join(dir, 'b'));
    for (const [args, planting] of runs) {
      assert.equal((await runCli(args)).code, 0, args[0]);
      const planted = await planting();
      const r = await runCli(args);
      assert.equal(r.code, 0, `${args[0]}: ${r.stderr}`);
      for (const [p, k] of planted) assert.equal(await kind(p), k, `${args[0]} left ${p}`);
      assert.equal(await readFile(join(dir, 'target'), 'utf8'), 'not ours');
    }
  });
});
