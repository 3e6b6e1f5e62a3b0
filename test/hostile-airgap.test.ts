/**
 * inventory, bundle and apply against a hostile user or input (docs/bundle.md): input that
 * never ends, bundles and inventories crafted to mislead, outputs that are inputs. Each run
 * must end, with a stable code naming what is wrong, and leave what it must not touch as it
 * was.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { entryHeader } from '../src/oci/ustar.js';
import { REGFS_BIN, runCli } from './helpers/cli.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { listFiles, tempDir } from './helpers/tree.js';

let t: { dir: string; cleanup: () => Promise<void> };
/** A complete bundle of two images of the fixture. */
let bundleTar: string;
let listFile: string;

before(async () => {
  t = await tempDir('regfs-hostile-airgap-');
  listFile = join(t.dir, 'release.list');
  await writeFile(listFile, 'team/app:v1\nlibrary/busybox:1.36\n');
  bundleTar = join(t.dir, 'release.tar');
  const r = await runCli(['bundle', listFile, FIXTURE_ROOT, bundleTar]);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await t?.cleanup();
});

/** `bash -c script` ($REGFS is regfs), killed with its whole process group after `ms`; `output` is its stdout and stderr as they came. */
function shell(script: string, ms: number): Promise<{ code: number | null; output: string; hung: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0', REGFS: `${process.execPath} ${REGFS_BIN}` } });
    let output = '';
    let hung = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
    child.on('error', reject);
    const timer = setTimeout(() => {
      hung = true;
      process.kill(-child.pid!, 'SIGKILL');
    }, ms);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, hung });
    });
  });
}

test('hostile: standard input that never ends (yes, /dev/zero, a whole bundle then zeros or text) ends apply, with its own status', async () => {
  const dest = (n: string): string => join(t.dir, `never-ends-${n}`);
  for (const [n, input, code, says] of [
    ['yes', 'yes', 1, /\[ARCHIVE_INVALID\]/],
    ['zero', 'cat /dev/zero', 1, /\[ARCHIVE_INVALID\]/],
    ['bundle-zero', `cat ${bundleTar} /dev/zero`, 0, /applied 2 images/],
    ['bundle-yes', `{ cat ${bundleTar}; yes; }`, 0, /applied 2 images/],
  ] as const) {
    const r = await shell(`${input} | $REGFS apply - ${dest(n)}; echo "exit $?" >&2`, 20_000);
    assert.equal(r.hung, false, `${input} | regfs apply - DEST hung: ${r.output}`);
    assert.match(r.output, new RegExp(`exit ${code}\\n$`), r.output);
    assert.match(r.output, says);
    assert.doesNotMatch(r.output, /internal error|\n\s+at /);
  }
  // A device as standard input (no pipe: no writer to spare).
  const r = await shell(`$REGFS apply - ${dest('device')} < /dev/zero; echo "exit $?" >&2`, 20_000);
  assert.equal(r.hung, false, `regfs apply - DEST < /dev/zero hung: ${r.output}`);
  assert.match(r.output, /\[ARCHIVE_INVALID\][^]*exit 1\n$/);
});

test('hostile: a BUNDLE that is the image list or the --have inventory is refused, and the input is left as it was', async () => {
  const list = join(t.dir, 'own.list');
  await writeFile(list, 'team/app:v1\n');
  const far = join(t.dir, 'far-own');
  assert.equal((await runCli(['apply', bundleTar, far])).code, 0);
  const inv = join(t.dir, 'far-own.inv');
  assert.equal((await runCli(['inventory', far, '-o', inv])).code, 0);
  const listBefore = await readFile(list);
  const invBefore = await readFile(inv);
  for (const [args, named] of [
    [['bundle', list, FIXTURE_ROOT, list], list],
    [['bundle', list, FIXTURE_ROOT, inv, '--have', inv], inv],
    [['bundle', list, FIXTURE_ROOT, join(t.dir, '.', 'own.list'), '--have', inv], list],
  ] as const) {
    const r = await runCli([...args]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[OUTPUT_IN_SOURCE\]/);
    assert.ok(r.stderr.includes(named), r.stderr);
    assert.deepEqual(await readFile(list), listBefore, 'the list is unchanged');
    assert.deepEqual(await readFile(inv), invBefore, 'the inventory is unchanged');
  }
});

