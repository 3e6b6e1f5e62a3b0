import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, open, readFile, rm, stat, truncate, writeFile, readdir } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { constants, copyFileSync, linkSync, lstatSync, renameSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLinker, type LinkFs } from '../src/fs/link.js';
import { readLink, writeLink } from '../src/registry/link-file.js';
import { isRegfsError } from '../src/errors.js';
import * as layout from '../src/registry/layout.js';
import { extract } from '../src/ops/extract.js';
import { toDir } from '../src/ops/to-dir.js';
import { verify } from '../src/ops/verify.js';
import type { Image } from '../scripts/lib/images.js';
import { FIXTURE_ROOT, currentPush } from './helpers/fixture.js';
import { copyTree } from './helpers/tree.js';

async function withDir(fn: (dir: string) => Promise<void>, base = tmpdir()): Promise<void> {
  const dir = await mkdtemp(join(base, 'regfs-link-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The real fs, with link(2) failing with `code` for every source in `failFrom`. */
function failingFs(code: string, calls: string[]): LinkFs {
  return {
    linkSync: (a, b) => {
      calls.push(`link ${a}`);
      if (!a.includes('.regfs-tmp')) throw Object.assign(new Error(`${code}: injected`), { code });
      linkSync(a, b);
    },
    copyFileSync: (a, b, m) => {
      calls.push('copy');
      copyFileSync(a, b, m);
    },
    unlinkSync,
    renameSync,
    lstatSync,
  };
}

/** A filesystem without hard links at all (FAT, exFAT): link(2) always fails with EPERM. */
const noLinksFs: LinkFs = {
  linkSync: () => {
    throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' });
  },
  copyFileSync,
  unlinkSync,
  renameSync,
  lstatSync,
};

test('linker: hardlink shares the inode; an existing file is kept', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'src'), 'data');
    const linker = createLinker('hardlink');
    assert.equal(linker.place(join(dir, 'src'), join(dir, 'dst')), 'linked');
    assert.equal((await stat(join(dir, 'src'))).nlink, 2);
    await writeFile(join(dir, 'other'), 'other');
    assert.equal(linker.place(join(dir, 'other'), join(dir, 'dst')), 'exists');
    assert.equal(await readFile(join(dir, 'dst'), 'utf8'), 'data');
  });
});

test('linker: copy makes a new inode and leaves no temp file', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'src'), 'data');
    const linker = createLinker('copy');
    assert.equal(linker.place(join(dir, 'src'), join(dir, 'dst')), 'copied');
    assert.equal((await stat(join(dir, 'src'))).nlink, 1);
    assert.equal(await readFile(join(dir, 'dst'), 'utf8'), 'data');
    assert.equal(linker.place(join(dir, 'src'), join(dir, 'dst')), 'exists');
    assert.deepEqual((await readdir(dir)).sort(), ['dst', 'src']);
  });
});

for (const code of ['EXDEV', 'EPERM']) {
  test(`linker: auto falls back to copy on ${code}, warns once, does not probe again`, async () => {
    await withDir(async (dir) => {
      await writeFile(join(dir, 'a'), 'A');
      await writeFile(join(dir, 'b'), 'B');
      const calls: string[] = [];
      const warnings: string[] = [];
      const linker = createLinker('auto', { fs: failingFs(code, calls), onFallback: (r) => warnings.push(r.code) });
      assert.equal(linker.place(join(dir, 'a'), join(dir, 'a2')), 'copied');
      assert.equal(linker.place(join(dir, 'b'), join(dir, 'b2')), 'copied');
      assert.deepEqual(warnings, [code]);
      assert.equal(linker.current, 'copy');
      // One failed probe of the source, then only copies (linked into place from their temp names).
      assert.equal(calls.filter((c) => c === `link ${join(dir, 'b')}`).length, 0);
      assert.equal(await readFile(join(dir, 'b2'), 'utf8'), 'B');
    });
  });

  test(`linker: hardlink mode fails on ${code} with LINK_FAILED naming the paths`, async () => {
    await withDir(async (dir) => {
      await writeFile(join(dir, 'a'), 'A');
      const linker = createLinker('hardlink', { fs: failingFs(code, []) });
      assert.throws(() => linker.place(join(dir, 'a'), join(dir, 'a2')), (e) => isRegfsError(e, 'LINK_FAILED') && e.message.includes(join(dir, 'a2')) && e.message.includes(code));
    });
  });
}

