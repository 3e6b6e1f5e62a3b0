/**
 * The air-gap workflow end to end, as docs/bundle.md walks it and a user runs it in a shell:
 * release N bundled whole and applied on the far side; `regfs inventory ROOT > have.inv`
 * there; release N+1 bundled against it in volumes; `cat VOLUMES | regfs apply - ROOT`.
 * Judged by docker-registry 2.8.2 and skopeo (every image of both releases served with its
 * source digest, copied in full, nothing for its garbage collector), by the delta's size
 * against the new bytes, and differentially: the far side ends byte for byte as `extract` of
 * both releases would leave it (their inventories are equal).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { blobsOf, makeImage, makeIndex, makeLayer, manifestsOf, type Manifest } from '../scripts/lib/images.js';
import { writeStorage, type StoragePush } from '../scripts/lib/write-storage.js';
import { REGFS_BIN, runCli } from './helpers/cli.js';
import { assertServed, type Served } from './helpers/judge.js';
import { snapshotTree, tempDir, writeListFile } from './helpers/tree.js';

let t: { dir: string; cleanup: () => Promise<void> };
const near = (): string => join(t.dir, 'near');
const far = (): string => join(t.dir, 'far');
const pushes: StoragePush[] = [];
const releaseN: string[] = [];
const releaseN1: string[] = [];
/** Bytes of the blobs release N+1 adds to what release N has. */
let newBytes = 0;

const sh = (script: string): string => execFileSync('bash', ['-o', 'pipefail', '-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, REGFS: `${process.execPath} ${REGFS_BIN}` } });

before(async () => {
  t = await tempDir('regfs-airgap-');
  // Two releases of three repositories: shared base layers of 1 MiB, each release's own
  // layers, an index of two platforms, and in N+1 a new tag on an image N already has.
  const base = [makeLayer('airgap-base-0', 1 << 20), makeLayer('airgap-base-1', 1 << 20)];
  const image = (name: string, layers: number, b: number, format: 'docker' | 'oci' = 'oci'): Manifest =>
    makeImage({ format, layers: [base[b]!, ...Array.from({ length: layers }, (_, i) => makeLayer(`${name}-${i}`, 512 << 10))] });
  const multi = (name: string): Manifest =>
    makeIndex({ format: 'oci', children: (['amd64', 'arm64'] as const).map((architecture) => makeImage({ format: 'oci', layers: [base[0]!, makeLayer(`${name}-${architecture}`, 256 << 10)], platform: { os: 'linux', architecture } })) });
  const n = [
    { repo: 'rel/api', tag: '1.0', image: image('api-1.0', 2, 0) },
    { repo: 'rel/web', tag: '1.0', image: image('web-1.0', 1, 1, 'docker') },
    { repo: 'rel/agent', tag: '1.0', image: multi('agent-1.0') },
  ];
  const n1 = [
    { repo: 'rel/api', tag: '1.1', image: image('api-1.1', 2, 0) },
    { repo: 'rel/web', tag: '1.1', image: image('web-1.1', 1, 1, 'docker') },
    { repo: 'rel/agent', tag: '1.1', image: multi('agent-1.1') },
    { repo: 'rel/web', tag: 'stable', image: n[1]!.image },
  ];
  pushes.push(...n, ...n1);
  await writeStorage(near(), pushes);
  releaseN.push(...n.map((p) => `${p.repo}:${p.tag}`));
  releaseN1.push(...n1.map((p) => `${p.repo}:${p.tag}`));
  const blobs = (ps: StoragePush[]): Map<string, number> => new Map(ps.flatMap((p) => [...manifestsOf(p.image), ...blobsOf(p.image)].map((b) => [b.digest, b.size] as const)));
  const had = blobs(n);
  for (const [d, size] of blobs(n1)) if (!had.has(d)) newBytes += size;
});

after(async () => {
  await t.cleanup();
});

const served = (refs: string[]): Served[] => refs.map((name) => ({ name, digest: pushes.find((p) => `${p.repo}:${p.tag}` === name)!.image.digest }));

test('air gap: release N whole, then N+1 against the far side inventory in volumes through a pipe; the registry serves both releases', async () => {
  const listN = await writeListFile(t.dir, releaseN);
  const listN1 = await writeListFile(t.dir, releaseN1);

  // Release N: a complete bundle, applied from its file.
  sh(`$REGFS bundle "${listN}" "${near()}" "${t.dir}/n.tar" && $REGFS apply "${t.dir}/n.tar" "${far()}"`);

  // The far side's inventory, on stdout; N+1 bundled against it, in volumes of 1 MiB.
  sh(`$REGFS inventory "${far()}" > "${t.dir}/have.inv"`);
  const out = sh(`$REGFS bundle "${listN1}" "${near()}" "${t.dir}/n1.tar" --have "${t.dir}/have.inv" --split 1M --json`);
  const doc = JSON.parse(out) as { inventory: string; plan: { volumes: string[]; bytesCarried: number; size: number } };
  const inv = await readFile(join(t.dir, 'have.inv'));
  assert.equal(doc.inventory, `sha256:${execFileSync('sha256sum', { input: inv, encoding: 'utf8' }).split(' ')[0]}`);
  const volumes = (await readdir(t.dir)).filter((f) => f.startsWith('n1.tar.')).sort();
  assert.ok(volumes.length >= 2, `volumes: ${volumes.join(' ')}`);
  assert.deepEqual(volumes.map((v) => join(t.dir, v)), doc.plan.volumes);

  // Only the new blobs, plus metadata under 1% of them.
  assert.equal(doc.plan.bytesCarried, newBytes);
  let total = 0;
  for (const v of volumes) total += (await stat(join(t.dir, v))).size;
  assert.equal(total, doc.plan.size);
  assert.ok(total - newBytes < newBytes / 100, `overhead ${total - newBytes} bytes over ${newBytes} new bytes`);

  sh(`cat "${t.dir}"/n1.tar.* | $REGFS apply - "${far()}"`);
  await assertServed(far(), served([...releaseN, ...releaseN1]), [], join(t.dir, 'judge'));

  // The far side is what extract of both releases writes: the same inventory, byte for byte.
  const both = await writeListFile(t.dir, [...releaseN, ...releaseN1]);
  const extracted = join(t.dir, 'extracted');
  const ex = await runCli(['extract', both, near(), extracted]);
  assert.equal(ex.code, 0, ex.stderr);
  assert.equal(sh(`$REGFS inventory "${far()}"`), sh(`$REGFS inventory "${extracted}"`));

  // Applied again, from the first volume's name: nothing changes.
  const before = await snapshotTree(far());
  sh(`$REGFS apply "${t.dir}/n1.tar.000" "${far()}"`);
  const afterApply = await snapshotTree(far());
  for (const [path, what] of before) if (!what.startsWith('dir')) assert.equal(afterApply.get(path), what, path);
  assert.equal(afterApply.size, before.size);
});
