/**
 * `npm run bench`: regfs against the floor, at scale. See docs/performance.md.
 *
 *   npm run bench [-- --runs 5] [--dir DIR] [--scale 1] [--no-10x] [--no-large | --only-large | --only-startup | --only-airgap | --only-s3] [--smoke] [--out FILE]
 *
 * Builds (once, then reused) a synthetic store of 3,000 repositories and 15,000 tags, and one
 * ten times larger, under DIR (default /dev/shm if it has the inodes, else the temp directory),
 * then measures each command in a fresh child process, several runs, reporting medians of
 * the command's own `seconds` and its peak RSS (GNU time), beside the floor: the same
 * mkdir, link and small-file writes in a synchronous Node loop, `cp -al` for the blobs, and
 * `sha256sum` over the same bytes for hashing. Writes a table and a JSON result.
 *
 * Then large inputs, each at two sizes ten times apart (linear time means ten times the
 * seconds, bounded memory a peak RSS that grows with the input, not faster): image lists of
 * 100,000 and 1,000,000 lines, all missing and all present; a repository of 10,000 and
 * 100,000 tags (ls, and extract of the whole repository); indexes of 2,000 and 20,000
 * children (the widest the registry's 4 MiB manifest limit allows is about 20,000), and one
 * of 50,000, which is refused. `--no-large` leaves them out; `--only-large` runs them alone.
 *
 * First, and alone with `--only-startup`: start-up (`regfs --version`, `--help`, `ls` of one
 * image) beside `node -e 0`, and a small extract (200 tags) on tmpfs beside `node -e 0`, a C
 * program making the same syscalls (scripts/bench/floor.c, compiled with cc) and the node
 * replay: wall times, taken in turns in the same run, medians.
 *
 * Air-gap bundles (alone with `--only-airgap`): bundle beside `tar -cf` of the same blob
 * files, apply beside `sha256sum` of the bundle plus writing its bytes, a delta bundle's
 * overhead over the new bytes it carries, and bundle and apply of a store of several GiB on
 * disk for their peak RSS.
 *
 * Registries on S3 (alone with `--only-s3`): on a one-node Ceph RADOS Gateway started for the
 * run, the store loaded by regfs (extract of every tag, disk to S3); extract of 186 tags S3 to
 * S3 beside `skopeo sync` of the same tags between two docker-registry 2.8.2 on that server,
 * with the requests each image took; ls and verify of the whole store on S3 from listings,
 * with their request counts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ociLayoutFromExport, tarLayout } from '../lib/oci-from-export.js';
import { pythonInterpreter } from './python.js';
import { MANY_TAGS_REPO, scaled, signedRef, WIDE_INDEX_REF, writeBigStore, writeHugeStore, writeManyTagsStore, writeSignedStore, writeStore, writeWideIndexStore, type StoreShape } from './store.js';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const CLI = here('../../dist/cli/main.js');
const FLOOR = here('./floor.mjs');
const PLAIN_EXTRACT = here('./plain-extract.py');
const PLAIN_EXTRACT_NODE = here('./plain-extract.mjs');
const BARE_YARGS = here('./bare-yargs.mjs');
const FLOOR_LIST = here('./floor-list.mjs');
const FLOOR_C = here('./floor.c');
const RUSAGE_C = here('./rusage.c');
const V2 = 'docker/registry/v2';
/** Start-up is short and noisy: at least this many runs of each case. */
const STARTUP_RUNS = 21;

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    dir: { type: 'string' },
    scale: { type: 'string', default: '1' },
    'no-10x': { type: 'boolean', default: false },
    'no-large': { type: 'boolean', default: false },
    'only-large': { type: 'boolean', default: false },
    'only-startup': { type: 'boolean', default: false },
    'only-airgap': { type: 'boolean', default: false },
    'only-s3': { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    out: { type: 'string', default: here('../../.bench/result.json') },
  },
});
const runs = args.smoke ? 1 : Number(args.runs);
const scale = args.smoke ? 0.02 : Number(args.scale);
const base = args.dir ?? defaultDir();
const work = join(base, 'work');
/**
 * The rows that measure bytes (hashing, bundle, apply of 2 MiB layers) keep their store and
 * outputs on /dev/shm when it is a tmpfs (and no --dir is given): they compare the byte path
 * with sha256sum and tar, not this disk's directory operations with none. The several-GiB
 * rows run on disk.
 */
const bytesBase = args.dir === undefined && isTmpfs('/dev/shm') ? '/dev/shm/regfs-bench-bytes' : base;
const bytesWork = join(bytesBase, 'work');

interface Measure {
  name: string;
  seconds: number;
  /** Peak RSS; not taken for start-up. */
  rssMB?: number;
  floor?: number;
  floorName?: string;
  note?: string;
}
const results: Measure[] = [];

/**
 * /dev/shm (a tmpfs: the stores build fastest there) if it has the inodes for the stores and
 * the outputs (about 100 a repository), else the temp directory. A tmpfs has a fixed number of
 * inodes (half the memory's pages by default), often fewer than the 10x store needs.
 */
function defaultDir(): string {
  const repos = scaled(scale).repositories * (args['no-10x'] || args['only-startup'] ? 1 : 11);
  const need = 130 * repos + 500_000;
  if (isTmpfs('/dev/shm') && freeInodes('/dev/shm') > need) return '/dev/shm/regfs-bench';
  return join(tmpdir(), 'regfs-bench');
}

function freeInodes(path: string): number {
  try {
    return Number(execFileSync('stat', ['-f', '-c', '%d', path], { encoding: 'utf8' }).trim());
  } catch {
    return 0;
  }
}