test('linker: a real cross-device link (/dev/shm) falls back in auto and fails in hardlink', async (t) => {
  const shm = '/dev/shm';
  let sameDevice = true;
  try {
    sameDevice = (await stat(shm)).dev === (await stat(tmpdir())).dev;
  } catch {
    // no /dev/shm
  }
  if (sameDevice) {
    t.skip('/dev/shm is not a separate filesystem here');
    return;
  }
  await withDir(async (src) => {
    await withDir(async (dst) => {
      await writeFile(join(src, 'a'), 'A');
      assert.throws(() => createLinker('hardlink').place(join(src, 'a'), join(dst, 'a')), (e) => isRegfsError(e, 'LINK_FAILED'));
      const warned: string[] = [];
      assert.equal(createLinker('auto', { onFallback: (r) => warned.push(r.code) }).place(join(src, 'a'), join(dst, 'a')), 'copied');
      assert.deepEqual(warned, ['EXDEV']);
    }, shm);
  });
});

test('link files: exactly the digest, no newline; malformed content is LINK_INVALID naming the path', async () => {
  await withDir(async (dir) => {
    const d = `sha256:${'c'.repeat(64)}`;
    const p = join(dir, 'x', 'link');
    writeLink(p, d as never);
    assert.equal(await readFile(p, 'utf8'), d);
    assert.equal((await readFile(p)).length, 71);
    assert.equal(readLink(p), d);
    assert.equal(readLink(join(dir, 'missing', 'link')), undefined);
    for (const bad of ['', `${d}\n`, 'garbage', `sha256:${'C'.repeat(64)}`, 'x'.repeat(5000)]) {
      await writeFile(p, bad);
      assert.throws(() => readLink(p), (e) => isRegfsError(e, 'LINK_INVALID') && e.path === p, JSON.stringify(bad.slice(0, 20)));
    }
    // Bytes past ASCII are shown as bytes (a byte order mark is \xef\xbb\xbf), not as Latin-1 letters.
    await writeFile(p, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`sha256:${'c'.repeat(64)}`)]));
    assert.throws(() => readLink(p), (e) => isRegfsError(e, 'LINK_INVALID') && e.message.includes('found "\\xef\\xbb\\xbfsha256:ccc'), 'the BOM as bytes');
    assert.deepEqual(await readdir(join(dir, 'x')), ['link']);
  });
});

test('link files: a symbolic link is refused without reading its target; a huge file is not read whole', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'secret'), 'root:s3cr3t\n');
    const { symlink } = await import('node:fs/promises');
    await symlink(join(dir, 'secret'), join(dir, 'link'));
    assert.throws(() => readLink(join(dir, 'link')), (e) => isRegfsError(e, 'LINK_INVALID') && /symbolic link/.test(e.message) && !e.message.includes('s3cr3t'));
    await writeFile(join(dir, 'big'), Buffer.alloc(1 << 20, 0x61));
    assert.throws(() => readLink(join(dir, 'big')), (e) => isRegfsError(e, 'LINK_INVALID') && /bytes/.test(e.message));
  });
});

test('linker: on a filesystem without hard links, auto and copy still copy, and never replace existing data', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'a'), 'A');
    await writeFile(join(dir, 'b'), 'B');
    for (const mode of ['auto', 'copy'] as const) {
      const linker = createLinker(mode, { fs: noLinksFs });
      assert.equal(linker.place(join(dir, 'a'), join(dir, `${mode}-a`)), 'copied');
      assert.equal(await readFile(join(dir, `${mode}-a`), 'utf8'), 'A');
      assert.equal(linker.place(join(dir, 'b'), join(dir, `${mode}-a`)), 'exists');
      assert.equal(await readFile(join(dir, `${mode}-a`), 'utf8'), 'A');
    }
    assert.deepEqual((await readdir(dir)).sort(), ['a', 'auto-a', 'b', 'copy-a'], 'no temp files left');
  });
});

