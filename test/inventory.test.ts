/**
 * `regfs inventory`: the version-1 inventory (docs/bundle.md), judged by the real tools. Its
 * repositories, tags and manifests must be exactly what docker-registry 2.8.2 serves from
 * the same storage (catalog, tags/list, manifest HEADs), its blobs exactly the data files
 * the registry reads there (`find -L`), and for an OCI layout skopeo wrote, what the
 * layout's index.json and blobs/ hold; then determinism, identity, hostile trees, `-o`
 * safety and pipes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '../scripts/lib/registry-server.js';
import { skopeoCopy } from '../scripts/lib/skopeo.js';
import { checkJsonDocument } from '../scripts/lib/json-schemas.js';
import { writeStore, DEFAULT_SHAPE } from '../scripts/bench/store.js';
import { inventory } from '../src/index.js';
import { REGFS_BIN, runCli } from './helpers/cli.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { copyTree, snapshotTree, tempDir } from './helpers/tree.js';

const V2 = 'docker/registry/v2';
const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.docker.distribution.manifest.v1+json',
].join(', ');

let dir: string;
let cleanup: () => Promise<void>;

before(async () => {
  ({ dir, cleanup } = await tempDir('regfs-inventory-'));
});
after(async () => {
  await cleanup();
});

const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The text of an inventory, from its parts, in the order docs/bundle.md gives. */
function inventoryText(blobs: Map<string, number>, repos: Map<string, { tags: Map<string, string>; manifests: Set<string> }>): string {
  let s = 'regfs-inventory 1\n';
  for (const d of [...blobs.keys()].sort()) s += `blob ${d} ${blobs.get(d)!}\n`;
  for (const name of [...repos.keys()].sort()) {
    const r = repos.get(name)!;
    s += `repo ${name}\n`;
    for (const t of [...r.tags.keys()].sort()) s += `tag ${name} ${t} ${r.tags.get(t)!}\n`;
    for (const d of [...r.manifests].sort()) s += `manifest ${name} ${d}\n`;
  }
  return s;
}

/** Blob data files as the registry reads them: `find -L` (symbolic links followed) of regular files at blobs/<alg>/<xx>/<hex>/data. */
function blobsByFind(v2: string): Map<string, number> {
  const out = new Map<string, number>();
  const text = execFileSync('find', ['-L', join(v2, 'blobs'), '-type', 'f', '-name', 'data', '-printf', '%s %P\\n'], { encoding: 'utf8' });
  for (const line of text.split('\n')) {
    const m = /^(\d+) (sha256)\/([0-9a-f]{2})\/([0-9a-f]{64})\/data$/.exec(line);
    if (m !== null && m[4]!.startsWith(m[3]!)) out.set(`${m[2]}:${m[4]}`, Number(m[1]));
  }
  return out;
}

/**
 * What the registry serves from `root`, as an inventory: every repository of its catalog
 * that answers tags/list, each tag whose manifest HEAD answers 200 (with the digest it
 * answers), and each revision directory's digest whose manifest HEAD by digest answers 200.
 */
async function servedInventory(root: string): Promise<string> {
  const reg = await startRegistry({ root, readOnly: true });
  try {
    const get = (path: string, method = 'GET'): Promise<Response> => fetch(`http://${reg.host}${path}`, { method, headers: { Accept: ACCEPT } });
    const catalog = ((await (await get('/v2/_catalog?n=1000')).json()) as { repositories: string[] }).repositories;
    const repos = new Map<string, { tags: Map<string, string>; manifests: Set<string> }>();
    for (const name of catalog) {
      const list = await get(`/v2/${name}/tags/list`);
      if (list.status !== 200) {
        await list.body?.cancel();
        continue;
      }
      const r = { tags: new Map<string, string>(), manifests: new Set<string>() };
      repos.set(name, r);
      for (const tag of ((await list.json()) as { tags: string[] | null }).tags ?? []) {
        const h = await get(`/v2/${name}/manifests/${encodeURIComponent(tag)}`, 'HEAD');
        if (h.status === 200) r.tags.set(tag, h.headers.get('docker-content-digest')!);
      }
      const revisions = join(root, V2, 'repositories', name, '_manifests/revisions/sha256');
      for (const hex of readdirSync(revisions)) {
        const h = await get(`/v2/${name}/manifests/sha256:${hex}`, 'HEAD');
        if (h.status === 200) r.manifests.add(`sha256:${hex}`);
      }
    }
    return inventoryText(blobsByFind(join(root, V2)), repos);
  } finally {
    await reg.stop();
  }
}