function isTmpfs(path: string): boolean {
  try {
    return execFileSync('stat', ['-f', '-c', '%T', path], { encoding: 'utf8', maxBuffer: 1 << 28 }).trim() === 'tmpfs';
  } catch {
    return false;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Build a store once; reuse it while the shape is the same. */
async function store(name: string, shape: StoreShape, dir = base): Promise<{ root: string; refs: string[]; buildSeconds: number | undefined }> {
  const root = join(dir, name);
  const marker = join(root, 'shape.json');
  const key = JSON.stringify(shape);
  if (existsSync(marker) && readFileSync(marker, 'utf8') === key) {
    return { root, refs: JSON.parse(readFileSync(join(root, 'refs.json'), 'utf8')) as string[], buildSeconds: undefined };
  }
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const t = performance.now();
  process.stderr.write(`building ${name}: ${shape.repositories} repositories…`);
  const refs = await writeStore(root, shape, (n) => process.stderr.write(`\rbuilding ${name}: ${n}/${shape.repositories} repositories`));
  const buildSeconds = (performance.now() - t) / 1000;
  process.stderr.write(` done in ${buildSeconds.toFixed(1)} s\n`);
  writeFileSync(join(root, 'refs.json'), JSON.stringify(refs));
  writeFileSync(marker, key);
  return { root, refs, buildSeconds };
}

/** The big-layer store, built once. */
async function bigStore(images: number, layerBytes: number): Promise<{ root: string; refs: string[] }> {
  const root = join(bytesBase, `store-big-${images}x${layerBytes}`);
  const marker = join(root, 'refs.json');
  if (existsSync(marker)) return { root, refs: JSON.parse(readFileSync(marker, 'utf8')) as string[] };
  rmSync(root, { recursive: true, force: true });
  process.stderr.write(`building ${images} images with ${layerBytes >> 20} MiB layers…`);
  const refs = await writeBigStore(root, images, layerBytes);
  process.stderr.write(' done\n');
  writeFileSync(marker, JSON.stringify(refs));
  return { root, refs };
}

/** A store built by `build` once, and reused while `key` is unchanged. */
async function cachedStore(name: string, key: string, build: (root: string) => Promise<void>, dir = base): Promise<string> {
  const root = join(dir, name);
  const marker = join(root, 'built.json');
  if (existsSync(marker) && readFileSync(marker, 'utf8') === key) return root;
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  process.stderr.write(`building ${name}…`);
  const t = performance.now();
  await build(root);
  process.stderr.write(` done in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);
  writeFileSync(marker, key);
  return root;
}

/** Median seconds of the list floor (floor-list.mjs) over a list. */
function listFloor(v2: string, list: string): number {
  const secs: number[] = [];
  for (let i = 0; i < runs; i++) secs.push(timed([process.execPath, FLOOR_LIST, v2, list], jsonSeconds).seconds);
  return median(secs);
}

/**
 * Large inputs, each at two sizes ten times apart, beside a floor measured in the same run:
 * image lists all missing and all present, one repository of many tags, wide indexes.
 */
async function largeInputs(s1: { root: string; refs: string[] }, out: string, fresh: () => void): Promise<void> {
  const v2 = join(s1.root, V2);
  const lineCounts = args.smoke ? [1_000, 10_000] : [100_000, 1_000_000];
  for (const n of lineCounts) {
    const missing = listFile(`missing-${n}`, Array.from({ length: n }, (_, i) => `nosuch/app${i}:v1`));
    const m = measure(`extract, list of ${n.toLocaleString('en-US')} lines, all missing`, ['extract', missing, s1.root, out], fresh, 1);
    m.floor = listFloor(v2, missing);
    m.floorName = 'node: stat each tag link';
    m.note = 'exit 1, every problem in --json; wall time';
    results.push(m);
  }
  for (const n of lineCounts) {
    // Every tag of the store, repeated to n lines: reading, parsing and merging the lines is what grows.
    const present = listFile(`present-${n}`, Array.from({ length: n }, (_, i) => s1.refs[i % s1.refs.length]!));
    const m = measure(`extract --dry-run, list of ${n.toLocaleString('en-US')} lines, all present`, ['extract', present, s1.root, out, '--dry-run']);
    m.floor = listFloor(v2, present);
    m.floorName = 'node: read each tag link';
    m.note = `${s1.refs.length.toLocaleString('en-US')} distinct tags, repeated`;
    results.push(m);
  }

  const tagCounts = args.smoke ? [100, 1_000] : [10_000, 100_000];
  for (const n of tagCounts) {
    const root = await cachedStore(`store-tags-${n}`, JSON.stringify({ tags: n, images: 1000 }), (r) => writeManyTagsStore(r, n, 1000));
    const tv2 = join(root, V2);
    const tagList = listFile(`tags-of-${n}`, Array.from({ length: n }, (_, i) => `${MANY_TAGS_REPO}:t${String(i).padStart(6, '0')}`));
    const ls = measure(`ls, one repository of ${n.toLocaleString('en-US')} tags`, ['ls', root]);
    ls.floor = listFloor(tv2, tagList);
    ls.floorName = 'node: read each tag link';
    ls.note = '1,000 distinct images; wall time, with start-up';
    results.push(ls);
    const ex = measure(`extract the repository of ${n.toLocaleString('en-US')} tags`, ['extract', listFile(`repo-${n}`, [MANY_TAGS_REPO]), root, out], fresh);
    ex.floor = floorOf(tv2, out);
    ex.floorName = 'node sync loop';
    results.push(ex);
  }

  const widths = args.smoke ? [20, 200] : [2_000, 20_000];
  for (const n of widths) {
    const root = await cachedStore(`store-index-${n}`, JSON.stringify({ children: n }), (r) => writeWideIndexStore(r, n));
    const iv2 = join(root, V2);
    const list = listFile(`index-${n}`, [WIDE_INDEX_REF]);
    const ex = measure(`extract an index of ${n.toLocaleString('en-US')} children`, ['extract', list, root, out], fresh);
    ex.floor = floorOf(iv2, out);
    ex.floorName = 'node sync loop';
    results.push(ex);
    const inspect = measure(`inspect an index of ${n.toLocaleString('en-US')} children`, ['inspect', root, WIDE_INDEX_REF]);
    // What inspect must do at least: read and hash every manifest and config of the index.
    const small = execFileSync('find', [join(iv2, 'blobs'), '-name', 'data', '-size', '-64k', '-print0'], { encoding: 'utf8', maxBuffer: 1 << 28 });
    writeFileSync(join(work, 'index-manifests'), small);
    inspect.floor = sha256sumOf(join(work, 'index-manifests'));
    inspect.floorName = 'sha256sum of its small blobs';
    inspect.note = 'wall time, with start-up';
    results.push(inspect);
  }
  if (!args.smoke) {
    // Wider than the registry's 4 MiB manifest limit allows: refused by its size, unread.
    const root = await cachedStore('store-index-50000', JSON.stringify({ children: 50_000 }), (r) => writeWideIndexStore(r, 50_000));
    const m = measure('extract an index of 50,000 children (10 MB: refused)', ['extract', listFile('index-50000', [WIDE_INDEX_REF]), root, out], fresh, 1);
    m.note = 'MANIFEST_INVALID: over the 4 MiB limit; wall time';
    results.push(m);
  }
  rmSync(out, { recursive: true, force: true });
}

/**
 * Run a command in a child process under GNU time; returns its own seconds (from --json, else
 * wall) and peak RSS. `status` is the exit status expected (1 for a list of missing images).
 */
function timed(cmd: string[], reported: (stdout: string) => number | undefined, status = 0): { seconds: number; rssMB: number; stdout: string } {
  // Write back what earlier runs (and their clean-up) left dirty, so it is not timed here.
  execFileSync('sync');
  // stdout to a file: a million problems in --json are more than a pipe buffer should hold.
  const outFile = join(work, 'timed-stdout');
  const fd = openSync(outFile, 'w');
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', ...cmd], { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', fd, 'pipe'] });
  closeSync(fd);
  if (r.status !== status) throw new Error(`${cmd.join(' ')} exited ${r.status}, not ${status}: ${r.stderr.slice(-2000)}`);
  const size = statSync(outFile).size;
  const stdout = size < 1 << 26 ? readFileSync(outFile, 'utf8') : '';
  rmSync(outFile);
  const last = r.stderr.trim().split('\n').at(-1)!.split(' ');
  const wall = Number(last[0]);
  return { seconds: reported(stdout) ?? wall, rssMB: Number(last[1]) / 1024, stdout };
}

/** The command's own `seconds`; undefined (so the wall time counts) when it printed none, as an error does. */
const jsonSeconds = (stdout: string): number | undefined => (stdout === '' ? undefined : (JSON.parse(stdout) as { seconds?: number }).seconds);

/** Median over `runs` of a regfs command; `before` prepares each run (not timed). */
function measure(name: string, args: string[], before: () => void = () => undefined, status = 0, times = runs): Measure {
  const secs: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < times; i++) {
    before();
    const r = timed([process.execPath, CLI, ...args, '--json'], jsonSeconds, status);
    secs.push(r.seconds);
    rss.push(r.rssMB);
  }
  return { name, seconds: median(secs), rssMB: Math.max(...rss) };
}

/**
 * The inventory of the whole store, beside the floor of its blob half: find stats every
 * blob's data file and prints its size and path (no node). The inventory also reads every
 * tag's and revision's link, which that floor does not.
 */
function inventoryRow(root: string): Measure {
  const file = join(work, 'store.inv');
  const m = measure('inventory (whole store)', ['inventory', root, '-o', file]);
  const secs: number[] = [];
  for (let i = 0; i < runs; i++) secs.push(timed(['find', join(root, V2, 'blobs'), '-name', 'data', '-printf', '%s %p\\n'], () => undefined).seconds);
  m.floor = median(secs);
  m.floorName = 'find blobs -name data -printf, the blob half';
  m.note = `inventory file ${(statSync(file).size / 2 ** 20).toFixed(1)} MiB`;
  rmSync(file, { force: true });
  return m;
}

/** Compile one of the bench's C programs with cc into the work directory; undefined without cc. */
function compileC(source: string): string | undefined {
  const bin = join(work, `${source.replace(/^.*\//, '').replace(/\.c$/, '')}-bin`);
  try {
    execFileSync('cc', ['-O2', '-o', bin, source], { stdio: ['ignore', 'ignore', 'inherit'] });
    return bin;
  } catch {
    return undefined;
  }
}

/**
 * Run a command to its end; its wall seconds and, through rusage.c when cc built it, the CPU
 * seconds (user + system) it used, which a loaded machine changes far less than the wall time.
 */
function spawnTimed(argv: string[], rusage: string | undefined): { wall: number; cpu: number | undefined; stdout: string } {
  const t = performance.now();
  const r = rusage === undefined ? spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' }) : spawnSync(rusage, argv, { encoding: 'utf8' });
  const elapsed = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  if (rusage === undefined) return { wall: elapsed, cpu: undefined, stdout: r.stdout };
  const [wall, cpu] = r.stderr.trim().split('\n').at(-1)!.split(' ').map((x) => Number(x) / 1000);
  return { wall: wall!, cpu: cpu!, stdout: r.stdout };
}

/** `cpu a s = Nx node -e 0's b s` for a note, when CPU times were taken. */
function cpuNote(cpu: number[], nodeCpu: number[]): string {
  if (cpu.length === 0) return '';
  const a = median(cpu);
  const b = median(nodeCpu);
  return `; cpu ${a.toFixed(3)} s = ${(a / b).toFixed(2)}x node's ${b.toFixed(3)} s`;
}

/**
 * Start-up: the wall time of `regfs --version`, `regfs --help` and `regfs ls` of a store with
 * one image, beside `node -e 0` and a bare yargs CLI (bare-yargs.mjs, bundled here by esbuild
 * as regfs's CLI is), taken in turns in the same run (the machine's load changes them alike),
 * STARTUP_RUNS times, medians.
 */
async function startup(s1: { root: string; refs: string[] }): Promise<void> {
  const tiny = join(work, 'startup-store');
  rmSync(tiny, { recursive: true, force: true });
  execFileSync(process.execPath, [CLI, 'extract', '-', s1.root, tiny], { input: `${s1.refs[0]!}\n`, stdio: ['pipe', 'ignore', 'inherit'] });
  const bare = join(work, 'bare-yargs.mjs');
  const { build } = await import('esbuild');
  await build({ entryPoints: [BARE_YARGS], outfile: bare, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'error' });
  const cases: Array<[string, string[]]> = [
    ['node -e 0', ['-e', '0']],
    ['start-up: regfs --version', [CLI, '--version']],
    ['start-up: regfs --help', [CLI, '--help']],
    ['start-up: regfs ls (one image)', [CLI, 'ls', tiny]],
    ['start-up: a bare yargs CLI --version (no regfs)', [bare, '--version']],
  ];
  const rusage = compileC(RUSAGE_C);
  const wall = cases.map(() => [] as number[]);
  const cpu = cases.map(() => [] as number[]);
  const n = args.smoke ? runs : Math.max(STARTUP_RUNS, runs);
  for (let i = 0; i < n; i++) {
    cases.forEach(([, argv], j) => {
      const r = spawnTimed([process.execPath, ...argv], rusage);
      wall[j]!.push(r.wall);
      if (r.cpu !== undefined) cpu[j]!.push(r.cpu);
    });
  }
  const floor = median(wall[0]!);
  cases.slice(1).forEach(([name], j) => {
    results.push({ name, seconds: median(wall[j + 1]!), floor, floorName: 'node -e 0', note: `wall, median of ${n}${cpuNote(cpu[j + 1]!, cpu[0]!)}` });
  });
  rmSync(tiny, { recursive: true, force: true });
  rmSync(bare, { force: true });
}

/**
 * The small extract on tmpfs, where no disk hides the CPU cost: regfs's wall time beside
 * `node -e 0`, the C syscall floor (scripts/bench/floor.c, compiled here with cc: the same
 * mkdir, link and write-then-rename calls as the output needs) and the node replay of the same
 * (floor.mjs), taken in turns in the same run, medians. The store must be on the tmpfs too
 * (blob data is hard-linked): the main one if it is there, else one built in /dev/shm.
 */
async function tmpfsExtract(s1: { root: string; refs: string[] }, refs: string[]): Promise<void> {
  const name = `extract ${refs.length} tags on tmpfs`;
  let src = s1;
  if (!isTmpfs(base)) {
    if (!isTmpfs('/dev/shm') || freeInodes('/dev/shm') < 130 * scaled(scale).repositories + 200_000) {
      results.push({ name, seconds: NaN, note: 'skipped: no tmpfs with the inodes for a store (--dir on a tmpfs)' });
      return;
    }
    src = await store(`store-x${scale}`, scaled(scale), '/dev/shm/regfs-bench');
  }
  const tmp = join(dirname(src.root), 'work-tmpfs');
  mkdirSync(tmp, { recursive: true });
  const out = join(tmp, 'out');
  const list = join(tmp, 'tags.list');
  writeFileSync(list, `${refs.join('\n')}\n`);
  rmSync(out, { recursive: true, force: true });
  execFileSync(process.execPath, [CLI, 'extract', list, src.root, out], { stdio: ['ignore', 'ignore', 'inherit'] });

  // The operations of the finished output, replayed into `target`.
  const v2 = join(src.root, V2);
  const target = join(tmp, 'floor');
  const lines: string[] = [];
  const ops = { dirs: [] as string[], links: [] as Array<[string, string]>, files: [] as Array<[string, string]> };
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      const to = join(target, relative(out, p));
      if (e.isDirectory()) {
        lines.push(`d\t${to}`);
        ops.dirs.push(to);
        walk(p);
      } else if (e.name === 'data') {
        const from = join(v2, relative(join(out, V2), p));
        lines.push(`l\t${from}\t${to}`);
        ops.links.push([from, to]);
      } else {
        const content = readFileSync(p, 'utf8');
        lines.push(`f\t${to}\t${content}`);
        ops.files.push([to, content]);
      }
    }
  };
  walk(out);
  const opsText = join(tmp, 'floor-ops.txt');
  const opsJson = join(tmp, 'floor-ops.json');
  writeFileSync(opsText, `${lines.join('\n')}\n`);
  writeFileSync(opsJson, JSON.stringify(ops));
  const floorBin = compileC(FLOOR_C);
  const rusage = compileC(RUSAGE_C);

  // The plain script: the same correct extract in single-threaded Python (plain-extract.py),
  // when python3 is there; its output must be regfs's, file for file and byte for byte.
  const python = pythonFor(list, src.root, join(tmp, 'plain'), out);
  // The same script in Node (plain-extract.mjs): what Node itself costs for this work, without regfs.
  const plainNode = plainFor([process.execPath, PLAIN_EXTRACT_NODE, list, src.root, join(tmp, 'plain-node')], out);

  const n = args.smoke ? runs : Math.max(11, runs);
  const wall = { node: [] as number[], regfs: [] as number[], c: [] as number[], replay: [] as number[], python: [] as number[], python0: [] as number[], plainNode: [] as number[] };
  const cpu = { node: [] as number[], regfs: [] as number[], c: [] as number[], replay: [] as number[], python: [] as number[], python0: [] as number[], plainNode: [] as number[] };
  const cSyscalls: number[] = [];
  const run = (key: keyof typeof wall, argv: string[]): string => {
    const r = spawnTimed(argv, rusage);
    wall[key].push(r.wall);
    if (r.cpu !== undefined) cpu[key].push(r.cpu);
    return r.stdout;
  };
  const fresh = (dir: string): void => {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
  };
  for (let i = 0; i < n; i++) {
    run('node', [process.execPath, '-e', '0']);
    rmSync(out, { recursive: true, force: true });
    run('regfs', [process.execPath, CLI, 'extract', list, src.root, out]);
    if (floorBin !== undefined) {
      fresh(target);
      cSyscalls.push((JSON.parse(run('c', [floorBin, opsText])) as { seconds: number }).seconds);
    }
    fresh(target);
    run('replay', [process.execPath, FLOOR, opsJson]);
    rmSync(plainNode.out, { recursive: true, force: true });
    run('plainNode', plainNode.argv);
    if (python !== undefined) {
      run('python0', [python.bin, '-c', '0']);
      rmSync(python.out, { recursive: true, force: true });
      run('python', python.argv);
    }
  }
  rmSync(tmp, { recursive: true, force: true });
  const node = median(wall.node);
  const regfs = median(wall.regfs);
  const counts = `${ops.dirs.length} mkdir, ${ops.links.length} link, ${ops.files.length} write+rename`;
  const cpuWork = cpu.regfs.length === 0 ? '' : `; cpu work ${(median(cpu.regfs) - median(cpu.node)).toFixed(3)} s, C program cpu ${median(cpu.c).toFixed(3)} s`;
  results.push({
    name: `${name} (wall)`,
    seconds: regfs,
    floor: median(wall.replay),
    floorName: 'node replay, wall',
    note: `node -e 0 ${node.toFixed(3)} s; ${counts}${cpuNote(cpu.regfs, cpu.node)}`,
  });
  results.push(
    python === undefined
      ? { name: `${name} against a plain script`, seconds: regfs, note: 'no plain script: python3 not found' }
      : {
          name: `${name} against a plain script (wall)`,
          seconds: regfs,
          floor: median(wall.python),
          floorName: 'plain-extract.py, wall',
          note: `python3 -c 0 ${median(wall.python0).toFixed(3)} s; the script's work ${(median(wall.python) - median(wall.python0)).toFixed(3)} s, regfs's ${(regfs - node).toFixed(3)} s${cpu.python.length === 0 ? '' : `; cpu: regfs ${median(cpu.regfs).toFixed(3)} s, the script ${median(cpu.python).toFixed(3)} s`}`,
        },
  );
  results.push({
    name: `${name} against a plain Node script (wall)`,
    seconds: regfs,
    floor: median(wall.plainNode),
    floorName: 'plain-extract.mjs, wall',
    note: `the script's work ${(median(wall.plainNode) - node).toFixed(3)} s, regfs's ${(regfs - node).toFixed(3)} s${cpu.plainNode.length === 0 ? '' : `; cpu: regfs ${median(cpu.regfs).toFixed(3)} s, the script ${median(cpu.plainNode).toFixed(3)} s`}${floorBin === undefined ? '' : `; the script's work ${((median(wall.plainNode) - node) / median(cSyscalls)).toFixed(2)}x the C syscalls`}`,
  });
  if (floorBin !== undefined) {
    results.push({
      name: `${name}: work (wall - node -e 0)`,
      seconds: regfs - node,
      floor: median(cSyscalls),
      floorName: 'C syscalls',
      note: `C program wall ${median(wall.c).toFixed(3)} s${cpuWork}`,
    });
  } else {
    results.push({ name: `${name}: work (wall - node -e 0)`, seconds: regfs - node, note: 'no C floor: cc not found' });
  }
}

/**
 * The plain script's command line (scripts/bench/plain-extract.py writing into `plainOut`),
 * once its output has been checked to be regfs's (`regfsOut`); undefined without python3.
 */
function pythonFor(list: string, src: string, plainOut: string, regfsOut: string): { bin: string; argv: string[]; out: string } | undefined {
  const bin = pythonInterpreter();
  return bin === undefined ? undefined : { bin, ...plainFor([bin, PLAIN_EXTRACT, list, src, plainOut], regfsOut) };
}

/**
 * A plain script's command line (its last argument the output), once it has been run and its
 * output checked to be regfs's (`regfsOut`): the same files, the same bytes.
 */
function plainFor(argv: string[], regfsOut: string): { argv: string[]; out: string } {
  const plainOut = argv.at(-1)!;
  rmSync(plainOut, { recursive: true, force: true });
  execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
  const files = (root: string): string[] => {
    const out: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        out.push(`${relative(root, p)}${e.isDirectory() ? '/' : `\t${readFileSync(p).toString('base64')}`}`);
        if (e.isDirectory()) walk(p);
      }
    };
    walk(root);
    return out.sort();
  };
  const a = files(regfsOut);
  const b = files(plainOut);
  if (a.join('\n') !== b.join('\n')) throw new Error(`${basename(argv[1]!)} made another output than regfs (${b.length} entries against ${a.length})`);
  return { argv, out: plainOut };
}

/** The floor of an extract: replay the files of a finished output, in the tightest loop. */
function floorOf(sourceV2: string, out: string): number {
  const ops = { dirs: [] as string[], links: [] as Array<[string, string]>, files: [] as Array<[string, string]> };
  const target = join(work, 'floor');
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      const rel = relative(out, p);
      if (e.isDirectory()) {
        ops.dirs.push(join(target, rel));
        walk(p);
      } else if (e.name === 'data') ops.links.push([join(sourceV2, relative(join(out, V2), p)), join(target, rel)]);
      else ops.files.push([join(target, rel), readFileSync(p, 'utf8')]);
    }
  };
  walk(out);
  const opsFile = join(work, 'floor-ops.json');
  writeFileSync(opsFile, JSON.stringify(ops));
  const secs: number[] = [];
  for (let i = 0; i < runs; i++) {
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target);
    secs.push(timed([process.execPath, FLOOR, opsFile], jsonSeconds).seconds);
  }
  rmSync(target, { recursive: true, force: true });
  return median(secs);
}