test('hostile: a dry run keeps in memory what may be a manifest, within a bound: a tar of 600 MiB of JSON layers is planned in bounded memory', async () => {
  // An image whose layers are JSON (attestations, SBOMs: blobs a dry run cannot tell from
  // manifests by their first byte), 150 of 4 MiB, in a tar with index.json before the blobs.
  const layout = join(t.dir, 'json-layers');
  await mkdir(join(layout, 'blobs/sha256'), { recursive: true });
  const put = async (data: Buffer): Promise<{ digest: string; size: number }> => {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    await writeFile(join(layout, 'blobs/sha256', digest.slice(7)), data);
    return { digest, size: data.length };
  };
  const layers = [];
  for (let i = 0; i < 150; i++) {
    const body = Buffer.alloc(4 << 20, 0x20);
    body.write(`{"layer":${i},"pad":"`);
    body.write('"}', body.length - 2);
    layers.push({ mediaType: 'application/vnd.in-toto+json', ...(await put(body)) });
  }
  const config = { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await put(Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'))) };
  const manifest = await put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers })));
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'sbom/app:v1' } }] }),
  );
  const tar = join(t.dir, 'json-layers.tar');
  execFileSync('tar', ['--format=ustar', '-cf', tar, '-C', layout, 'oci-layout', 'index.json', 'blobs']);
  await rm(layout, { recursive: true });
  const rss = join(t.dir, 'json-layers.rss');
  // The child reports its own peak RSS (KiB) as it exits.
  const preload = join(t.dir, 'rss.mjs');
  await writeFile(preload, `import { writeFileSync } from 'node:fs'; process.on('exit', () => writeFileSync(${JSON.stringify(rss)}, String(process.resourceUsage().maxRSS)));\n`);
  const r = await shell(`${process.execPath} --import ${preload} ${REGFS_BIN} apply ${tar} ${join(t.dir, 'json-dest')} --dry-run`, 120_000);
  await rm(tar);
  assert.equal(r.hung, false);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /1 image/);
  const peakMiB = Number(await readFile(rss, 'utf8')) / 1024;
  assert.ok(peakMiB < 350, `peak RSS ${peakMiB.toFixed(0)} MiB`);
});

test('hostile: a blob entry larger than regfs-bundle.json says the bundle carries is refused when its header is read, not after its bytes are staged', async () => {
  // The bundle's first entries, then a blob entry declaring 1 TiB, then zeros (at most 256 MiB of them).
  const tar = await readFile(bundleTar);
  const firstBlob = tar.indexOf('blobs/sha256/', tar.indexOf('blobs/sha256/\0') + 1);
  const head = join(t.dir, 'huge-entry.head');
  const name = `blobs/sha256/${'ab'.repeat(32)}`;
  await writeFile(head, Buffer.concat([tar.subarray(0, firstBlob), entryHeader(name, 'file', 2 ** 40)]));
  const dest = join(t.dir, 'huge-entry-dest');
  const r = await shell(`cat ${head} /dev/zero | head -c ${256 << 20} | $REGFS apply - ${dest}; echo "exit $?" >&2`, 60_000);
  assert.equal(r.hung, false, r.output);
  assert.match(r.output, /\[ARCHIVE_INVALID\][^]*exit 1\n$/);
  assert.ok(r.output.includes(name), r.output);
  assert.match(r.output, /more than its regfs-bundle\.json says it carries/);
  await assert.rejects(stat(dest), 'nothing is left in a root the run created');
});

test('hostile: bundle --have an inventory of 2,000,000 blobs keeps in memory only those of the listed images', async () => {
  // The far side holds the listed images' 7 blobs, among 2,000,000 others.
  const far = join(t.dir, 'far-huge');
  assert.equal((await runCli(['apply', bundleTar, far])).code, 0);
  const farInv = join(t.dir, 'far-huge.inv');
  assert.equal((await runCli(['inventory', far, '-o', farInv])).code, 0);
  const lines = (await readFile(farInv, 'utf8')).split('\n').filter((l) => l.startsWith('blob '));
  assert.equal(lines.length, 7);
  const lines0 = [...lines];
  for (let i = 0; i < 2_000_000; i++) lines.push(`blob sha256:${createHash('sha256').update(String(i)).digest('hex')} 1234`);
  lines.sort();
  const inv = join(t.dir, 'huge.inv');
  const fd = openSync(inv, 'w');
  writeSync(fd, 'regfs-inventory 1\n');
  for (let i = 0; i < lines.length; i += 10_000) writeSync(fd, `${lines.slice(i, i + 10_000).join('\n')}\n`);
  closeSync(fd);
  lines.length = 0;
  const rss = join(t.dir, 'huge-inv.rss');
  const preload = join(t.dir, 'huge-inv-rss.mjs');
  await writeFile(preload, `import { writeFileSync } from 'node:fs'; process.on('exit', () => writeFileSync(${JSON.stringify(rss)}, String(process.resourceUsage().maxRSS)));\n`);
  const r = await shell(`${process.execPath} --import ${preload} ${REGFS_BIN} bundle ${listFile} ${FIXTURE_ROOT} ${join(t.dir, 'huge-inv.tar')} --have ${inv}`, 120_000);
  await rm(inv);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /0 blobs carried .*, 7 assumed/);
  const peakMiB = Number(await readFile(rss, 'utf8')) / 1024;
  // 430 MiB when every blob line was kept.
  assert.ok(peakMiB < 200, `peak RSS ${peakMiB.toFixed(0)} MiB`);
  // A blob of the images listed twice, apart, is refused all the same.
  const bad = join(t.dir, 'bad-twice.inv');
  await writeFile(bad, `regfs-inventory 1\n${lines0[0]}\n${lines0[1]}\n${lines0[0]}\n`);
  const r2 = await runCli(['bundle', listFile, FIXTURE_ROOT, join(t.dir, 'bad.tar'), '--have', bad]);
  assert.equal(r2.code, 1, r2.stderr);
  assert.ok(r2.stderr.includes(`inventory "${bad}", line 4:`) && r2.stderr.includes('is listed twice [INVENTORY_INVALID]'), r2.stderr);
});

