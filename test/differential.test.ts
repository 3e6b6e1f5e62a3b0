/**
 * The differential harness (scripts/fuzz) on a fixed set of seeds: random storage states
 * pushed into docker-registry 2.8.2, damaged, and regfs judged against the registry's own
 * answers (docs/testing.md). Every seed must show zero discrepancies. Also checks the
 * harness's own parts: the pusher's upper-case names, the oracle's eye for a difference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, readlink, truncate } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeImage, makeLayer } from '../scripts/lib/images.js';
import { startRegistry } from '../scripts/lib/registry-server.js';
import { damage } from '../scripts/fuzz/damage.js';
import { generate } from '../scripts/fuzz/generate.js';
import { formatKinds, parseKinds } from '../scripts/fuzz/kinds.js';
import { diffProbes, probe } from '../scripts/fuzz/oracle.js';
import { Pusher } from '../scripts/fuzz/pusher.js';
import { reproduction, runSeed } from '../scripts/fuzz/run.js';
import { copyTree } from './helpers/tree.js';
import { prng, scratchDir } from './helpers/crash.js';

/** Every kind of trouble the generator makes (kinds.ts; docs/testing.md). */
const KINDS = parseKinds('all');
const SEEDS = Array.from({ length: 40 }, (_, i) => 1 + i);
const LISTS = 2;

for (const seed of SEEDS) {
  test(`differential: seed ${seed} (${formatKinds(KINDS)})`, async () => {
    const s = await scratchDir('regfs-differential-');
    try {
      const r = await runSeed(seed, { kinds: KINDS, lists: LISTS, dir: join(s.dir, 'seed'), keep: false });
      assert.ok(r.checks > 20, `only ${r.checks} checks ran`);
      const lines = [...r.state, ...r.lists.map((l, i) => `list ${i}: ${l.join(' | ')}`), ...r.discrepancies.map((d) => `DISCREPANCY [${d.check}] ${d.detail}`)];
      assert.deepEqual(r.discrepancies, [], `${lines.join('\n')}\nreproduce: ${reproduction(seed, KINDS, LISTS)}`);
    } finally {
      await s.cleanup();
    }
  });
}

test('a seed makes the same state every time: the same pushes, paths, links and damage', async () => {
  const s = await scratchDir('regfs-differential-');
  try {
    const kinds = parseKinds('all,-fifo');
    const make = async (name: string): Promise<{ steps: unknown; damage: string[]; tree: Map<string, string> }> => {
      const rand = prng(1);
      const root = join(s.dir, name, 'src');
      const gen = await generate(1, root, kinds, rand);
      await mkdir(join(s.dir, name, 'outside'));
      const done = await damage(root, join(s.dir, name, 'outside'), kinds, rand);
      return { steps: gen.steps, damage: done, tree: await linkTree(root) };
    };
    const a = await make('a');
    const b = await make('b');
    assert.ok((a.steps as Array<{ what: string }>).some((x) => x.what === 'schema1'), 'seed 1 pushes schema1 (skopeo signs it anew each time)');
    assert.deepEqual(b.steps, a.steps);
    assert.deepEqual(b.damage, a.damage);
    assert.deepEqual(b.tree, a.tree);
  } finally {
    await s.cleanup();
  }
});

/** Every path under `root` with its type, and for link files and symlinks what they hold. */
async function linkTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((x, y) => (x.name < y.name ? -1 : 1))) {
      const p = join(dir, e.name);
      const rel = relative(root, p);
      if (e.isDirectory()) {
        out.set(rel, 'dir');
        await walk(p);
      } else if (e.isSymbolicLink()) out.set(rel, `symlink ${await readlink(p)}`);
      else if (e.isFile()) out.set(rel, e.name === 'link' ? `link ${await readFile(p, 'latin1')}` : 'file');
      else out.set(rel, 'other');
    }
  };
  await walk(root);
  return out;
}

test('the registry accepts an upper-case first name component that skopeo refuses; the pusher pushes it', async () => {
  const s = await scratchDir('regfs-differential-');
  const reg = await startRegistry({ root: join(s.dir, 'root') });
  try {
    const image = makeImage({ format: 'oci', layers: [makeLayer('upper')] });
    await new Pusher(reg.host).pushManifest('Team/app', image, 'v1', prng(1));
    const p = await probe(reg.host, 'Team/app', 'v1');
    assert.equal(p.digest, image.digest);
    assert.ok(p.full, p.why);
  } finally {
    await reg.stop();
    await s.cleanup();
  }
});

test('the oracle tells a registry serving a truncated layer from one serving it whole', async () => {
  const s = await scratchDir('regfs-differential-');
  try {
    const a = join(s.dir, 'a');
    const reg = await startRegistry({ root: a });
    const layer = makeLayer('oracle', 4096);
    const image = makeImage({ format: 'docker', layers: [layer] });
    try {
      await new Pusher(reg.host).pushManifest('team/app', image, 'v1', prng(2));
    } finally {
      await reg.stop();
    }
    const b = join(s.dir, 'b');
    await copyTree(a, b);
    const hex = layer.digest.slice('sha256:'.length);
    await truncate(join(b, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'), 100);
    const ask = async (root: string): Promise<Awaited<ReturnType<typeof probe>>> => {
      const r = await startRegistry({ root, readOnly: true });
      try {
        return await probe(r.host, 'team/app', 'v1');
      } finally {
        await r.stop();
      }
    };
    const whole = await ask(a);
    const cut = await ask(b);
    assert.ok(whole.full, whole.why);
    assert.equal(cut.full, false);
    assert.deepEqual(
      diffProbes(whole, cut).map((l) => l.split(': ')[0]),
      [`HEAD blobs team/app/${layer.digest}`, `GET blobs team/app/${layer.digest}`],
    );
    assert.deepEqual(diffProbes(whole, await ask(a)), []);
  } finally {
    await s.cleanup();
  }
});

test('npm run fuzz: one seed, its checks, and the closing count', async () => {
  const r = await new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../scripts/fuzz/main.ts', import.meta.url)), '--seed', '7', '--damage', formatKinds(KINDS), '--lists', '1'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
  assert.equal(r.code, 0, r.stdout);
  assert.match(r.stdout, /^seed 7: \d+ checks, 0 discrepancies, [\d.]+ s \(generate [\d.]+, oracle [\d.]+, ls [\d.]+, list 0 [\d.]+, gc\+rm [\d.]+\)$/m);
  assert.match(r.stdout, /^1 states, \d+ checks, 0 discrepancies in 0 states$/m);
});

test('damage kinds parse: groups, single kinds, removals', () => {
  assert.equal(formatKinds(parseKinds('all')), 'all');
  assert.equal(formatKinds(parseKinds('none')), 'none');
  assert.equal(formatKinds(parseKinds('links,fifo')), 'link-missing,link-empty,link-newline,link-retarget,fifo');
  assert.equal(formatKinds(parseKinds('-upper,-deletes')), 'all,-delete-manifest,-delete-child,-upper-push,-layer-manifest,-upper-rename');
  assert.equal(formatKinds(parseKinds('all,-fifo')), 'all,-fifo');
  for (const spec of ['truncate', 'links,fifo', 'all,-fifo', '-upper,-deletes']) {
    assert.deepEqual(parseKinds(formatKinds(parseKinds(spec))), parseKinds(spec), spec);
  }
  assert.throws(() => parseKinds('bogus'), /unknown damage kind "bogus"/);
});