/** `cp -al` of the blob directories an output holds. */
function cpAl(sourceV2: string, out: string): number {
  const blobs = execFileSync('find', [join(out, V2, 'blobs'), '-name', 'data'], { encoding: 'utf8', maxBuffer: 1 << 28 }).trim().split('\n').map((p) => relative(join(out, V2), dirname(p)));
  const list = join(work, 'cp-list');
  writeFileSync(list, blobs.join('\n'));
  const secs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const target = join(work, 'cp');
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target);
    execFileSync('sync');
    const t = performance.now();
    execFileSync('sh', ['-c', `cd "${sourceV2}" && xargs -a "${list}" cp -al --parents -t "${target}"`]);
    secs.push((performance.now() - t) / 1000);
  }
  return median(secs);
}

/** The hashing floor: median seconds of `sha256sum` over the files a NUL-separated list names. */
function sha256sumOf(list: string): number {
  const secs: number[] = [];
  for (let i = 0; i < runs; i++) {
    execFileSync('sync');
    const t = performance.now();
    execFileSync('sh', ['-c', `xargs -0 -a "${list}" sha256sum > /dev/null`]);
    secs.push((performance.now() - t) / 1000);
  }
  return median(secs);
}

function listFile(name: string, refs: string[]): string {
  const path = join(work, `${name}.list`);
  writeFileSync(path, `${refs.join('\n')}\n`);
  return path;
}