test('linker: a source at its hard-link limit (EMLINK) is copied, alone; the run keeps linking', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'full'), 'F');
    await writeFile(join(dir, 'ok'), 'O');
    const warned: string[] = [];
    const fs: LinkFs = {
      linkSync: (a, b) => {
        if (a.endsWith('full')) throw Object.assign(new Error('EMLINK: too many links'), { code: 'EMLINK' });
        linkSync(a, b);
      },
      copyFileSync,
      unlinkSync,
      renameSync,
      lstatSync,
    };
    for (const mode of ['auto', 'hardlink'] as const) {
      const linker = createLinker(mode, { fs, onFallback: (r) => warned.push(r.code) });
      assert.equal(linker.place(join(dir, 'full'), join(dir, `${mode}-full`)), 'copied');
      assert.equal(linker.place(join(dir, 'ok'), join(dir, `${mode}-ok`)), 'linked');
      assert.equal(linker.current, 'hardlink');
    }
    assert.deepEqual(warned, []);
  });
});

/** The real fs, recording each call; a clone (COPYFILE_FICLONE_FORCE) fails with `cloneFails`, if given, else copies. */
function cloneFs(calls: string[], cloneFails?: string, linkFails?: string): LinkFs {
  return {
    linkSync: (a, b) => {
      calls.push(a.includes('.regfs-tmp') ? 'land' : 'link');
      if (linkFails !== undefined && !a.includes('.regfs-tmp')) throw Object.assign(new Error(`${linkFails}: injected`), { code: linkFails });
      linkSync(a, b);
    },
    copyFileSync: (a, b, m) => {
      const force = (m & constants.COPYFILE_FICLONE_FORCE) === constants.COPYFILE_FICLONE_FORCE;
      calls.push(force ? 'clone' : 'copy');
      if (force && cloneFails !== undefined) throw Object.assign(new Error(`${cloneFails}: injected`), { code: cloneFails });
      // A plain copy stands for the clone: both are a new inode.
      copyFileSync(a, b);
    },
    unlinkSync,
    renameSync,
    lstatSync,
  };
}

test('linker: auto reflinks first, where the filesystem can; the output is its own inode', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'a'), 'A');
    await writeFile(join(dir, 'b'), 'B');
    const calls: string[] = [];
    const linker = createLinker('auto', { fs: cloneFs(calls) });
    assert.equal(linker.current, 'reflink');
    assert.equal(linker.place(join(dir, 'a'), join(dir, 'a2')), 'cloned');
    assert.equal(linker.place(join(dir, 'b'), join(dir, 'b2')), 'cloned');
    assert.equal(linker.place(join(dir, 'b'), join(dir, 'b2')), 'exists');
    assert.deepEqual(calls, ['clone', 'land', 'clone', 'land', 'clone', 'land']);
    assert.notEqual((await stat(join(dir, 'a2'))).ino, (await stat(join(dir, 'a'))).ino);
    assert.deepEqual((await readdir(dir)).sort(), ['a', 'a2', 'b', 'b2'], 'no temp file left');
  });
});

for (const code of ['ENOTSUP', 'EOPNOTSUPP', 'EINVAL', 'EXDEV']) {
  test(`linker: auto switches for good from reflinks to hard links on ${code}, without a warning`, async () => {
    await withDir(async (dir) => {
      await writeFile(join(dir, 'a'), 'A');
      await writeFile(join(dir, 'b'), 'B');
      const calls: string[] = [];
      const warnings: string[] = [];
      const linker = createLinker('auto', { fs: cloneFs(calls, code), onFallback: (r) => warnings.push(r.code) });
      assert.equal(linker.place(join(dir, 'a'), join(dir, 'a2')), 'linked');
      assert.equal(linker.current, 'hardlink');
      assert.equal(linker.place(join(dir, 'b'), join(dir, 'b2')), 'linked');
      assert.deepEqual(calls, ['clone', 'link', 'link'], 'one probe, then hard links only');
      assert.deepEqual(warnings, []);
      assert.equal((await stat(join(dir, 'b2'))).ino, (await stat(join(dir, 'b'))).ino);
      assert.deepEqual((await readdir(dir)).sort(), ['a', 'a2', 'b', 'b2'], 'no temp file left');
    });
  });
}

