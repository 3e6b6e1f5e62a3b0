/**
 * The hashing rows of `npm run bench` alone, for work on from-oci and from-dir: 200 images with
 * one 2 MiB layer each, exported by to-dir, laid out as an OCI layout directory and a tar of
 * it, then imported with verification, each row beside `sha256sum` over the same bytes, the
 * runs of each row interleaved with those of its floor. See docs/performance.md.
 *
 *   node --import tsx scripts/bench/oci.ts [--runs 5] [--dir DIR] [--images 200] [--cli dist/cli/main.js ...]
 *
 * On a disk the output's directories and link files cost more than the hashing (the registry's
 * layout makes about 19 directories an image), and `sha256sum` makes none: each row also gets
 * the cost of the same metadata alone, the output of a first run replayed in a synchronous
 * Node loop (scripts/bench/floor.mjs: its directories made, its link files written, its blob
 * data hard-linked from the input), so that `sha256sum + replay` is the floor of the whole.
 *
 * `--cli` may be given several times (a build of another commit copied inside this checkout,
 * so that it finds the same node_modules): each is measured in turn within every run, so that
 * two builds are compared under the same load. Prints the load average before and after.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ociLayoutFromExport, tarLayout } from '../lib/oci-from-export.js';
import { writeBigStore } from './store.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    dir: { type: 'string', default: join(tmpdir(), 'regfs-bench-oci') },
    images: { type: 'string', default: '200' },
    cli: { type: 'string', multiple: true },
    rows: { type: 'string', default: 'dir,oci-dir,oci-tar' },
  },
});
const runs = Number(args.runs);
const images = Number(args.images);
const clis = (args.cli ?? [fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))]).map((c) => resolve(c));
const base = args.dir;
const LAYER = 2 << 20;
const FLOOR = fileURLToPath(new URL('./floor.mjs', import.meta.url));

/**
 * The replay of an output's metadata (floor.mjs ops): its directories, its small files with their
 * content, each `data` file hard-linked from a file of the same bytes in `blobDir` (named by hex).
 */
function replayOps(out: string, blobDir: string, target: string): string {
  const ops = { dirs: [] as string[], links: [] as Array<[string, string]>, files: [] as Array<[string, string]> };
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      const rel = relative(out, p);
      if (e.isDirectory()) {
        ops.dirs.push(join(target, rel));
        walk(p);
      } else if (e.name === 'data') ops.links.push([join(blobDir, dir.slice(dir.lastIndexOf('/') + 1)), join(target, rel)]);
      else ops.files.push([join(target, rel), readFileSync(p, 'utf8')]);
    }
  };
  walk(out);
  const file = join(base, `replay-${ops.dirs.length}.json`);
  writeFileSync(file, JSON.stringify(ops));
  return file;
}