test('inventory: the fixture, byte for byte what docker-registry 2.8.2 serves from it and the blob files it reads', async () => {
  const root = join(dir, 'fixture');
  await copyTree(FIXTURE_ROOT, root);
  const want = await servedInventory(root);
  const r = await runCli(['inventory', root]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, want);
  assert.match(want, /^tag team\/app v1 sha256:/m, 'the judge saw tags');
  assert.match(want, /^manifest multiarch\/tool sha256:/m, 'the judge saw manifests');
  assert.match(r.stderr, /^inventory sha256:[0-9a-f]{64}: \d+ blobs \(.*\), 8 repositories, \d+ tags, \d+ manifests; .* to standard output; [\d.]+ s\n$/);
});

test('inventory: a damaged tree, still exactly what the registry serves: symlinked blob, temp files of a killed run, a deleted manifest tag, a manifest linked in _layers, a malformed link, a bad name', async () => {
  const root = join(dir, 'damaged');
  await copyTree(FIXTURE_ROOT, root);
  const v2 = join(root, V2);
  const first = (await runCli(['inventory', root])).stdout;
  const tagOf = (repo: string, tag: string): string => readFileSync(join(v2, 'repositories', repo, '_manifests/tags', tag, 'current/link'), 'utf8');
  // A blob's data moved outside and linked back by a symbolic link: the registry follows it.
  const layer = /^blob (sha256:([0-9a-f]{64})) 3607$/m.exec(first)!;
  const dataPath = join(v2, 'blobs/sha256', layer[2]!.slice(0, 2), layer[2]!, 'data');
  mkdirSync(join(dir, 'elsewhere'), { recursive: true });
  renameSync(dataPath, join(dir, 'elsewhere', 'layer'));
  symlinkSync(join(dir, 'elsewhere', 'layer'), dataPath);
  // Temp files of a killed run: a blob directory holding only one, one beside a revision, a tag being staged.
  const fake = 'ab'.repeat(32);
  mkdirSync(join(v2, 'blobs/sha256/ab', fake), { recursive: true });
  writeFileSync(join(v2, 'blobs/sha256/ab', fake, '.data.123-0a1b2c3d-0.regfs-tmp'), 'partial');
  mkdirSync(join(v2, 'repositories/team/app/_manifests/revisions/sha256', fake), { recursive: true });
  writeFileSync(join(v2, 'repositories/team/app/_manifests/revisions/sha256', fake, '.link.123-0a1b2c3d-1.regfs-tmp'), `sha256:${fake}`);
  mkdirSync(join(v2, 'repositories/team/app/_manifests/tags/.v9.123-0a1b2c3d-2.regfs-tmp/current'), { recursive: true });
  writeFileSync(join(v2, 'repositories/team/app/_manifests/tags/.v9.123-0a1b2c3d-2.regfs-tmp/current/link'), tagOf('team/app', 'v1'));
  // A manifest deleted under its tag: the revision link gone, the tag link left.
  const v2Digest = tagOf('team/app', 'v2');
  unlinkSync(join(v2, 'repositories/team/app/_manifests/revisions/sha256', v2Digest.slice(7), 'link'));
  // A tagged manifest linked only in _layers (as 2.1.0 linked manifests): 2.x still serves it.
  const worker = tagOf('team/app/worker', '1.0').slice(7);
  mkdirSync(join(v2, 'repositories/team/app/worker/_layers/sha256', worker), { recursive: true });
  renameSync(join(v2, 'repositories/team/app/worker/_manifests/revisions/sha256', worker, 'link'), join(v2, 'repositories/team/app/worker/_layers/sha256', worker, 'link'));
  // A tag link with a trailing newline: the registry answers 500.
  writeFileSync(join(v2, 'repositories/team/app/_manifests/tags/edge/current/link'), `${tagOf('team/app', 'edge')}\n`);
  // A repository name no registry serves.
  await copyTree(join(v2, 'repositories/tools/nomediatype'), join(v2, 'repositories/Bad_Name'));

  const want = await servedInventory(root);
  const before = await snapshotTree(root);
  const r = await runCli(['inventory', root]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, want);
  assert.deepEqual(await snapshotTree(root), before, 'the source is not changed');
  // What the judge's answer means, spelled out.
  assert.match(r.stdout, new RegExp(`^blob ${layer[1]} 3607$`, 'm'), 'the symlinked blob is listed, with its size');
  assert.doesNotMatch(r.stdout, new RegExp(fake), 'no temp file is a blob, a manifest or a tag');
  assert.doesNotMatch(r.stdout, /^tag team\/app (v2|edge) /m);
  assert.doesNotMatch(r.stdout, /Bad_Name/);
  assert.match(r.stdout, new RegExp(`^tag team/app/worker 1\\.0 sha256:${worker}$`, 'm'), 'the tag of the manifest served through _layers');
  assert.match(r.stdout, new RegExp(`^manifest team/app/worker sha256:${worker}$`, 'm'), 'the manifest served through _layers');
  assert.match(r.stderr, new RegExp(`warning: tag team/app:v2 names ${v2Digest}, which the repository does not hold`));
  assert.match(r.stderr, /warning: malformed link ".*tags\/edge\/current\/link": it has white space around the digest.*; left out of the inventory/);
});