test('linker: auto goes reflink, hard link, copy, each switch for good; another error of the clone stops the run', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'a'), 'A');
    await writeFile(join(dir, 'b'), 'B');
    const calls: string[] = [];
    const warnings: string[] = [];
    const linker = createLinker('auto', { fs: cloneFs(calls, 'EXDEV', 'EXDEV'), onFallback: (r) => warnings.push(r.code) });
    assert.equal(linker.place(join(dir, 'a'), join(dir, 'a2')), 'copied');
    assert.equal(linker.place(join(dir, 'b'), join(dir, 'b2')), 'copied');
    assert.deepEqual(calls, ['clone', 'link', 'copy', 'land', 'copy', 'land']);
    assert.deepEqual(warnings, ['EXDEV']);
    assert.equal(linker.current, 'copy');
    const failing = createLinker('auto', { fs: cloneFs([], 'EIO') });
    assert.throws(() => failing.place(join(dir, 'a'), join(dir, 'a3')), (e) => isRegfsError(e, 'IO_ERROR') && e.message.includes(join(dir, 'a3')));
    assert.equal(failing.current, 'reflink');
    // hardlink mode never clones.
    const hl: string[] = [];
    assert.equal(createLinker('hardlink', { fs: cloneFs(hl) }).place(join(dir, 'a'), join(dir, 'a4')), 'linked');
    assert.deepEqual(hl, ['link']);
  });
});

/**
 * A real reflink-capable filesystem: XFS with reflink=1 on a loop file, mounted for the test
 * (needs root and xfsprogs; `.ci/run` installs it). Unmounted and removed in `finally`.
 */
async function withXfs(fn: (mnt: string) => Promise<void>): Promise<void> {
  assert.equal(process.getuid?.(), 0, 'this test mounts an XFS loop file: run it as root');
  const run = (cmd: string, args: string[]): void => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr} (the reflink test needs xfsprogs and loop mounts; .ci/run installs xfsprogs)`);
  };
  await withDir(async (dir) => {
    const img = join(dir, 'xfs.img');
    const mnt = join(dir, 'mnt');
    await writeFile(img, '');
    await truncate(img, 400 << 20);
    run('mkfs.xfs', ['-q', '-m', 'reflink=1', img]);
    await mkdir(mnt);
    run('mount', ['-o', 'loop', img, mnt]);
    try {
      await fn(mnt);
    } finally {
      run('umount', [mnt]);
    }
  });
}

test('linker: on a reflink filesystem, auto clones: writing into an exported blob leaves the registry\'s blob intact, and verify sees it', async () => {
  await withXfs(async (mnt) => {
    const src = join(mnt, 'src');
    await copyTree(FIXTURE_ROOT, src);
    const list = join(mnt, 'l.list');
    await writeFile(list, 'team/app:v1\n');
    const v1 = currentPush('team/app', 'v1').image as Image;
    const layer = v1.layers[0]!.digest;
    const srcBlob = join(src, layout.STORAGE_PREFIX, 'blobs/sha256', layer.slice(7, 9), layer.slice(7), 'data');
    const original = await readFile(srcBlob);

    // extract: every blob cloned (own inode), none hard-linked.
    const out = join(mnt, 'out');
    const r = await extract({ list, source: src, output: out });
    assert.equal(r.stats?.blobsCloned, r.plan.blobs);
    assert.equal(r.stats?.blobsLinked, 0);
    const outBlob = join(out, layout.STORAGE_PREFIX, 'blobs/sha256', layer.slice(7, 9), layer.slice(7), 'data');
    assert.notEqual((await stat(outBlob)).ino, (await stat(srcBlob)).ino);
    assert.equal((await stat(srcBlob)).nlink, 1);
    const f = await open(outBlob, 'r+');
    await f.write(Buffer.from('written in place'), 0, 16, 0);
    await f.close();
    assert.deepEqual(await readFile(srcBlob), original, "the registry's blob is intact");
    const found = await verify({ root: out });
    assert.deepEqual(found.findings.map((x) => [x.code, x.digest]), [['DIGEST_MISMATCH', layer]], 'verify finds the damaged copy');

    // to-dir: the same for an exported dir: tree.
    const exp = join(mnt, 'exp');
    const d = await toDir({ list, source: src, output: exp });
    assert.equal(d.stats?.blobsCloned, d.images[0]!.blobs);
    const dirBlob = join(exp, 'team/app:v1', layer.slice(7));
    await writeFile(dirBlob, 'overwritten in place', { flag: 'r+' });
    assert.deepEqual(await readFile(srcBlob), original, "the registry's blob is intact");

    // What a hard link would have done: one inode, so the write reaches the registry.
    const hl = join(mnt, 'hl');
    await toDir({ list, source: src, output: hl, link: 'hardlink' });
    await writeFile(join(hl, 'team/app:v1', layer.slice(7)), 'overwritten in place', { flag: 'r+' });
    assert.notDeepEqual(await readFile(srcBlob), original, 'through a hard link the registry blob changes');
  });
});