/** `n` tags spread over the whole store, the same for every store built with the same base shape. */
function sample(refs: string[], n: number, total: number): string[] {
  const step = Math.max(1, Math.floor(total / n));
  return Array.from({ length: Math.min(n, total) }, (_, i) => refs[i * step]!);
}

async function main(): Promise<void> {
  // `npm run bench` builds first. Not built here: a build rewrites dist/ in place, under any
  // other run of the CLI (the test suite runs the smoke bench beside other test files).
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm run build first (npm run bench does)`);
  mkdirSync(work, { recursive: true });
  mkdirSync(bytesWork, { recursive: true });
  const shape = scaled(scale);
  const s1 = await store(`store-x${scale}`, shape);
  const v2 = join(s1.root, V2);
  const out = join(work, 'out');
  const fresh = (): void => rmSync(out, { recursive: true, force: true });
  const base1 = s1.refs.length;

  if (args['only-airgap']) {
    await airgap();
    return report(shape, s1, v2, base1);
  }
  if (args['only-s3']) {
    await s3Rows(s1, base1);
    return report(shape, s1, v2, base1);
  }
  // Start-up and the small extract on tmpfs, against node -e 0 and the C floor.
  if (!args['only-large']) {
    await startup(s1);
    await tmpfsExtract(s1, sample(s1.refs, 200, base1));
  }
  // The standard rows; --only-large leaves them out (the large rows use the same 1x store).
  if (!args['only-large'] && !args['only-startup']) {
    for (const n of [200, 2000, base1]) {
      if (n > base1) continue;
      const refs = n === base1 ? s1.refs : sample(s1.refs, n, base1);
      const list = listFile(`tags-${n}`, refs);
      const m = measure(`extract ${n === base1 ? `all (${n})` : n} tags`, ['extract', list, s1.root, out], fresh);
      m.floor = floorOf(v2, out);
      m.floorName = 'node sync loop';
      m.note = `cp -al blobs ${cpAl(v2, out).toFixed(3)} s`;
      results.push(m);
    }

    // Referrers: 200 signed images (a .sig tag each, on a signature with a subject), with and without them.
    const nSigned = args.smoke ? 20 : 200;
    const signed = await cachedStore(`store-signed-${nSigned}`, JSON.stringify({ images: nSigned }), (r) => writeSignedStore(r, nSigned));
    const signedList = listFile(`signed-${nSigned}`, Array.from({ length: nSigned }, (_, i) => signedRef(i)));
    const plain = measure(`extract ${nSigned} signed images`, ['extract', signedList, signed, out], fresh);
    results.push(plain);
    const withReferrers = measure(`extract ${nSigned} signed images --with-referrers`, ['extract', signedList, signed, out, '--with-referrers'], fresh);
    withReferrers.note = `${(withReferrers.seconds / plain.seconds).toFixed(2)}x without (bound: 1.5x)`;
    results.push(withReferrers);
    // The same output without the search: the images and their signature tags, listed. What
    // --with-referrers costs beyond it is the finding; the rest is the signatures' own files.
    const sigRef = (i: number): string => {
      const [repo, tag] = signedRef(i).split(':') as [string, string];
      const digest = readFileSync(join(signed, V2, 'repositories', repo, '_manifests', 'tags', tag, 'current', 'link'), 'utf8');
      return `${repo}:${digest.replace(':', '-')}.sig`;
    };
    const listedList = listFile(`signed-${nSigned}-listed`, Array.from({ length: nSigned }, (_, i) => [signedRef(i), sigRef(i)]).flat());
    const listed = measure(`extract ${nSigned} signed images and their signatures, listed`, ['extract', listedList, signed, out], fresh);
    listed.note = `the output of --with-referrers; --with-referrers is ${(withReferrers.seconds / listed.seconds).toFixed(2)}x this, this is ${(listed.seconds / plain.seconds).toFixed(2)}x the images alone`;
    results.push(listed);

    const list200 = listFile('tags-200', sample(s1.refs, 200, base1));
    const dir = join(work, 'dir');
    results.push(measure('to-dir 200 images', ['to-dir', list200, s1.root, dir], () => rmSync(dir, { recursive: true, force: true })));
    // to-oci against extract of the same 200 images (measured above, in this run): the same resolver and linker.
    const layout200 = join(work, 'oci-200');
    const toOci = measure('to-oci 200 images', ['to-oci', list200, s1.root, layout200], () => rmSync(layout200, { recursive: true, force: true }));
    const extract200 = results.find((r) => r.name === 'extract 200 tags');
    if (extract200 !== undefined) {
      toOci.floor = extract200.seconds;
      toOci.floorName = 'extract of the same 200';
    }
    results.push(toOci);
    rmSync(layout200, { recursive: true, force: true });
    const reg = join(work, 'reg');
    results.push(measure('from-dir 200 images (verify)', ['from-dir', dir, reg], () => rmSync(reg, { recursive: true, force: true })));

    // Hashing: 200 images with a 2 MiB layer each, where the bytes dominate.
    const big = await bigStore(args.smoke ? 20 : 200, 2 << 20);
    const bigDir = join(bytesWork, 'bigdir');
    const bigReg = join(bytesWork, 'reg');
    results.push(measure(`to-dir ${big.refs.length} images, 2 MiB layers`, ['to-dir', listFile('big', big.refs), big.root, bigDir], () => rmSync(bigDir, { recursive: true, force: true })));
    const fromDir = measure(`from-dir ${big.refs.length} images, 2 MiB layers (verify)`, ['from-dir', bigDir, bigReg], () => rmSync(bigReg, { recursive: true, force: true }));
    const blobFiles = execFileSync('find', [bigDir, '-type', 'f', '-regextype', 'posix-extended', '-regex', '.*/[0-9a-f]{64}'], { encoding: 'utf8', maxBuffer: 1 << 28 }).trim().split('\n');
    writeFileSync(join(work, 'hash-list'), blobFiles.join('\0'));
    fromDir.floor = sha256sumOf(join(work, 'hash-list'));
    fromDir.floorName = 'sha256sum';
    results.push(fromDir);
    results.push(measure(`from-dir ${big.refs.length} images, 2 MiB layers --no-verify`, ['from-dir', bigDir, bigReg, '--no-verify'], () => rmSync(bigReg, { recursive: true, force: true })));
    // The same images as an OCI layout, a directory and a tar, against sha256sum over the same bytes.
    const layout = join(bytesWork, 'layout');
    const layoutTar = join(bytesWork, 'layout.tar');
    rmSync(layout, { recursive: true, force: true });
    await ociLayoutFromExport(bigDir, layout);
    rmSync(layoutTar, { force: true });
    tarLayout(layout, layoutTar);
    const fromOciDir = measure(`from-oci ${big.refs.length} images, 2 MiB layers, directory (verify)`, ['from-oci', layout, bigReg], () => rmSync(bigReg, { recursive: true, force: true }));
    const layoutBlobs = readdirSync(join(layout, 'blobs', 'sha256')).map((n) => join(layout, 'blobs', 'sha256', n));
    writeFileSync(join(work, 'layout-list'), layoutBlobs.join('\0'));
    fromOciDir.floor = sha256sumOf(join(work, 'layout-list'));
    fromOciDir.floorName = 'sha256sum';
    results.push(fromOciDir);
    const fromOciTar = measure(`from-oci ${big.refs.length} images, 2 MiB layers, tar (verify)`, ['from-oci', layoutTar, bigReg], () => rmSync(bigReg, { recursive: true, force: true }));
    writeFileSync(join(work, 'tar-list'), layoutTar);
    fromOciTar.floor = sha256sumOf(join(work, 'tar-list'));
    fromOciTar.floorName = 'sha256sum';
    fromOciTar.note = 'regfs also writes every blob once (no hard links from a tar)';
    results.push(fromOciTar);
    rmSync(layout, { recursive: true, force: true });
    rmSync(layoutTar, { force: true });
    rmSync(bigDir, { recursive: true, force: true });
    rmSync(bigReg, { recursive: true, force: true });
    const verifyM = measure('verify (whole store)', ['verify', s1.root]);
    const allBlobs = execFileSync('find', [join(v2, 'blobs'), '-name', 'data', '-print0'], { encoding: 'utf8', maxBuffer: 1 << 28 });
    writeFileSync(join(work, 'all-blobs'), allBlobs);
    verifyM.floor = sha256sumOf(join(work, 'all-blobs'));
    verifyM.floorName = 'sha256sum';
    results.push(verifyM);
    results.push(measure('verify --fast (whole store)', ['verify', s1.root, '--fast']));
    results.push(measure('gc dry run (whole store)', ['gc', s1.root]));
    results.push(inventoryRow(s1.root));

    if (!args['no-10x']) {
      const s10 = await store(`store-x${scale * 10}`, scaled(scale * 10));
      // The same 200 tags: repositories 0..n-1 are identical in both stores.
      const m = measure('extract 200 tags, 10x store', ['extract', list200, s10.root, out], fresh);
      const m1 = results.find((r) => r.name === 'extract 200 tags')!;
      m.note = `${(m.seconds / m1.seconds).toFixed(2)}x the 1x store's time`;
      results.push(m);
    }
  }
  if (!args['only-large'] && !args['only-startup']) await airgap();
  rmSync(out, { recursive: true, force: true });
  if (!args['no-large'] && !args['only-startup']) await largeInputs(s1, out, fresh);
  report(shape, s1, v2, base1);
}