test('inventory: a regfs run writing the storage now is named in a warning; the inventory is made all the same', async () => {
  const root = join(dir, 'locked');
  await copyTree(FIXTURE_ROOT, root);
  const clean = await runCli(['inventory', root]);
  await writeFile(join(root, V2, '.regfs.lock'), JSON.stringify({ pid: process.pid, host: hostname(), command: 'extract', started: new Date().toISOString() }));
  const r = await runCli(['inventory', root]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, clean.stdout);
  assert.match(r.stderr, new RegExp(`^warning: regfs extract \\(pid ${process.pid} on ${hostname()}\\) is writing this storage now`, 'm'));
  // A dead owner on this host (a killed run) writes nothing: no warning.
  await writeFile(join(root, V2, '.regfs.lock'), JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), command: 'extract', started: new Date().toISOString() }));
  assert.doesNotMatch((await runCli(['inventory', root])).stderr, /warning/);
});

test('inventory: a FIFO where blob data goes is left out with a warning, never opened', async () => {
  const root = join(dir, 'fifo');
  await copyTree(FIXTURE_ROOT, root);
  const v2 = join(root, V2);
  const hex = /^blob sha256:([0-9a-f]{64}) 3607$/m.exec((await runCli(['inventory', root])).stdout)![1]!;
  const data = join(v2, 'blobs/sha256', hex.slice(0, 2), hex, 'data');
  unlinkSync(data);
  execFileSync('mkfifo', [data]);
  const r = await runCli(['inventory', root], { timeoutMs: 30_000 });
  assert.equal(r.killed, false, 'no hang');
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, new RegExp(hex));
  assert.match(r.stderr, /warning: blob data ".*" is a FIFO, not a regular file; left out of the inventory/);
});

