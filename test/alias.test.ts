/**
 * Aliases: a symbolic link that makes one directory under `repositories/` reachable by two
 * paths. A delete through one name empties it for both, so rm refuses to delete through an
 * alias, gc --apply refuses while one exists (SYMLINK_ALIAS), verify reports it, and no walk
 * goes through a directory twice (links that fan out cannot make a walk exponential).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, rename, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { FIXTURE_ROOT } from './helpers/fixture.js';
import { copyTree, snapshotTree, tempDir } from './helpers/tree.js';

const V2 = join('docker', 'registry', 'v2');

async function withCopy(fn: (root: string, repos: string) => Promise<void>): Promise<void> {
  const t = await tempDir('regfs-alias-');
  try {
    const root = join(t.dir, 'root');
    await copyTree(FIXTURE_ROOT, root);
    await fn(root, join(root, V2, 'repositories'));
  } finally {
    await t.cleanup();
  }
}

test('rm refuses to delete through a repository that is an alias of another (SYMLINK_ALIAS); the other stays whole', async () => {
  await withCopy(async (root, repos) => {
    await symlink('team/app', join(repos, 'alias'));
    const before = await snapshotTree(join(repos, 'team', 'app'));
    for (const ref of ['alias', 'alias:v1']) {
      const r = await runCli(['rm', root, ref], { timeoutMs: 20_000 });
      assert.equal(r.code, 1, `${ref}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /\[SYMLINK_ALIAS\]/, ref);
    }
    assert.deepEqual(await snapshotTree(join(repos, 'team', 'app')), before);
    // ls lists both names, as the registry's catalog does.
    const ls = await runCli(['ls', root, 'alias'], { timeoutMs: 20_000 });
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /alias:v1/);
  });
});

test("gc --apply refuses while a repository's revisions are another's through a symbolic link; verify names it", async () => {
  await withCopy(async (root, repos) => {
    // ghost has no tags; its revisions are team/app's: a --delete-untagged sweep by ghost's
    // tags would delete team/app's revision links.
    await mkdir(join(repos, 'ghost', '_manifests', 'revisions'), { recursive: true });
    await mkdir(join(repos, 'ghost', '_layers'));
    await symlink('../../../team/app/_manifests/revisions/sha256', join(repos, 'ghost', '_manifests', 'revisions', 'sha256'));
    const before = await snapshotTree(join(root, V2, 'repositories', 'team'));
    for (const args of [['--apply'], ['--apply', '--delete-untagged']]) {
      const r = await runCli(['gc', root, ...args], { timeoutMs: 30_000 });
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /UNSAFE/);
      assert.match(r.stderr, /SYMLINK_ALIAS|symbolic link/);
    }
    assert.deepEqual(await snapshotTree(join(root, V2, 'repositories', 'team')), before);
    const v = await runCli(['verify', root, '--fast'], { timeoutMs: 30_000 });
    assert.equal(v.code, 4, v.stdout + v.stderr);
    assert.match(v.stdout + v.stderr, /\[SYMLINK_ALIAS\]|SYMLINK_ALIAS/);
  });
});

test('links that fan out (each level two links to the next, 2^24 paths) are walked once: ls, verify and gc end at once', async () => {
  await withCopy(async (root, repos) => {
    const depth = 24;
    for (let i = 0; i <= depth; i++) await mkdir(join(repos, 'fan', `l${i}`), { recursive: true });
    for (let i = 0; i < depth; i++) {
      await symlink(`../l${i + 1}`, join(repos, 'fan', `l${i}`, 'a'));
      await symlink(`../l${i + 1}`, join(repos, 'fan', `l${i}`, 'b'));
    }
    for (const args of [['ls', root], ['verify', root, '--fast'], ['gc', root]]) {
      const r = await runCli(args, { timeoutMs: 30_000 });
      assert.notEqual(r.code, null, `${args[0]} still running after 30 s`);
      assert.doesNotMatch(r.stderr, /internal error/, args[0]);
    }
  });
});

test('SYMLINK_ALIAS names the symbolic link, not the directory it leads to, whichever sorts first (verify and gc)', async () => {
  await withCopy(async (root, repos) => {
    // `alias` sorts before `team`; ghost's revisions are team/app's through a link, and ghost sorts first too.
    await symlink('team', join(repos, 'alias'));
    await mkdir(join(repos, 'ghost', '_manifests', 'revisions'), { recursive: true });
    await symlink('../../../team/app/_manifests/revisions/sha256', join(repos, 'ghost', '_manifests', 'revisions', 'sha256'));
    const links = [join(repos, 'alias'), join(repos, 'ghost', '_manifests', 'revisions', 'sha256')].sort();
    const v = await runCli(['verify', root, '--fast', '--json'], { timeoutMs: 30_000 });
    assert.equal(v.code, 4, v.stderr);
    const found = (JSON.parse(v.stdout) as { findings: Array<{ code: string; path: string }> }).findings.filter((f) => f.code === 'SYMLINK_ALIAS').map((f) => f.path);
    assert.deepEqual(found.sort(), links);
    const g = await runCli(['gc', root, '--apply', '--json'], { timeoutMs: 30_000 });
    assert.equal(g.code, 1, g.stderr);
    const problems = (JSON.parse(g.stdout) as { problems: Array<{ code: string; path: string }> }).problems.filter((p) => p.code === 'SYMLINK_ALIAS').map((p) => p.path);
    assert.deepEqual(problems.sort(), links);
  });
});

test("a repository's own link to another disk is its name; a link to it from inside the tree is the alias: verify names the alias, rm refuses through either name", async () => {
  await withCopy(async (root, repos) => {
    const disk = join(root, '..', 'disk2');
    await mkdir(disk);
    await rename(join(repos, 'tools', 'nomediatype'), join(disk, 'nomediatype'));
    await symlink(join(disk, 'nomediatype'), join(repos, 'tools', 'nomediatype'));
    await symlink('nomediatype', join(repos, 'tools', 'alias'));
    const v = await runCli(['verify', root, '--fast', '--json'], { timeoutMs: 30_000 });
    const found = (JSON.parse(v.stdout) as { findings: Array<{ code: string; path: string }> }).findings.filter((f) => f.code === 'SYMLINK_ALIAS').map((f) => f.path);
    assert.deepEqual(found, [join(repos, 'tools', 'alias')], v.stdout);
    const before = await snapshotTree(join(disk, 'nomediatype'));
    const r = await runCli(['rm', root, 'tools/alias:1.0'], { timeoutMs: 20_000 });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /\[SYMLINK_ALIAS\]/);
    assert.deepEqual(await snapshotTree(join(disk, 'nomediatype')), before, 'nothing deleted through the alias');
    // Through its own name too: the tag would go for the alias as well, which the registry serves.
    const own = await runCli(['rm', root, 'tools/nomediatype:1.0'], { timeoutMs: 20_000 });
    assert.equal(own.code, 1, own.stdout + own.stderr);
    assert.match(own.stderr, /\[SYMLINK_ALIAS\]/);
  });
});

test("a relative link on another disk is resolved from where it really is: rm through a namespace linked to that disk is no alias", async () => {
  await withCopy(async (root, repos) => {
    // repositories/team2 -> disk3/ns, and disk3/ns/platform -> ../library/platform, read from
    // disk3/ns (disk3/library), not from repositories/ (where a library namespace also exists).
    const disk = join(root, '..', 'disk3');
    await mkdir(join(disk, 'ns'), { recursive: true });
    await mkdir(join(disk, 'library'));
    await rename(join(repos, 'team', 'platform'), join(disk, 'library', 'platform'));
    await symlink('../library/platform', join(disk, 'ns', 'platform'));
    await symlink(join(disk, 'ns'), join(repos, 'team2'));
    const v = await runCli(['verify', root, '--fast', '--json'], { timeoutMs: 30_000 });
    assert.ok(!v.stdout.includes('SYMLINK_ALIAS'), v.stdout);
    const r = await runCli(['rm', root, 'team2/platform/base/alpine:3.19'], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
});

test('an alias that reaches a repository through a link outside the tree, or through `..` after a link, is an alias: verify names it, rm refuses', async () => {
  for (const variant of ['hop outside', 'dot-dot after a link']) {
    await withCopy(async (root, repos) => {
      const disk = join(root, '..', 'disk4');
      await mkdir(disk);
      await rename(join(repos, 'library', 'busybox'), join(disk, 'busybox'));
      await symlink(join(disk, 'busybox'), join(repos, 'library', 'busybox'));
      if (variant === 'hop outside') {
        await symlink(join(repos, 'library', 'busybox'), join(root, '..', 'hop'));
        await symlink(join(root, '..', 'hop'), join(repos, 'alias'));
      } else {
        await symlink('team/app/_manifests', join(repos, 'sub'));
        await symlink('sub/../../../library/busybox', join(repos, 'alias'));
      }
      const v = await runCli(['verify', root, '--fast', '--json'], { timeoutMs: 30_000 });
      const found = (JSON.parse(v.stdout) as { findings: Array<{ code: string; path: string }> }).findings.filter((f) => f.code === 'SYMLINK_ALIAS').map((f) => f.path);
      assert.ok(found.includes(join(repos, 'alias')) && !found.includes(join(repos, 'library', 'busybox')), `${variant}: ${JSON.stringify(found)}`);
      const before = await snapshotTree(join(disk, 'busybox'));
      for (const ref of ['alias:latest', 'alias']) {
        const r = await runCli(['rm', root, ref], { timeoutMs: 20_000 });
        assert.equal(r.code, 1, `${variant}, rm ${ref}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /\[SYMLINK_ALIAS\]/);
      }
      assert.deepEqual(await snapshotTree(join(disk, 'busybox')), before, `${variant}: nothing deleted`);
    });
  }
});

test('rm deletes through no second name of a directory, wherever the directory really is; a repository reached by one name through links to another disk is its own', async () => {
  type Case = { name: string; make: (repos: string, disk: string) => Promise<void>; refused: string[]; alias?: string; allowed?: string };
  const moveBusybox = async (repos: string, disk: string): Promise<void> => {
    await rename(join(repos, 'library', 'busybox'), join(disk, 'busybox'));
    await symlink(join(disk, 'busybox'), join(repos, 'library', 'busybox'));
  };
  const cases: Case[] = [
    {
      name: 'two links out of the tree to one directory',
      make: async (repos, disk) => {
        await moveBusybox(repos, disk);
        await symlink(join(disk, 'busybox'), join(repos, 'library', 'bb2'));
      },
      refused: ['library/bb2:1.36', 'library/busybox:1.36'],
    },
    {
      name: "a link into another repository's _manifests",
      make: async (repos, disk) => {
        await moveBusybox(repos, disk);
        await mkdir(join(repos, 'team', 'mirror'));
        await symlink(join(disk, 'busybox', '_manifests'), join(repos, 'team', 'mirror', '_manifests'));
      },
      refused: ['team/mirror:latest'],
    },
    {
      name: 'a namespace on another disk, an alias among its repositories',
      make: async (repos, disk) => {
        await rename(join(repos, 'library'), join(disk, 'library'));
        await symlink(join(disk, 'library'), join(repos, 'library'));
        await symlink('busybox', join(disk, 'library', 'alias'));
      },
      refused: ['library/alias:1.36'],
      alias: 'library/alias',
    },
    {
      name: 'a link to "." in a namespace on another disk',
      make: async (repos, disk) => {
        await rename(join(repos, 'library'), join(disk, 'library'));
        await symlink(join(disk, 'library'), join(repos, 'library'));
        await symlink('.', join(disk, 'library', 'self'));
      },
      refused: ['library/self/busybox:1.36', 'library/self/busybox'],
    },
    {
      name: 'a link to the registry root',
      make: async (repos, disk) => {
        await moveBusybox(repos, disk);
        await mkdir(join(repos, 'ns'));
        await symlink(join(repos, '..', '..', '..', '..'), join(repos, 'ns', 'x'));
      },
      refused: ['ns/x/docker/registry/v2/repositories/library/busybox:latest'],
    },
    {
      name: 'a link back to repositories/',
      make: async (repos) => {
        await symlink('.', join(repos, 'loop'));
      },
      refused: ['team/app:edge', 'loop/team/app:edge'],
    },
    {
      name: "a tag and a revision of one repository linked from another's",
      make: async (repos) => {
        const app = join(repos, 'team', 'app', '_manifests');
        const worker = join(repos, 'team', 'app', 'worker', '_manifests');
        await symlink(join(app, 'tags', 'v2'), join(worker, 'tags', 'v2'));
        const rev = (await readdir(join(app, 'revisions', 'sha256')))[0]!;
        await symlink(join(app, 'revisions', 'sha256', rev), join(worker, 'revisions', 'sha256', rev));
      },
      refused: ['team/app:v2'],
    },
    {
      name: 'a link that loops in an unrelated repository (the rm goes on)',
      make: async (repos) => {
        await mkdir(join(repos, 'other', 'repo', '_manifests'), { recursive: true });
        await symlink('_layers', join(repos, 'other', 'repo', '_layers'));
      },
      refused: [],
      allowed: 'team/app:edge',
    },
    {
      name: 'a repository moved into a directory the walk skips (_store) inside the tree',
      make: async (repos) => {
        await mkdir(join(repos, '_store'));
        await rename(join(repos, 'library', 'busybox'), join(repos, '_store', 'busybox'));
        await symlink('../_store/busybox', join(repos, 'library', 'busybox'));
      },
      refused: [],
      allowed: 'library/busybox:1.36',
    },
    {
      name: 'a repository reached through a directory the walk skips (_disk2) to another disk',
      make: async (repos, disk) => {
        await mkdir(join(disk, 'store'));
        await rename(join(repos, 'library', 'busybox'), join(disk, 'store', 'busybox'));
        await symlink(join(disk, 'store'), join(repos, '_disk2'));
        await symlink('../_disk2/busybox', join(repos, 'library', 'busybox'));
      },
      refused: [],
      allowed: 'library/busybox:1.36',
    },
  ];
  for (const c of cases) {
    await withCopy(async (root, repos) => {
      const disk = join(root, '..', 'disk5');
      await mkdir(disk);
      await c.make(repos, disk);
      const before = await snapshotTree(disk);
      for (const ref of c.refused) {
        const r = await runCli(['rm', root, ref], { timeoutMs: 20_000 });
        assert.equal(r.code, 1, `${c.name}, rm ${ref}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, /\[SYMLINK_ALIAS\]/, `${c.name}, rm ${ref}`);
      }
      assert.deepEqual(await snapshotTree(disk), before, `${c.name}: nothing deleted`);
      if (c.alias !== undefined) {
        const v = await runCli(['verify', root, '--fast', '--json'], { timeoutMs: 30_000 });
        const found = (JSON.parse(v.stdout) as { findings: Array<{ code: string; path: string }> }).findings.filter((f) => f.code === 'SYMLINK_ALIAS').map((f) => f.path);
        assert.deepEqual(found, [join(repos, c.alias)], `${c.name}: verify names the alias`);
      }
      if (c.allowed !== undefined) assert.equal((await runCli(['rm', root, c.allowed], { timeoutMs: 20_000 })).code, 0, `${c.name}: rm ${c.allowed}`);
    });
  }
});