/** Median wall seconds of a shell command over `runs`; `before` prepares each run (not timed). */
function shellFloor(script: string, before: () => void = () => undefined): number {
  const secs: number[] = [];
  for (let i = 0; i < runs; i++) {
    before();
    execFileSync('sync');
    const t = performance.now();
    execFileSync('sh', ['-c', script], { stdio: ['ignore', 'ignore', 'inherit'] });
    secs.push((performance.now() - t) / 1000);
  }
  return median(secs);
}

/** The blob data files a bundle carries, in the source's blob tree: from the bundle's own entries. */
function carriedDataFiles(bundle: string, sourceV2: string): string[] {
  const names = execFileSync('tar', ['-tf', bundle], { encoding: 'utf8', maxBuffer: 1 << 28 }).trim().split('\n');
  return names.flatMap((n) => {
    const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(n);
    return m === null ? [] : [join(sourceV2, 'blobs', 'sha256', m[1]!.slice(0, 2), m[1]!, 'data')];
  });
}

/**
 * Air-gap bundles (docs/bundle.md), each beside its floor in this run: bundle against `tar -cf`
 * of the same blob files (the bound: at least 0.8x its throughput), apply against `sha256sum`
 * of the bundle plus writing its bytes with `cat` (the bound: 1.5x), a delta bundle's bytes
 * against the new blob bytes it carries (the bound: under 1% more), and a store of several
 * GiB on disk, bundled and applied, for the peak RSS (the bound: under 200 MB, whatever the size).
 */