test('hostile: a delta whose assumed manifest the output holds damaged (same size) is refused, naming the output\'s file, not the bundle', async () => {
  const far = join(t.dir, 'far-damaged-manifest');
  assert.equal((await runCli(['apply', bundleTar, far])).code, 0);
  const inv = join(t.dir, 'far-damaged-manifest.inv');
  assert.equal((await runCli(['inventory', far, '-o', inv])).code, 0);
  const list = join(t.dir, 'next.list');
  await writeFile(list, 'team/app:v1\nteam/app:v2\n');
  const delta = join(t.dir, 'next.tar');
  assert.equal((await runCli(['bundle', list, FIXTURE_ROOT, delta, '--have', inv])).code, 0);
  // team/app:v1's manifest, assumed by the delta: one byte changed in the output's copy.
  const manifest = (JSON.parse(execFileSync('tar', ['-xOf', bundleTar, 'index.json'], { encoding: 'utf8' })) as { manifests: Array<{ digest: string }> }).manifests[0]!.digest;
  const data = join(far, 'docker/registry/v2/blobs/sha256', manifest.slice(7, 9), manifest.slice(7), 'data');
  const bytes = await readFile(data);
  bytes[bytes.length - 2] = bytes[bytes.length - 2] === 0x20 ? 0x0a : 0x20;
  await writeFile(data, bytes);
  const r = await runCli(['apply', delta, far]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /\[DIGEST_MISMATCH\]/);
  assert.ok(r.stderr.includes(`"${data}"`), `the output's file is named: ${r.stderr}`);
  assert.ok(!r.stderr.includes(`next.tar:blobs/sha256/${manifest.slice(7)}`), `not a file of the bundle: ${r.stderr}`);
});

test('hostile: a refused apply into a new DEST named by its docker/registry/v2 path removes every directory it made', async () => {
  const far = join(t.dir, 'far-for-delta');
  assert.equal((await runCli(['apply', bundleTar, far])).code, 0);
  const inv = join(t.dir, 'far-for-delta.inv');
  assert.equal((await runCli(['inventory', far, '-o', inv])).code, 0);
  const list = join(t.dir, 'delta.list');
  await writeFile(list, 'team/app:v1\nteam/app:v2\n');
  const delta = join(t.dir, 'delta.tar');
  assert.equal((await runCli(['bundle', list, FIXTURE_ROOT, delta, '--have', inv])).code, 0);
  for (const dest of [join(t.dir, 'new-v2', 'docker/registry/v2'), join(t.dir, 'new-root')]) {
    const r = await runCli(['apply', delta, dest]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[BUNDLE_BASE_MISSING\]/);
    await assert.rejects(stat(dest.endsWith('v2') ? join(t.dir, 'new-v2') : dest), `nothing is left of ${dest}`);
  }
});

test('hostile: a tar holding index.json (or oci-layout) twice is refused by apply and from-oci: which one a reader takes is not for the tar to decide', async () => {
  const tar = await readFile(bundleTar);
  // The bundle without its end-of-archive blocks, a second entry, then the end again.
  const body = tar.subarray(0, tar.length - 1024);
  const second = (name: string, data: Buffer): Buffer => Buffer.concat([body, entryHeader(name, 'file', data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512), Buffer.alloc(1024)]);
  const cases: Array<[string, Buffer]> = [
    ['index.json', Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}')],
    ['oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}')],
  ];
  for (const [name, data] of cases) {
    const path = join(t.dir, `twice-${name}.tar`);
    await writeFile(path, second(name, data));
    for (const command of ['apply', 'from-oci']) {
      const dest = join(t.dir, `twice-${name}-${command}`);
      const r = await runCli([command, path, dest]);
      assert.equal(r.code, 1, `${command} ${name}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`${name.replace('.', '\\.')} twice[^]*\\[ARCHIVE_INVALID\\]`), `${command} ${name}`);
      // apply removes the directories it made; from-oci may leave them, empty: no file at all.
      if (command === 'apply') await assert.rejects(stat(dest), 'apply: nothing is left in a root the run created');
      else assert.deepEqual(await listFiles(dest).catch(() => []), [], `${command}: no file written`);
    }
  }
});
