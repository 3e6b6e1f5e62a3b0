/**
 * scripts/ensure-tools.ts (`npm test`'s pretest): what is missing decides what it runs or says.
 * Driven with a fake PATH whose `apt-get` only records its arguments (and, when asked, drops
 * stand-ins for what it was asked to install); the real apt-get never runs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findProgram, OFF_PATH_DIRS, planTools, TOOLS, type Tool } from '../scripts/ensure-tools.js';
import { withTempDir } from './helpers/tree.js';

const SCRIPT = fileURLToPath(new URL('../scripts/ensure-tools.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

async function executable(path: string, body = '#!/bin/sh\n'): Promise<void> {
  await writeFile(path, body);
  await chmod(path, 0o755);
}

/**
 * A fake `apt-get` in `dir` that logs `$DEBIAN_FRONTEND $*` and, if `installs`, "installs" a
 * stand-in for every tool of TOOLS looked up by name whose package it was asked for.
 */
async function fakeApt(dir: string, log: string, installs: boolean): Promise<void> {
  const cases = [...new Set(TOOLS.filter((t) => !isAbsolute(t.program)).map((t) => t.package))]
    .map((pkg) => `  ${pkg}) files="${TOOLS.filter((t) => t.package === pkg && !isAbsolute(t.program)).map((t) => t.program).join(' ')}" ;;`)
    .join('\n');
  const install = installs
    ? `if [ "$1" = install ]; then for p in "$@"; do case "$p" in
${cases}
  *) continue ;; esac
  for f in $files; do printf '#!/bin/sh\\n' > "${dir}/$f"; /bin/chmod 755 "${dir}/$f"; done; done; fi\n`
    : '';
  await executable(join(dir, 'apt-get'), `#!/bin/sh\necho "$DEBIAN_FRONTEND $*" >> "${log}"\n${install}`);
}

function runScript(path: string, uid?: number): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', SCRIPT], {
    cwd: ROOT,
    env: { PATH: path, HOME: '/nonexistent' },
    encoding: 'utf8',
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
  return { status: r.status, stderr: r.stderr };
}

/** Tools looked up on PATH, as in TOOLS. */
const BY_NAME: Tool[] = [
  { program: 'skopeo', package: 'skopeo' },
  { program: 'mkfs.xfs', package: 'xfsprogs' },
];

test('ensure-tools: finds a program on PATH or at its absolute path, only as an executable file', async () => {
  await withTempDir(async (dir) => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    await mkdir(a);
    await mkdir(b);
    await writeFile(join(a, 'skopeo'), 'not executable');
    await mkdir(join(a, 'mkfs.xfs'));
    await executable(join(b, 'skopeo'));
    assert.equal(findProgram('skopeo', `${a}:${b}`), join(b, 'skopeo'));
    assert.equal(findProgram('mkfs.xfs', `${a}:${b}`), undefined);
    assert.equal(findProgram('skopeo', ''), undefined);
    assert.equal(findProgram(join(b, 'skopeo'), ''), join(b, 'skopeo'));
    assert.equal(findProgram(join(a, 'skopeo'), `${a}:${b}`), undefined);
  });
});

test('ensure-tools: nothing missing, nothing to do; missing as root with apt-get: update, then install just those packages', async () => {
  await withTempDir(async (dir) => {
    const registry = join(dir, 'docker-registry');
    const tools: Tool[] = [{ program: registry, package: 'docker-registry' }, ...BY_NAME];
    await fakeApt(dir, join(dir, 'log'), false);
    assert.deepEqual(planTools(tools, { path: dir, root: true, offPath: [] }), {
      action: 'install',
      missing: tools,
      commands: [['apt-get', 'update'], ['apt-get', 'install', '-y', '--no-install-recommends', 'docker-registry', 'skopeo', 'xfsprogs']],
    });
    await executable(registry);
    await executable(join(dir, 'mkfs.xfs'));
    assert.deepEqual(planTools(tools, { path: dir, root: true, offPath: [] }), {
      action: 'install',
      missing: [tools[1]],
      commands: [['apt-get', 'update'], ['apt-get', 'install', '-y', '--no-install-recommends', 'skopeo']],
    });
    await executable(join(dir, 'skopeo'));
    assert.deepEqual(planTools(tools, { path: dir, root: true, offPath: [] }), { action: 'none' });
    assert.deepEqual(planTools(tools, { path: dir, root: false, offPath: [] }), { action: 'none' });
  });
});