test('inventory: an OCI layout skopeo wrote gives its index.json names and its blobs', async () => {
  const reg = await startRegistry({ root: FIXTURE_ROOT, readOnly: true });
  const layout = join(dir, 'layout');
  try {
    await skopeoCopy(`docker://${reg.host}/multiarch/tool:1.0-oci`, `oci:${layout}:multiarch/tool:1.0-oci`, { all: true });
    await skopeoCopy(`docker://${reg.host}/team/app:v1`, `oci:${layout}:team/app:v1`, { format: 'oci' });
    await skopeoCopy(`docker://${reg.host}/team/app:v2`, `oci:${layout}:team/app:v2`, { format: 'oci' });
  } finally {
    await reg.stop();
  }
  const blobs = new Map<string, number>();
  for (const hex of readdirSync(join(layout, 'blobs/sha256'))) blobs.set(`sha256:${hex}`, statSync(join(layout, 'blobs/sha256', hex)).size);
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> };
  const repos = new Map<string, { tags: Map<string, string>; manifests: Set<string> }>();
  for (const e of index.manifests) {
    const ref = e.annotations['org.opencontainers.image.ref.name']!;
    const at = ref.lastIndexOf(':');
    const [repo, tag] = [ref.slice(0, at), ref.slice(at + 1)];
    if (!repos.has(repo)) repos.set(repo, { tags: new Map(), manifests: new Set() });
    repos.get(repo)!.tags.set(tag, e.digest);
    repos.get(repo)!.manifests.add(e.digest);
  }
  assert.equal(index.manifests.length, 3);
  const r = await runCli(['inventory', layout]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, inventoryText(blobs, repos));
  assert.match(r.stderr, /: \d+ blobs .*, 2 repositories, 3 tags, 3 manifests;/);
});

test('inventory: a hostile OCI layout: unnamed, bare-tag, pinned-to-another-digest and blobless entries, a tag named twice, a symlinked and a FIFO blob', async () => {
  const layout = join(dir, 'hostile-layout');
  await mkdir(join(layout, 'blobs/sha256'), { recursive: true });
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const blob = async (text: string): Promise<string> => {
    const d = sha256(text);
    await writeFile(join(layout, 'blobs/sha256', d.slice(7)), text);
    return d;
  };
  const [a, b, c, linked] = [await blob('manifest a'), await blob('manifest b'), await blob('manifest c'), 'sha256:' + createHash('sha256').update('linked').digest('hex')];
  await writeFile(join(dir, 'linked-blob'), 'linked');
  symlinkSync(join(dir, 'linked-blob'), join(layout, 'blobs/sha256', linked.slice(7)));
  const fifo = sha256('fifo');
  execFileSync('mkfifo', [join(layout, 'blobs/sha256', fifo.slice(7))]);
  const absent = sha256('absent');
  const entry = (digest: string, annotations?: Record<string, string>): object => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 10, ...(annotations === undefined ? {} : { annotations }) });
  const ref = (name: string): Record<string, string> => ({ 'org.opencontainers.image.ref.name': name });
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        entry(a, ref('team/app:v1')),
        entry(b, ref('team/app:v1')), // the same tag, another manifest: which one is meant?
        entry(b, ref('team/app:v2')),
        entry(c, ref(`team/app@${c}`)),
        entry(c, ref(`team/other@${a}`)), // pinned to another digest
        entry(a, ref('v3')), // a bare tag: no repository
        entry(b), // no name
        entry(absent, ref('team/gone:1')), // no blob
        entry(linked, { 'io.containerd.image.name': 'docker.io/library/linked:1' }),
      ],
    }),
  );
  const r = await runCli(['inventory', layout], { timeoutMs: 30_000 });
  assert.equal(r.killed, false, 'the FIFO is never opened');
  assert.equal(r.code, 0, r.stderr);
  const blobs = new Map([a, b, c, linked].map((d) => [d, d === linked ? 6 : 10] as const));
  const want = inventoryText(
    blobs,
    new Map([
      ['team/app', { tags: new Map([['v2', b]]), manifests: new Set([a, b, c]) }],
      // The name as the layout gives it, its registry host kept (as from-oci keeps it without --strip-registry).
      ['docker.io/library/linked', { tags: new Map([['1', linked]]), manifests: new Set([linked]) }],
    ]),
  );
  assert.equal(r.stdout, want);
  for (const why of [/team\/app:v1 names two manifests/, /is named "team\/other@sha256:[0-9a-f]+", another digest/, /bare tag "v3"/, /has no name/, /the layout has no blob/, /is a FIFO, not a regular file/]) {
    assert.match(r.stderr, why);
  }
});

