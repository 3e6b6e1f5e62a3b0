/**
 * `npm test`'s pretest: make sure the tools the tests drive are installed, so that the one
 * command passes on a fresh machine. The tests start the real docker-registry 2.8 (at
 * REGISTRY_BIN), drive `skopeo`, `umoci` (which reads the OCI layouts to-oci writes) and, for the reflink
 * test, `mkfs.xfs` (looked up on PATH); the bench's smoke run needs GNU time (/usr/bin/time), which minimal images lack, and python3.
 * The S3 tests start Ceph's RADOS Gateway (`radosgw`, `ceph-mon`, `ceph-osd` and the `ceph` tools).
 *
 * All present: prints nothing. Some missing, running as root where `apt-get` is on PATH (Debian,
 * Ubuntu): `apt-get update`, then `apt-get install -y --no-install-recommends` of the missing
 * ones' packages, then checks again. Otherwise: stops (exit 1) with the command to run.
 *
 *   node --import tsx scripts/ensure-tools.ts
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { basename, delimiter, dirname, isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REGISTRY_BIN } from './lib/registry-server.js';

/** A program the tests run, and the Debian package that installs it. */
export interface Tool {
  /** An absolute path (checked as it is) or a command name (looked up on PATH). */
  program: string;
  package: string;
}

export const TOOLS: readonly Tool[] = [
  { program: REGISTRY_BIN, package: 'docker-registry' },
  { program: 'skopeo', package: 'skopeo' },
  { program: 'mkfs.xfs', package: 'xfsprogs' },
  // umoci: the independent reader that checks every OCI image layout to-oci writes.
  { program: 'umoci', package: 'umoci' },
  // GNU time: the bench (test/bench.test.ts runs it) measures each run's peak RSS with it.
  { program: '/usr/bin/time', package: 'time' },
  // Python 3: the bench's plain script (scripts/bench/plain-extract.py), which the smoke run times.
  { program: 'python3', package: 'python3' },
  // Ceph's RADOS Gateway on a one-node cluster: the S3 server the S3 tests start
  // (scripts/lib/s3-server.ts). monmaptool comes with ceph-mon (through ceph-base).
  { program: 'radosgw', package: 'radosgw' },
  { program: 'ceph-mon', package: 'ceph-mon' },
  { program: 'monmaptool', package: 'ceph-mon' },
  { program: 'ceph-osd', package: 'ceph-osd' },
  { program: 'ceph', package: 'ceph-common' },
  { program: 'ceph-authtool', package: 'ceph-common' },
  { program: 'radosgw-admin', package: 'ceph-common' },
];

/**
 * What this machine offers: its PATH (as in the environment), whether we run as root, and
 * where a program may be installed although not on PATH (the sbin directories, which a
 * root shell without a login environment may lack).
 */
export interface Machine {
  path: string;
  root: boolean;
  offPath: readonly string[];
}

export const OFF_PATH_DIRS: readonly string[] = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** What to do about the missing tools. */
export type Plan =
  | { action: 'none' }
  | { action: 'install'; missing: Tool[]; commands: string[][] }
  | { action: 'stop'; missing: Tool[]; message: string };

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The executable `program` names on `path`, as a shell finds it, or undefined. */
export function findProgram(program: string, path: string): string | undefined {
  if (isAbsolute(program)) return isExecutableFile(program) ? program : undefined;
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, program);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
}

/** The tools of `tools` this machine lacks. */
export function missingTools(tools: readonly Tool[], machine: Machine): Tool[] {
  return tools.filter((t) => findProgram(t.program, machine.path) === undefined);
}

/** The Debian packages that hold `missing`, each once. */
function packagesOf(missing: readonly Tool[]): string[] {
  return [...new Set(missing.map((t) => t.package))];
}

/** Decide: nothing to do, install with apt-get (root on Debian), or stop with what to run. */
export function planTools(tools: readonly Tool[], machine: Machine): Plan {
  const missing = missingTools(tools, machine);
  if (missing.length === 0) return { action: 'none' };
  // Installed, but the tests would not find it by name: installing again would not help.
  const elsewhere = missing.flatMap((t) => {
    const at = isAbsolute(t.program) ? undefined : findProgram(t.program, machine.offPath.join(delimiter));
    return at === undefined ? [] : [at];
  });
  if (elsewhere.length > 0) {
    const dirs = [...new Set(elsewhere.map((p) => dirname(p)))].join(delimiter);
    return {
      action: 'stop',
      missing,
      message: `The tests run ${elsewhere.map((p) => basename(p)).join(', ')} by name, but PATH does not hold ${elsewhere.join(', ')}.\n` + `Add it: PATH="$PATH${delimiter}${dirs}" npm test`,
    };
  }
  const packages = packagesOf(missing);
  const apt = findProgram('apt-get', machine.path) !== undefined;
  if (machine.root && apt) {
    return { action: 'install', missing, commands: [['apt-get', 'update'], ['apt-get', 'install', '-y', '--no-install-recommends', ...packages]] };
  }
  const names = missing.map((t) => `${t.program} (package ${t.package})`).join(', ');
  const how = apt
    ? `Run as root, npm test installs them itself (as .ci/run does); or install them first:\n` +
      `  sudo apt-get install -y --no-install-recommends ${packages.join(' ')}`
    : `Install them with this system's package manager (Debian packages: ${packages.join(' ')}); ` +
      `the tests run docker-registry 2.8 from ${REGISTRY_BIN}.`;
  return { action: 'stop', missing, message: `The tests need ${names}: not found.\n${how}` };
}

function main(): number {
  const machine: Machine = { path: process.env.PATH ?? '', root: process.getuid?.() === 0, offPath: OFF_PATH_DIRS };
  const plan = planTools(TOOLS, machine);
  if (plan.action === 'none') return 0;
  if (plan.action === 'stop') {
    process.stderr.write(`${plan.message}\n`);
    return 1;
  }
  process.stderr.write(`The tests need ${plan.missing.map((t) => t.program).join(', ')}: installing ${packagesOf(plan.missing).join(' ')}.\n`);
  for (const [cmd, ...args] of plan.commands) {
    process.stderr.write(`$ ${[cmd, ...args].join(' ')}\n`);
    const r = spawnSync(cmd!, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status !== 0) {
      process.stderr.write(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit status ${r.status ?? r.signal}`}).\n`);
      return 1;
    }
  }
  const still = missingTools(TOOLS, machine);
  if (still.length > 0) {
    process.stderr.write(`Still not found after installing: ${still.map((t) => t.program).join(', ')}.\n`);
    return 1;
  }
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = main();