function replay(opsFile: string, target: string): number {
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target);
  execFileSync('sync');
  const r = execFileSync(process.execPath, [FLOOR, opsFile], { encoding: 'utf8' });
  rmSync(target, { recursive: true, force: true });
  return (JSON.parse(r) as { seconds: number }).seconds;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function load(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** The command's own seconds (its --json `seconds`). */
function regfs(cli: string, argv: string[]): number {
  execFileSync('sync');
  const r = spawnSync(process.execPath, [cli, ...argv, '--json'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr.slice(-2000)}`);
  return (JSON.parse(r.stdout) as { seconds: number }).seconds;
}

function sha256sum(list: string): number {
  execFileSync('sync');
  const t = performance.now();
  execFileSync('sh', ['-c', `xargs -0 -a "${list}" sha256sum > /dev/null`]);
  return (performance.now() - t) / 1000;
}

async function prepare(): Promise<{ bigDir: string; layout: string; tar: string; lists: Record<string, string> }> {
  mkdirSync(base, { recursive: true });
  const store = join(base, `store-${images}x${LAYER}`);
  const bigDir = join(base, 'dir');
  const layout = join(base, 'layout');
  const tar = join(base, 'layout.tar');
  const marker = join(base, 'built.json');
  const key = JSON.stringify({ images, LAYER });
  if (!existsSync(marker) || readFileSync(marker, 'utf8') !== key) {
    for (const p of [store, bigDir, layout, tar]) rmSync(p, { recursive: true, force: true });
    process.stderr.write(`building ${images} images with 2 MiB layers in ${base}…\n`);
    const refs = await writeBigStore(store, images, LAYER);
    const list = join(base, 'refs.list');
    writeFileSync(list, `${refs.join('\n')}\n`);
    execFileSync(process.execPath, [clis[0]!, 'to-dir', list, store, bigDir], { stdio: 'inherit' });
    await ociLayoutFromExport(bigDir, layout);
    tarLayout(layout, tar);
    writeFileSync(marker, key);
  }
  const blobs = (dir: string): string[] => execFileSync('find', [dir, '-type', 'f', '-regextype', 'posix-extended', '-regex', '.*/[0-9a-f]{64}'], { encoding: 'utf8', maxBuffer: 1 << 28 }).trim().split('\n');
  const lists: Record<string, string> = {
    dir: join(base, 'dir-list'),
    'oci-dir': join(base, 'layout-list'),
    'oci-tar': join(base, 'tar-list'),
  };
  writeFileSync(lists.dir!, blobs(bigDir).join('\0'));
  writeFileSync(lists['oci-dir']!, readdirSync(join(layout, 'blobs', 'sha256')).map((n) => join(layout, 'blobs', 'sha256', n)).join('\0'));
  writeFileSync(lists['oci-tar']!, tar);
  return { bigDir, layout, tar, lists };
}

async function main(): Promise<void> {
  const { bigDir, layout, tar, lists } = await prepare();
  const out = join(base, 'out');
  const rows: Record<string, { name: string; argv: string[] }> = {
    dir: { name: `from-dir ${images} images, 2 MiB layers (verify)`, argv: ['from-dir', bigDir, out] },
    'oci-dir': { name: `from-oci ${images} images, 2 MiB layers, directory (verify)`, argv: ['from-oci', layout, out] },
    'oci-tar': { name: `from-oci ${images} images, 2 MiB layers, tar (verify)`, argv: ['from-oci', tar, out] },
  };
  const chosen = args.rows.split(',');
  const times = new Map<string, number[]>();
  const add = (k: string, s: number): void => void times.set(k, [...(times.get(k) ?? []), s]);
  const target = join(base, 'replay');
  const replays = new Map<string, string>();
  const before = load();
  for (let i = 0; i < runs; i++) {
    for (const row of chosen) {
      for (const cli of clis) {
        rmSync(out, { recursive: true, force: true });
        add(`${row}\t${cli}`, regfs(cli, rows[row]!.argv));
        if (!replays.has(row)) replays.set(row, replayOps(out, join(layout, 'blobs', 'sha256'), target));
      }
      add(`${row}\tsha256sum`, sha256sum(lists[row]!));
      add(`${row}\treplay`, replay(replays.get(row)!, target));
    }
  }
  rmSync(out, { recursive: true, force: true });
  console.log(`load average before: ${before}, after: ${load()}; ${runs} runs, medians`);
  for (const row of chosen) {
    const floor = median(times.get(`${row}\tsha256sum`)!);
    const meta = median(times.get(`${row}\treplay`)!);
    console.log(`${rows[row]!.name}: sha256sum ${floor.toFixed(3)} s, metadata replay ${meta.toFixed(3)} s`);
    for (const cli of clis) {
      const all = times.get(`${row}\t${cli}`)!;
      const s = median(all);
      console.log(`  [${cli}] ${s.toFixed(3)} s: ${(s / floor).toFixed(2)}x sha256sum, ${(s / (floor + meta)).toFixed(2)}x sha256sum + replay  (runs: ${all.map((x) => x.toFixed(2)).join(' ')})`);
    }
  }
}

await main();