test('inventory: deterministic bytes; the identity is the sha256 of the file; -o, stdout, --json and the library agree', async () => {
  const a = join(dir, 'a.inv');
  const b = join(dir, 'b.inv');
  const ra = await runCli(['inventory', FIXTURE_ROOT, '-o', a, '--json']);
  assert.equal(ra.code, 0, ra.stderr);
  const doc = checkJsonDocument('inventory', ra.stdout, 0);
  const rb = await runCli(['inventory', join(FIXTURE_ROOT, V2), '-o', b]);
  assert.equal(rb.code, 0, rb.stderr);
  const bytes = await readFile(a);
  assert.deepEqual(await readFile(b), bytes, 'two runs (root and its v2) write the same bytes');
  assert.equal(doc['id'], sha256(bytes));
  assert.equal(doc['size'], bytes.length);
  assert.equal(doc['output'], a);
  assert.equal(doc['format'], 'registry');
  assert.equal(doc['repositories'], 8);
  const lines = bytes.toString('utf8').split('\n');
  assert.equal(doc['blobs'], lines.filter((l) => l.startsWith('blob ')).length);
  assert.equal(doc['bytes'], lines.filter((l) => l.startsWith('blob ')).reduce((n, l) => n + Number(l.split(' ')[2]), 0));
  assert.equal(doc['tags'], lines.filter((l) => l.startsWith('tag ')).length);
  assert.equal(doc['manifests'], lines.filter((l) => l.startsWith('manifest ')).length);
  assert.match(rb.stderr, new RegExp(`^inventory ${doc['id'] as string}: .* to ${b}; `));
  const out = await runCli(['inventory', FIXTURE_ROOT]);
  assert.equal(out.stdout, bytes.toString('utf8'));
  const lib = await inventory({ root: FIXTURE_ROOT });
  assert.equal(lib.id, doc['id']);
  assert.equal(lib.output, null);
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('regfs-tmp')), [], 'no temp file left beside the output');
});

test('inventory: -o through a symbolic link replaces the link, never writes its target', async () => {
  const victim = join(dir, 'victim');
  const link = join(dir, 'link.inv');
  await writeFile(victim, 'keep');
  symlinkSync(victim, link);
  const r = await runCli(['inventory', FIXTURE_ROOT, '-o', link]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await readFile(victim, 'utf8'), 'keep');
  assert.ok(statSync(link, { throwIfNoEntry: false }) !== undefined && !execFileSync('stat', ['-c', '%F', link], { encoding: 'utf8' }).includes('symbolic'));
  assert.match(await readFile(link, 'utf8'), /^regfs-inventory 1\n/);
});

test('inventory: -o naming a FIFO or a device is refused (OUTPUT_NOT_FILE), never replaced by the file nor written into', async () => {
  const fifo = join(dir, 'out.fifo');
  execFileSync('mkfifo', [fifo]);
  const specials = [fifo];
  // A device node can be made only by root (CI runs as root); /dev/null itself is never risked.
  const device = join(dir, 'out.dev');
  try {
    execFileSync('mknod', [device, 'c', '1', '3'], { stdio: 'ignore' });
    specials.push(device);
  } catch {
    // not root: the FIFO alone
  }
  for (const out of specials) {
    const kind = execFileSync('stat', ['-c', '%F', out], { encoding: 'utf8' });
    const r = await runCli(['inventory', FIXTURE_ROOT, '-o', out]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[OUTPUT_NOT_FILE\]/);
    assert.equal(execFileSync('stat', ['-c', '%F', out], { encoding: 'utf8' }), kind, `${out} is still what it was`);
  }
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('regfs-tmp')), [], 'no temp file left beside the output');
});

