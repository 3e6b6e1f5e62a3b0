/**
 * Reading an OCI layout archive (src/oci/archive.ts) and hashing blob files
 * (src/digest.ts digestRegularFile), at the sizes where their reads split a file: an empty
 * entry, entries around one read (1 MiB) and around the read-ahead window (4 reads), an
 * archive cut at a read boundary. A named tar is read ahead at offsets, a FIFO or a stream in
 * order: all three must give the same blobs, byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Header } from 'tar/header';
import { digestOf, digestRegularFile, digestRegularFileSync, type Digest } from '../src/digest.js';
import { RegfsError } from '../src/errors.js';
import { readArchive, type ArchiveContent, type ReadArchiveOptions } from '../src/oci/archive.js';
import { fromOci } from '../src/ops/from-oci.js';
import { apply } from '../src/ops/apply.js';
import { makeImage, makeLayer } from '../scripts/lib/images.js';
import { withTempDir } from './helpers/tree.js';

const MiB = 1 << 20;

/** Bytes that differ at every offset (a read landing at the wrong place changes the digest). */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** A tar of `entries` (the tar library's own header encoder), with the end-of-archive blocks. */
function tarOf(entries: Array<{ path: string; data: Buffer }>): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const block = Buffer.alloc(512);
    new Header({ path: e.path, mode: 0o644, uid: 0, gid: 0, size: e.data.length, mtime: new Date(0), type: 'File' }).encode(block, 0);
    blocks.push(block, e.data, Buffer.alloc((512 - (e.data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const SIZES = [0, 1, 511, 512, MiB - 1, MiB, MiB + 1, 4 * MiB - 512, 4 * MiB, 5 * MiB + 7];

/** Blob entries of every size in SIZES, then index.json and oci-layout. */
function sampleLayout(): { tar: Buffer; blobs: Map<Digest, Buffer> } {
  const blobs = new Map<Digest, Buffer>();
  const entries: Array<{ path: string; data: Buffer }> = [];
  SIZES.forEach((n, i) => {
    const data = bytes(n, i + 1);
    const d = digestOf(data);
    // The empty blob once: a tar's second copy of a name is skipped.
    if (blobs.has(d)) return;
    blobs.set(d, data);
    entries.push({ path: `blobs/sha256/${d.slice(7)}`, data });
  });
  entries.push({ path: 'index.json', data: Buffer.from('{"schemaVersion":2,"manifests":[]}') });
  entries.push({ path: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') });
  return { tar: tarOf(entries), blobs };
}

function options(stageDir: string | undefined): ReadArchiveOptions {
  return { label: 'test.tar', stageDir, hash: true, existing: () => undefined, keepBytes: 4 * MiB, indexMaxBytes: MiB };
}

/** Every blob staged with the bytes and the digest the archive holds. */
async function assertStaged(content: ArchiveContent, blobs: Map<Digest, Buffer>): Promise<void> {
  assert.deepEqual([...content.blobs.keys()].sort(), [...blobs.keys()].sort());
  for (const [d, b] of content.blobs) {
    assert.equal(b.hashed, d);
    assert.equal(b.size, blobs.get(d)!.length);
    assert.ok(b.path !== undefined);
    assert.ok((await readFile(b.path)).equals(blobs.get(d)!), `${d} staged byte for byte`);
  }
  assert.equal(content.index?.toString(), '{"schemaVersion":2,"manifests":[]}');
  assert.equal(content.bytesRead, [...blobs.values()].reduce((n, b) => n + b.length, 0));
}

test('archive: a named tar (read ahead at offsets), a FIFO and a stream give the same blobs, byte for byte, at every size around the reads', async () => {
  await withTempDir(async (dir) => {
    const { tar, blobs } = sampleLayout();
    assert.ok(tar.length > 8 * MiB, 'more than twice the read-ahead window');
    const file = join(dir, 'layout.tar');
    await writeFile(file, tar);
    const stage = async (name: string): Promise<string> => {
      const s = join(dir, `stage-${name}`);
      await mkdir(s);
      return s;
    };
    await assertStaged(await readArchive(file, options(await stage('named'))), blobs);
    await assertStaged(await readArchive(Readable.from([tar.subarray(0, 1000), tar.subarray(1000)]), options(await stage('stream'))), blobs);
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', `cat "${file}" > "${fifo}"`]);
    const written = new Promise((resolve) => writer.on('close', resolve));
    await assertStaged(await readArchive(fifo, options(await stage('fifo'))), blobs);
    assert.equal(await written, 0);
    // A dry run stages nothing, and hashes all the same.
    const dry = await readArchive(file, options(undefined));
    for (const [d, b] of dry.blobs) assert.equal(b.hashed, d);
  });
});

test('archive: a tar cut at a read boundary, or inside an entry, is ARCHIVE_INVALID; the end-of-archive blocks may be missing', async () => {
  await withTempDir(async (dir) => {
    const { tar, blobs } = sampleLayout();
    for (const cut of [4 * MiB, 5 * MiB, 5 * MiB + 100]) {
      const file = join(dir, `cut-${cut}.tar`);
      await writeFile(file, tar.subarray(0, cut));
      const stage = join(dir, `stage-${cut}`);
      await mkdir(stage);
      await assert.rejects(readArchive(file, options(stage)), (err: unknown) => err instanceof RegfsError && err.code === 'ARCHIVE_INVALID' && err.message.includes('test.tar'));
    }
    // Without the two zero blocks at the end (some writers leave them out) the archive is whole.
    const file = join(dir, 'no-end.tar');
    await writeFile(file, tar.subarray(0, tar.length - 1024));
    const stage = join(dir, 'stage-no-end');
    await mkdir(stage);
    await assertStaged(await readArchive(file, options(stage)), blobs);
  });
});

test('digestRegularFile: the digest of every size around its reads and its yields; a FIFO or a directory is BLOB_INVALID at once', async () => {
  await withTempDir(async (dir) => {
    for (const n of [0, 1, MiB - 1, MiB, MiB + 1, 64 * MiB + 3]) {
      const data = bytes(n, n);
      const file = join(dir, `f-${n}`);
      await writeFile(file, data);
      assert.equal(await digestRegularFile(file), digestOf(data), `${n} bytes`);
      assert.equal(digestRegularFileSync(file, 'sha512'), digestOf(data, 'sha512'), `${n} bytes, sha512`);
    }
    // Two large files hashed at once (each yields every 64 MiB) share the read buffer safely.
    const [a, b] = [bytes(65 * MiB, 1), bytes(65 * MiB + 1, 2)];
    await writeFile(join(dir, 'a'), a);
    await writeFile(join(dir, 'b'), b);
    assert.deepEqual(await Promise.all([digestRegularFile(join(dir, 'a')), digestRegularFile(join(dir, 'b'))]), [digestOf(a), digestOf(b)]);
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    for (const p of [fifo, dir]) {
      await assert.rejects(digestRegularFile(p), (err: unknown) => err instanceof RegfsError && err.code === 'BLOB_INVALID' && err.message.includes(p));
    }
  });
});

test('from-oci of a tar: every blob, manifests too, is linked from where it was staged, none written a second time', async () => {
  await withTempDir(async (dir) => {
    const image = makeImage({ format: 'oci', layers: [makeLayer('archive-test', 3 * MiB)] });
    const entries = [image, image.config, ...image.layers].map((b) => ({ path: `blobs/sha256/${b.digest.slice(7)}`, data: Buffer.from(b.bytes) }));
    const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: image.digest, size: image.size, annotations: { 'org.opencontainers.image.ref.name': 'team/app:1' } }] };
    entries.push({ path: 'index.json', data: Buffer.from(JSON.stringify(index)) }, { path: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') });
    const file = join(dir, 'one.tar');
    await writeFile(file, tarOf(entries));
    const res = await fromOci({ input: file, output: join(dir, 'out') });
    assert.equal(res.stats?.blobsLinked, 3);
    assert.equal(res.stats?.blobsWritten, 0);
    assert.deepEqual(await readdir(join(dir, 'out', 'docker/registry/v2/blobs')), ['sha256'], 'no staging directory left');
  });
});

test('from-oci and apply of a named FIFO wait for its writer without holding the output: another writer of it runs meanwhile', async () => {
  await withTempDir(async (dir) => {
    const image = makeImage({ format: 'oci', layers: [makeLayer('fifo-input')] });
    const entries = [image, image.config, ...image.layers].map((b) => ({ path: `blobs/sha256/${b.digest.slice(7)}`, data: Buffer.from(b.bytes) }));
    const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: image.digest, size: image.size, annotations: { 'org.opencontainers.image.ref.name': 'team/fifo:1' } }] };
    entries.push({ path: 'index.json', data: Buffer.from(JSON.stringify(index)) }, { path: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') });
    const file = join(dir, 'one.tar');
    await writeFile(file, tarOf(entries));
    for (const [i, run] of [fromOci, apply].entries()) {
      const fifo = join(dir, `fifo-${i}`);
      execFileSync('mkfifo', [fifo]);
      const out = join(dir, `out-${i}`);
      const waiting = run({ input: fifo, output: out });
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The output is free while the FIFO has no writer.
      assert.equal((await run({ input: file, output: out })).dryRun, false, `${run.name}: another run writes the output meanwhile`);
      const writer = spawn('sh', ['-c', `cat "${file}" > "${fifo}"`]);
      const written = new Promise((resolve) => writer.on('close', resolve));
      assert.deepEqual((await waiting).images.map((m) => m.digest), [image.digest], run.name);
      assert.equal(await written, 0);
    }
  });
});