async function airgap(): Promise<void> {
  const big = await bigStore(args.smoke ? 20 : 200, 2 << 20);
  const bigV2 = join(big.root, V2);
  const bundle = join(bytesWork, 'bundle.tar');
  const reg = join(bytesWork, 'reg-apply');
  const copy = join(bytesWork, 'floor-copy');
  const n = big.refs.length;
  const list = listFile('big', big.refs);

  const b = measure(`bundle ${n} images, 2 MiB layers`, ['bundle', list, big.root, bundle], () => rmSync(bundle, { force: true }));
  const files = carriedDataFiles(bundle, bigV2);
  writeFileSync(join(work, 'bundle-files'), `${files.join('\n')}\n`);
  const floorTar = join(bytesWork, 'floor.tar');
  b.floor = shellFloor(`tar -cPf "${floorTar}" -T "${join(work, 'bundle-files')}"`, () => rmSync(floorTar, { force: true }));
  b.floorName = 'tar -cf, same blobs';
  b.note = `throughput ${(b.floor / b.seconds).toFixed(2)}x tar's (bound: at least 0.8x); ${(statSync(bundle).size / 2 ** 20).toFixed(0)} MiB`;
  results.push(b);
  rmSync(floorTar, { force: true });

  const a = measure(`apply a bundle of ${n} images (verify)`, ['apply', bundle, reg], () => rmSync(reg, { recursive: true, force: true }));
  const sum = shellFloor(`sha256sum "${bundle}" > /dev/null`);
  const write = shellFloor(`cat "${bundle}" > "${copy}"`, () => rmSync(copy, { force: true }));
  a.floor = sum + write;
  a.floorName = 'sha256sum + cat >';
  a.note = `sha256sum ${sum.toFixed(3)} s + writing ${write.toFixed(3)} s (bound: 1.5x)`;
  results.push(a);
  rmSync(copy, { force: true });

  // A delta: release N (every other image) applied, release N+1 (all of them) bundled against its inventory.
  const half = big.refs.filter((_, i) => i % 2 === 0);
  const listN = listFile('big-half', half);
  rmSync(reg, { recursive: true, force: true });
  execFileSync(process.execPath, [CLI, 'bundle', listN, big.root, bundle], { stdio: 'ignore' });
  execFileSync(process.execPath, [CLI, 'apply', bundle, reg], { stdio: 'ignore' });
  const inv = join(work, 'have.inv');
  const invM = measure(`inventory of the far side (${half.length} images)`, ['inventory', reg, '-o', inv]);
  invM.note = `${statSync(inv).size} bytes`;
  results.push(invM);
  const delta = join(bytesWork, 'delta.tar');
  const d = measure(`bundle ${n} images --have (${n - half.length} new)`, ['bundle', list, big.root, delta, '--have', inv], () => rmSync(delta, { force: true }));
  const newBytes = carriedDataFiles(delta, bigV2).reduce((sum, f) => sum + statSync(f).size, 0);
  const deltaSize = statSync(delta).size;
  d.note = `${deltaSize} bytes for ${newBytes} new blob bytes: overhead ${((100 * (deltaSize - newBytes)) / newBytes).toFixed(2)}% (bound: under 1%)`;
  results.push(d);
  const regN1 = join(bytesWork, 'reg-apply-n1');
  const ad = measure(`apply the delta onto release N`, ['apply', delta, regN1], () => {
    rmSync(regN1, { recursive: true, force: true });
    execFileSync('cp', ['-al', reg, regN1]);
  });
  results.push(ad);
  rmSync(regN1, { recursive: true, force: true });
  rmSync(reg, { recursive: true, force: true });
  rmSync(bundle, { force: true });
  rmSync(delta, { force: true });

  // Several GiB, on disk (a tmpfs would hold it in memory three times): the peak RSS must not grow with it.
  if (args.smoke) return;
  const hugeDir = join(tmpdir(), 'regfs-bench-huge');
  mkdirSync(hugeDir, { recursive: true });
  const images = 24;
  const layer = 160 << 20;
  const huge = await cachedStore(`store-huge-${images}x${layer}`, JSON.stringify({ images, layer }), async (r) => {
    writeFileSync(join(r, 'refs.json'), JSON.stringify(await writeHugeStore(r, images, layer)));
  }, hugeDir);
  const hugeRefs = JSON.parse(readFileSync(join(huge, 'refs.json'), 'utf8')) as string[];
  const hugeBundle = join(hugeDir, 'bundle.tar');
  const hugeReg = join(hugeDir, 'reg');
  const hb = measure(`bundle ${images} images of ${layer >> 20} MiB (on disk)`, ['bundle', listFile('huge', hugeRefs), huge, hugeBundle], () => rmSync(hugeBundle, { force: true }), 0, 1);
  hb.note = `${(statSync(hugeBundle).size / 2 ** 30).toFixed(2)} GiB; peak RSS bound: 200 MB`;
  results.push(hb);
  const ha = measure(`apply a bundle of ${(statSync(hugeBundle).size / 2 ** 30).toFixed(2)} GiB (on disk)`, ['apply', hugeBundle, hugeReg], () => rmSync(hugeReg, { recursive: true, force: true }), 0, 1);
  const hugeCopy = join(hugeDir, 'floor-copy');
  const hugeSum = shellFloor(`sha256sum "${hugeBundle}" > /dev/null`);
  const hugeWrite = shellFloor(`cat "${hugeBundle}" > "${hugeCopy}"`, () => rmSync(hugeCopy, { force: true }));
  rmSync(hugeCopy, { force: true });
  ha.floor = hugeSum + hugeWrite;
  ha.floorName = 'sha256sum + cat >';
  ha.note = `sha256sum ${hugeSum.toFixed(3)} s + writing ${hugeWrite.toFixed(3)} s (bound: 1.5x); peak RSS bound: 200 MB`;
  results.push(ha);
  rmSync(hugeReg, { recursive: true, force: true });
  rmSync(hugeBundle, { force: true });
}