test('ensure-tools: missing and not root, or no apt-get: stops with the command to run', async () => {
  await withTempDir(async (dir) => {
    const tools: Tool[] = [{ program: join(dir, 'docker-registry'), package: 'docker-registry' }, ...BY_NAME];
    await executable(join(dir, 'docker-registry'));
    const noApt = planTools(tools, { path: dir, root: true, offPath: [] });
    assert.equal(noApt.action, 'stop');
    assert.deepEqual(noApt.action === 'stop' && noApt.missing, tools.slice(1));
    assert.match(noApt.action === 'stop' ? noApt.message : '', /^The tests need skopeo \(package skopeo\), mkfs\.xfs \(package xfsprogs\): not found\.\nInstall them with this system's package manager \(Debian packages: skopeo xfsprogs\)/);
    await fakeApt(dir, join(dir, 'log'), false);
    const user = planTools(tools, { path: dir, root: false, offPath: [] });
    assert.equal(user.action, 'stop');
    assert.match(user.action === 'stop' ? user.message : '', /\n {2}sudo apt-get install -y --no-install-recommends skopeo xfsprogs$/);
  });
});

test('ensure-tools: a program installed off PATH (an sbin directory) stops with the PATH to use, installs nothing', async () => {
  await withTempDir(async (dir) => {
    const sbin = join(dir, 'sbin');
    await mkdir(sbin);
    await executable(join(sbin, 'mkfs.xfs'));
    await fakeApt(dir, join(dir, 'log'), false);
    const tools: Tool[] = [{ program: 'mkfs.xfs', package: 'xfsprogs' }];
    const plan = planTools(tools, { path: dir, root: true, offPath: [sbin] });
    assert.deepEqual(plan, {
      action: 'stop',
      missing: tools,
      message: `The tests run mkfs.xfs by name, but PATH does not hold ${join(sbin, 'mkfs.xfs')}.\nAdd it: PATH="$PATH:${sbin}" npm test`,
    });
    assert.deepEqual(planTools(tools, { path: `${dir}:${sbin}`, root: true, offPath: [sbin] }), { action: 'none' });
  });
});

/** This machine's mkfs.xfs (npm test's pretest installs xfsprogs): the script finds it off PATH. */
const MKFS = findProgram('mkfs.xfs', OFF_PATH_DIRS.join(':'));

/** The tools looked up by name that the fake PATH below lacks: all but mkfs.xfs. */
const BY_NAME_MISSING = TOOLS.filter((t) => !isAbsolute(t.program) && t.program !== 'mkfs.xfs');

/** What the script asks apt-get to install with the fake PATH below: those tools' packages, and a tool at an absolute path only if this machine lacks it. */
const expectedPackages = [...new Set(TOOLS.filter((t) => BY_NAME_MISSING.includes(t) || (isAbsolute(t.program) && !existsSync(t.program))).map((t) => t.package))].join(' ');
const expectedInstall = `install -y --no-install-recommends ${expectedPackages}`;

/** A fake PATH: `dir` (the fake apt-get, none of the tools looked up by name) and the real mkfs.xfs's directory. */
function fakePath(dir: string): string {
  assert.ok(MKFS !== undefined, `no mkfs.xfs in ${OFF_PATH_DIRS.join(', ')}: install xfsprogs`);
  return `${dir}:${dirname(MKFS)}`;
}

test('ensure-tools script as root: runs apt-get update and install (non-interactive), then finds the tools', async () => {
  await withTempDir(async (dir) => {
    const log = join(dir, 'log');
    await fakeApt(dir, log, true);
    const r = runScript(fakePath(dir));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await readFile(log, 'utf8'), `noninteractive update\nnoninteractive ${expectedInstall}\n`);
    const names = BY_NAME_MISSING.map((t) => t.program).join(', ');
    const packages = [...new Set(BY_NAME_MISSING.map((t) => t.package))].join(' ');
    assert.ok(r.stderr.startsWith(`The tests need ${names}: installing ${packages}.\n$ apt-get update\n$ apt-get install`), r.stderr);
    assert.match(names, /^skopeo, umoci, python3, radosgw, ceph-mon, monmaptool, ceph-osd, ceph, ceph-authtool, radosgw-admin$/);
    // Everything there now: a second run does nothing and says nothing.
    const again = runScript(fakePath(dir));
    assert.deepEqual(again, { status: 0, stderr: '' });
    assert.equal((await readFile(log, 'utf8')).split('\n').length, 3);
  });
});

test('ensure-tools script as root: an install that leaves a tool missing fails, naming it', async () => {
  await withTempDir(async (dir) => {
    const log = join(dir, 'log');
    await fakeApt(dir, log, false);
    const r = runScript(fakePath(dir));
    assert.equal(r.status, 1);
    assert.ok(r.stderr.endsWith(`Still not found after installing: ${BY_NAME_MISSING.map((t) => t.program).join(', ')}.\n`), r.stderr);
    assert.equal(await readFile(log, 'utf8'), `noninteractive update\nnoninteractive ${expectedInstall}\n`);
  });
});

test('ensure-tools script as root, mkfs.xfs installed but its directory not on PATH: says so, runs no apt-get', async () => {
  await withTempDir(async (dir) => {
    const log = join(dir, 'log');
    await fakeApt(dir, log, true);
    for (const t of BY_NAME_MISSING) await executable(join(dir, t.program));
    const r = runScript(dir);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, `The tests run mkfs.xfs by name, but PATH does not hold ${MKFS}.\nAdd it: PATH="$PATH:${dirname(MKFS!)}" npm test\n`);
    assert.equal(existsSync(log), false);
  });
});

test('ensure-tools script as another user: runs no apt-get, says what to run', async () => {
  assert.equal(process.getuid?.(), 0, 'this test runs the script as nobody: run it as root');
  await withTempDir(async (dir) => {
    const log = join(dir, 'log');
    await chmod(dir, 0o755);
    await fakeApt(dir, log, true);
    const r = runScript(fakePath(dir), 65534);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /not found\.\nRun as root, npm test installs them itself \(as \.ci\/run does\); or install them first:\n {2}sudo apt-get install -y --no-install-recommends (docker-registry )?skopeo umoci python3 radosgw ceph-mon ceph-osd ceph-common\n$/);
    assert.equal(existsSync(log), false);
  });
});