test('inventory: -o inside ROOT (directly, through a symbolic link, in a layout) is refused and nothing is written', async () => {
  const root = join(dir, 'inside');
  await copyTree(FIXTURE_ROOT, root);
  symlinkSync(join(root, V2, 'blobs'), join(dir, 'into-root'));
  const before = await snapshotTree(root);
  for (const out of [join(root, 'x.inv'), join(root, V2, 'repositories', 'x.inv'), join(dir, 'into-root', 'x.inv')]) {
    const r = await runCli(['inventory', root, '-o', out]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /\[OUTPUT_IN_SOURCE\]/);
    const viaV2 = await runCli(['inventory', join(root, V2), '-o', out]);
    assert.equal(viaV2.code, 1, viaV2.stderr);
  }
  assert.deepEqual(await snapshotTree(root), before);
  const layout = join(dir, 'oci-for-out');
  await mkdir(join(layout, 'blobs/sha256'), { recursive: true });
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(layout, 'index.json'), '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}');
  const r = await runCli(['inventory', layout, '-o', join(layout, 'blobs', 'x.inv')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /\[OUTPUT_IN_SOURCE\]/);
  const empty = await runCli(['inventory', layout]);
  assert.equal(empty.stdout, 'regfs-inventory 1\n');
});

test('inventory: ROOT missing, a file or neither storage nor layout is NOT_REGISTRY; --json without -o is a usage error', async () => {
  const file = join(dir, 'a-file');
  await writeFile(file, 'team/app:v1\n');
  const plain = join(dir, 'plain');
  await mkdir(plain);
  for (const [root, why] of [
    [join(dir, 'nosuch'), /no such directory/],
    [file, /it is a file, not a directory/],
    [plain, /holds no docker\/registry\/v2/],
  ] as const) {
    const r = await runCli(['inventory', root]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /neither registry storage nor an OCI image layout/);
    assert.match(r.stderr, why);
    assert.match(r.stderr, /\[NOT_REGISTRY\]/);
  }
  const usage = await runCli(['inventory', FIXTURE_ROOT, '--json']);
  assert.equal(usage.code, 2);
  const doc = checkJsonDocument('inventory', usage.stdout, 2);
  assert.equal((doc['error'] as { code: string }).code, 'USAGE');
  assert.match((doc['error'] as { message: string }).message, /-o FILE/);
  const failed = checkJsonDocument('inventory', (await runCli(['inventory', plain, '-o', join(dir, 'never.inv'), '--json'])).stdout, 1);
  assert.equal((failed['error'] as { code: string }).code, 'NOT_REGISTRY');
  assert.equal(statSync(join(dir, 'never.inv'), { throwIfNoEntry: false }), undefined);
  // -o naming a directory, or a file in a directory that does not exist: refused before the walk.
  for (const out of [plain, join(dir, 'nosuch-dir', 'x.inv')]) {
    const r = await runCli(['inventory', FIXTURE_ROOT, '-o', out]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[OUTPUT_UNWRITABLE\]/);
  }
  assert.deepEqual(readdirSync(plain), []);
});

test('inventory: `set -o pipefail; regfs inventory ROOT | head -1` succeeds quietly, and the run still ends with its line', async () => {
  const root = join(dir, 'many');
  await writeStore(root, { ...DEFAULT_SHAPE, repositories: 150 });
  const full = await runCli(['inventory', root]);
  assert.ok(full.stdout.length > 1 << 17, `the inventory (${full.stdout.length} bytes) must outgrow the pipe`);
  const r = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    const sh = spawn('bash', ['-c', 'set -o pipefail; "$0" "$1" inventory "$2" | head -1; echo "status ${PIPESTATUS[*]}"', process.execPath, REGFS_BIN, root], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    sh.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    sh.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    sh.on('error', reject);
    sh.on('close', () => resolve({ stdout, stderr }));
  });
  assert.equal(r.stdout, 'regfs-inventory 1\nstatus 0 0\n');
  assert.equal(r.stderr, full.stderr.replace(/[\d.]+ s\n$/, r.stderr.match(/[\d.]+ s\n$/)![0]), 'the same line, nothing more');
  assert.doesNotMatch(r.stderr, /EPIPE|internal error|^\s+at /m);
});