/** The table on stdout and the JSON result in `--out`. */
/** A regfs command on S3 once: its own seconds, peak RSS, and requests by operation. */
function s3Run(args: string[]): { seconds: number; rssMB: number; requests: Record<string, number> } {
  const r = timed([process.execPath, CLI, ...args, '--json'], jsonSeconds);
  const requests = (JSON.parse(r.stdout) as { s3Requests?: Record<string, number> }).s3Requests ?? {};
  return { seconds: r.seconds, rssMB: r.rssMB, requests };
}

function total(requests: Record<string, number>): number {
  return Object.values(requests).reduce((a, b) => a + b, 0);
}

function formatRequests(requests: Record<string, number>, per: number, what: string): string {
  const each = Object.entries(requests).map(([k, v]) => `${k} ${(v / per).toFixed(1)}`);
  return `${total(requests)} requests, ${(total(requests) / per).toFixed(1)} per ${what} (${each.join(', ')})`;
}

async function s3Rows(s1: { root: string; refs: string[] }, base1: number): Promise<void> {
  const { startS3Server } = await import('../lib/s3-server.js');
  const { startRegistry } = await import('../lib/registry-server.js');
  const server = await startS3Server({ buckets: ['src', 'dst'] });
  const saved = { ...process.env };
  Object.assign(process.env, server.env);
  const storage = (bucket: string, prefix: string) => ({ endpoint: server.endpoint, region: server.region, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, bucket, rootdirectory: `/${prefix}` });
  try {
    // The store into S3, by regfs: every tag, disk to S3 (a PutObject a blob and a link).
    const load = s3Run(['extract', listFile('all', s1.refs), s1.root, 's3://src/bench']);
    results.push({ name: `extract all (${base1}) tags, disk to S3`, seconds: load.seconds, rssMB: load.rssMB, note: formatRequests(load.requests, base1, 'tag') });

    // 186 tags, S3 to S3 in one bucket: server-side copies, against skopeo sync between two registries on the same server.
    const n = Math.min(args.smoke ? 10 : 186, base1);
    const refs = sample(s1.refs, n, base1);
    const list = listFile(`s3-${n}`, refs);
    const secs: number[] = [];
    let last: ReturnType<typeof s3Run> | undefined;
    for (let i = 0; i < runs; i++) {
      last = s3Run(['extract', list, 's3://src/bench', `s3://dst/out-${i}`]);
      secs.push(last.seconds);
    }
    const row: Measure = { name: `extract ${n} tags, S3 to S3`, seconds: median(secs), rssMB: last!.rssMB, note: formatRequests(last!.requests, n, 'image') };
    // skopeo sync: the same tags, registry to registry, both on this S3 server, a repository
    // a sync (a YAML source each). docker-registry 2.8.2 on radosgw now and then stops
    // answering a blob upload (no request reaches radosgw; the client waits minutes): a sync
    // that takes more than a minute is stopped and left out. The syncs stop after 30 images
    // or 4 minutes; the floor is their time scaled to every image, said in the note.
    const from = await startRegistry({ readOnly: true, s3: storage('src', 'bench') });
    const into = await startRegistry({ s3: storage('dst', 'skopeo') });
    try {
      const byRepo = new Map<string, string[]>();
      for (const ref of refs) {
        const [repo, tag] = [ref.slice(0, ref.lastIndexOf(':')), ref.slice(ref.lastIndexOf(':') + 1)];
        byRepo.set(repo, [...(byRepo.get(repo) ?? []), tag]);
      }
      let seconds = 0;
      let copied = 0;
      let stalled = 0;
      const budget = performance.now() + 240_000;
      for (const [repo, tags] of byRepo) {
        if (copied >= 30 || performance.now() > budget) break;
        const yaml = join(work, 's3-sync.yaml');
        writeFileSync(yaml, `${from.host}:\n  tls-verify: false\n  images:\n    ${repo}:\n${tags.map((t) => `      - "${t}"`).join('\n')}\n`);
        const t = performance.now();
        const r = spawnSync('skopeo', ['sync', '--all', '--preserve-digests', '--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false', yaml, into.host], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
        if (r.status !== 0) {
          // Only a stall is left out; any other failure is the bench's own.
          if (r.error === undefined || (r.error as NodeJS.ErrnoException).code !== 'ETIMEDOUT') throw new Error(`skopeo sync of ${repo} failed (${r.status}): ${r.stderr.slice(-1000)}`);
          stalled += tags.length;
          continue;
        }
        seconds += (performance.now() - t) / 1000;
        copied += tags.length;
      }
      row.floor = (seconds * refs.length) / copied;
      row.floorName = 'skopeo sync, registry to registry on the same S3';
      row.note = `${row.note}; skopeo: ${copied} of the ${refs.length} images in ${seconds.toFixed(1)} s${stalled > 0 ? ` (${stalled} more stalled, left out)` : ''}, scaled to ${refs.length}`;
    } finally {
      await from.stop();
      await into.stop();
    }
    results.push(row);

    // ls and verify of the whole store on S3, from listings.
    const ls = s3Run(['ls', 's3://src/bench']);
    results.push({ name: `ls (whole store, ${base1} tags) on S3`, seconds: ls.seconds, rssMB: ls.rssMB, note: formatRequests(ls.requests, base1, 'tag') });
    const verify = s3Run(['verify', 's3://src/bench']);
    results.push({ name: `verify (whole store) on S3, without --deep`, seconds: verify.seconds, rssMB: verify.rssMB, note: formatRequests(verify.requests, base1, 'tag') });
  } finally {
    process.env = saved;
    await server.stop();
  }
}

function report(shape: StoreShape, s1: { buildSeconds: number | undefined }, v2: string, base1: number): void {
  const rows = results.map((r) => [
    r.name,
    Number.isNaN(r.seconds) ? '' : r.seconds.toFixed(3),
    r.floor === undefined ? '' : `${r.floor.toFixed(3)} (${r.floorName})`,
    r.floor === undefined ? '' : `${(r.seconds / r.floor).toFixed(2)}x`,
    r.rssMB === undefined ? '' : r.rssMB.toFixed(0),
    r.note ?? '',
  ]);
  const header = ['measurement', 'regfs s (median)', 'floor s', 'ratio', 'peak RSS MB', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(header));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(r));
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, dir: base, tmpfs: isTmpfs(base) };
  const shapeInfo = { ...shape, tags: base1, blobs: countBlobs(v2) };
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify({ date: new Date().toISOString(), machine, runs, store: shapeInfo, buildSeconds: s1.buildSeconds, results }, null, 2)}\n`);
  console.log(`\n${JSON.stringify(machine)}\nstore: ${JSON.stringify(shapeInfo)}\nresult: ${args.out}`);
}

function countBlobs(v2: string): number {
  let n = 0;
  for (const fan of readdirSync(join(v2, 'blobs', 'sha256'))) n += readdirSync(join(v2, 'blobs', 'sha256', fan)).length;
  return n;
}

await main();
