/**
 * Bad input, each case a test, run as a user runs regfs: through the built CLI (run
 * `npm run build` first), against a fresh copy of the registry-written fixture (or a fresh
 * `dir:` export, or a list file) made for that case. Every case checks:
 *
 * - the exit code (1 for errors, 2 for usage) and the stable `[CODE]` on stderr; for list and
 *   resolution problems one line per problem, then an `[INCOMPLETE]` line;
 * - that the line with the code names the input at fault (the list file and line, or the path);
 * - no stack trace, nothing on stdout;
 * - the source (SRC, from-dir's IN, gc's and rm's ROOT) unchanged: content, mode and mtime of
 *   every entry;
 * - nothing visible half-written in the output: it does not exist when the run failed before
 *   writing; where it existed before a refused run it is unchanged; and where a run failed while
 *   writing, no tag or revision link in it reaches a manifest that is not whole (and
 *   `regfs verify` passes), and no `dir:` image directory names a blob it lacks.
 *
 * Some cases mount filesystems (a read-only tmpfs, a read-only bind mount, a small tmpfs for
 * ENOSPC) and need root; where mounting is not permitted they are skipped with the reason. The
 * ENOSPC cases without a mount inject the fault with a preload in the regfs process. "Another
 * filesystem" is /dev/shm, skipped where it is the temp dir's filesystem.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFile, lstat, mkdir, mkdtemp, readFile, rename, rm as rmrf, symlink, truncate, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { digestOf, digestHex, type Digest } from '../src/digest.js';
import type { RegfsErrorCode } from '../src/errors.js';
import { acquireLock, LOCK_FILE, type Lock } from '../src/fs/lock.js';
import { extract } from '../src/ops/extract.js';
import { toDir } from '../src/ops/to-dir.js';
import { parseRepoName, parseTag, type RepoName, type Tag } from '../src/reference.js';
import * as layout from '../src/registry/layout.js';
import { FIXTURE_PUSHES } from '../scripts/lib/fixture-spec.js';
import { manifestsOf, type Image, type Index } from '../scripts/lib/images.js';
import { runCli } from './helpers/cli.js';
import { FIXTURE_ROOT, currentPush } from './helpers/fixture.js';
import { copyTree, snapshotTree, tempDir } from './helpers/tree.js';
import {
  V2,
  assertNoStackTrace,
  codedLines,
  deviceOf,
  dirExportProblems,
  enospcEnv,
  mountReadOnlyBind,
  mountReadOnlyTmpfs,
  mountSmallTmpfs,
  storageProblems,
  unmount,
  verifyCli,
} from './helpers/bad-input.js';

// ---------------------------------------------------------------------------------------------
// The fixture's images
// ---------------------------------------------------------------------------------------------

const APP = parseRepoName('team/app');
const V1 = parseTag('v1');
const v1 = currentPush('team/app', 'v1').image as Image;
const v2img = currentPush('team/app', 'v2').image as Image;
const tool = currentPush('multiarch/tool', '1.0').image as Index;
const toolChildren = manifestsOf(tool).slice(1) as Image[];
const ALL_REFS = [...new Set(FIXTURE_PUSHES.map((p) => `${p.repo}:${p.tag}`))];
const ZERO = `sha256:${'0'.repeat(64)}` as Digest;
const ELSEWHERE = `sha256:${'e'.repeat(64)}` as Digest;

const currentLink = (v2: string, repo: RepoName = APP, tag: Tag = V1): string => layout.tagCurrentLinkPath(v2, repo, tag);
const dataOf = (v2: string, d: Digest): string => layout.blobDataPath(v2, d);

/** Replace a file by new content under the same name (a new inode: the copy never shares one with the fixture anyway). */
async function replaceFile(path: string, content: string | Buffer): Promise<void> {
  await unlink(path).catch(() => undefined);
  await writeFile(path, content);
}

/** Store bytes as a manifest of `repo` under their own digest, with a revision link, and point `repo:tag` at it. */
async function storeManifestAndTag(v2: string, bytes: Buffer, repo: RepoName = APP, tag: Tag = V1): Promise<Digest> {
  const d = digestOf(bytes);
  await mkdir(layout.blobDir(v2, d), { recursive: true });
  await writeFile(dataOf(v2, d), bytes);
  await mkdir(dirname(layout.revisionLinkPath(v2, repo, d)), { recursive: true });
  await writeFile(layout.revisionLinkPath(v2, repo, d), d);
  await writeFile(currentLink(v2, repo, tag), d);
  return d;
}

// ---------------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------------

/** What a case gets to build its input with. */
class Ctx {
  private source: string | undefined;
  private readonly cleanups: Array<() => Promise<void> | void> = [];
  private readonly afterRuns: Array<() => Promise<void> | void> = [];
  constructor(readonly dir: string) {}

  /** A fresh copy of the fixture registry root (made on first use). */
  async src(): Promise<string> {
    if (this.source === undefined) {
      this.source = join(this.dir, 'src');
      await copyTree(FIXTURE_ROOT, this.source);
    }
    return this.source;
  }

  /** The storage root (`docker/registry/v2`) of the source copy. */
  async v2(): Promise<string> {
    return join(await this.src(), V2);
  }

  get sourceMade(): string | undefined {
    return this.source;
  }

  /** `<dir>/out`, not created. */
  get out(): string {
    return join(this.dir, 'out');
  }

  /** A list file holding these lines (or exactly this text). */
  async list(lines: string[] | string, name = 'images.list'): Promise<string> {
    const p = join(this.dir, name);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, typeof lines === 'string' ? lines : `${lines.join('\n')}\n`);
    return p;
  }

  /** Run after the case's checks (an unmount, a temp dir elsewhere). */
  onCleanup(fn: () => Promise<void> | void): void {
    this.cleanups.unshift(fn);
  }

  /** Run right after the CLI returned and the trees were snapshotted (a lock the test held). */
  afterRun(fn: () => Promise<void> | void): void {
    this.afterRuns.push(fn);
  }

  async runAfterRun(): Promise<void> {
    for (const f of this.afterRuns.splice(0)) await f();
  }

  async cleanup(): Promise<void> {
    for (const f of this.cleanups.splice(0)) await f();
  }
}

interface Output {
  path: string;
  /** registry storage (extract, from-dir) or a `dir:` export (to-dir). */
  kind: 'storage' | 'dir';
  /** The run fails while writing: the output may exist, and must hold nothing visible half-written. */
  writes?: boolean;
}

interface Setup {
  args: string[];
  stdin?: string;
  /** Extra environment for the regfs process (an injected fault). */
  env?: Record<string, string>;
  /** Trees that must come out unchanged; default: the source copy, if the case made one. */
  unchanged?: string[];
  /** Entries of the unchanged trees whose metadata may change (the storage root gc's lock was taken in). */
  mayTouch?: string[];
  /** The output the command was asked to write. */
  out?: Output;
  /** Substrings the line carrying the expected code must contain. */
  names: string[];
  /** Substrings some `error:` line must contain (when the coded line is a summary). */
  namesAnywhere?: string[];
  /** Text that must not appear on stderr at all. */
  secret?: string;
  /** Skip the case, with this reason. */
  skip?: string;
}

interface Case {
  name: string;
  code: RegfsErrorCode;
  /** Default 1; 2 for USAGE. */
  exit?: number;
  /** The problem is one of several collected before writing: an `[INCOMPLETE]` line follows. */
  incomplete?: boolean;
  /** How many problem lines precede `[INCOMPLETE]` (default: at least one). */
  problems?: number;
  setup(ctx: Ctx): Promise<Setup>;
}

async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function snapshotWithout(root: string, mayTouch: string[]): Promise<Map<string, string>> {
  const st = await lstat(root);
  if (!st.isDirectory()) return new Map([['', `${st.mode.toString(8)} ${st.mtimeMs} ${st.size} ${(await readFile(root)).toString('base64')}`]]);
  const snap = await snapshotTree(root);
  for (const p of mayTouch) snap.delete(p);
  return snap;
}

const timings: Array<[string, number]> = [];

async function runCase(t: TestContext, c: Case): Promise<void> {
  const started = performance.now();
  const tmp = await tempDir('regfs-bad-');
  const ctx = new Ctx(tmp.dir);
  try {
    const s = await c.setup(ctx);
    if (s.skip !== undefined) {
      t.skip(s.skip);
      return;
    }
    const watched = s.unchanged ?? (ctx.sourceMade === undefined ? [] : [ctx.sourceMade]);
    const mayTouch = s.mayTouch ?? [];
    const before = await Promise.all(watched.map((w) => snapshotWithout(w, mayTouch)));
    const outExisted = s.out !== undefined && (await pathExists(s.out.path));
    const outBefore = s.out !== undefined && outExisted ? await snapshotTree(s.out.path) : undefined;

    const r = await runCli(s.args, { ...(s.stdin === undefined ? {} : { stdin: s.stdin }), ...(s.env === undefined ? {} : { env: s.env }) });
    const dump = `exit ${r.code}\n--- stderr\n${r.stderr}--- stdout\n${r.stdout}`;

    // The trees, before anything the test itself held is let go.
    const afterSnaps = await Promise.all(watched.map((w) => snapshotWithout(w, mayTouch)));
    const outAfterRun = s.out !== undefined && outBefore !== undefined ? await snapshotTree(s.out.path) : undefined;
    await ctx.runAfterRun();

    // Exit code, code, message.
    const exit = c.exit ?? (c.code === 'USAGE' ? 2 : 1);
    assert.equal(r.code, exit, dump);
    assertNoStackTrace(r.stderr);
    assert.equal(r.stdout, '', `nothing on stdout\n${dump}`);
    const lines = codedLines(r.stderr);
    assert.ok(lines.length > 0, `an error line with a code\n${dump}`);
    const withCode = lines.filter((l) => l.code === c.code);
    assert.ok(withCode.length > 0, `a line with [${c.code}]\n${dump}`);
    assert.ok(
      withCode.some((l) => s.names.every((n) => l.message.includes(n))),
      `a [${c.code}] line naming ${s.names.map((n) => JSON.stringify(n)).join(', ')}\n${dump}`,
    );
    for (const n of s.namesAnywhere ?? []) assert.ok(lines.some((l) => l.message.includes(n)), `an error line naming ${JSON.stringify(n)}\n${dump}`);
    if (c.incomplete === true) {
      const last = lines.at(-1)!;
      assert.equal(last.code, 'INCOMPLETE', `the last line is the INCOMPLETE summary\n${dump}`);
      assert.match(last.message, /problems? found; nothing was written$/);
      const n = lines.length - 1;
      if (c.problems !== undefined) assert.equal(n, c.problems, `${c.problems} problem lines\n${dump}`);
      assert.match(last.message, new RegExp(`^${n} problem`), `the summary counts the ${n} problem lines\n${dump}`);
    } else {
      assert.ok(!lines.some((l) => l.code === 'INCOMPLETE'), `no INCOMPLETE line for a single error\n${dump}`);
    }
    if (s.secret !== undefined) assert.ok(!r.stderr.includes(s.secret), `stderr must not show ${JSON.stringify(s.secret)}\n${dump}`);

    // The source is unchanged.
    for (const [i, w] of watched.entries()) assert.deepEqual(afterSnaps[i], before[i], `"${w}" changed`);

    // Nothing visible half-written.
    if (s.out !== undefined) {
      const o = s.out;
      if (outBefore !== undefined && o.writes !== true) assert.deepEqual(outAfterRun, outBefore, `the existing output "${o.path}" was changed by a refused run`);
      else if (!outExisted && o.writes !== true) assert.equal(await pathExists(o.path), false, `nothing written, not even "${o.path}"\n${dump}`);
      if (await pathExists(o.path)) {
        if (o.kind === 'storage') {
          assert.deepEqual(await storageProblems(o.path), [], `visible half-written content in "${o.path}"`);
          const v = await verifyCli(o.path);
          assert.equal(v.code, 0, `regfs verify "${o.path}" after the failed run:\n${v.output}`);
        } else {
          assert.deepEqual(await dirExportProblems(o.path), [], `half-written image directories in "${o.path}"`);
        }
      }
    }
  } finally {
    try {
      await ctx.cleanup();
    } finally {
      await tmp.cleanup();
      timings.push([c.name, performance.now() - started]);
    }
  }
}

/** Cases are independent (each its own temp dir, mount and output), so a few run at once. */
const CONCURRENCY = 4;

function cases(title: string, list: Case[]): void {
  describe(title, { concurrency: CONCURRENCY }, () => {
    for (const c of list) test(`${c.name} [${c.code}]`, (t) => runCase(t, c));
  });
}

// ---------------------------------------------------------------------------------------------
// Case builders
// ---------------------------------------------------------------------------------------------

/** extract with a list whose line 3 is `line` (a comment and a good line before it: nothing is written for them either). */
function listLine(name: string, code: RegfsErrorCode, line: string, extra: string[] = []): Case {
  return {
    name,
    code,
    incomplete: true,
    problems: 1,
    async setup(ctx) {
      const list = await ctx.list(['# release 42', 'team/app:v1', line]);
      return { args: ['extract', list, await ctx.src(), ctx.out], out: { path: ctx.out, kind: 'storage' }, names: [`${list}:3:`, ...extra] };
    },
  };
}

/** extract of `lines` from a source copy damaged by `damage`; the problem is on list line 1. */
function damaged(
  name: string,
  code: RegfsErrorCode,
  damage: (v2: string, ctx: Ctx) => Promise<{ names?: string[]; secret?: string } | void>,
  lines: string[] = ['team/app:v1'],
): Case {
  return {
    name,
    code,
    incomplete: true,
    problems: 1,
    async setup(ctx) {
      const v2 = await ctx.v2();
      const got = (await damage(v2, ctx)) ?? {};
      const list = await ctx.list(lines);
      return {
        args: ['extract', list, await ctx.src(), ctx.out],
        out: { path: ctx.out, kind: 'storage' },
        names: [`${list}:1:`, ...(got.names ?? [])],
        ...(got.secret === undefined ? {} : { secret: got.secret }),
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Image list lines
// ---------------------------------------------------------------------------------------------

cases('bad input: image list lines (extract)', [
  listLine('two images on one line', 'LIST_SYNTAX', 'team/app:v1 team/app:v2', ['one image a line']),
  listLine('a ref and a stray word after a tab', 'LIST_SYNTAX', 'team/app:v2\tlatest'),
  listLine('an empty tag after the colon', 'TAG_INVALID', 'team/app:'),
  listLine('a tag starting with a dot', 'TAG_INVALID', 'team/app:.hidden'),
  listLine('a tag with a plus sign', 'TAG_INVALID', 'team/app:1.0+build.5'),
  listLine('a tag of 129 characters', 'TAG_INVALID', `team/app:${'t'.repeat(129)}`),
  listLine('upper case in the repository name', 'NAME_INVALID', 'Team/App:v1', ['Team/App']),
  listLine('a .. component in the name', 'NAME_INVALID', 'team/../app:v1', ['".."']),
  listLine('a name that climbs out with ../..', 'NAME_INVALID', '../../../etc/passwd'),
  listLine('a tag that is a path (team/app:../../x)', 'NAME_INVALID', 'team/app:../../x'),
  listLine('an absolute path as the name', 'NAME_INVALID', '/team/app:v1', ['empty path component']),
  listLine('a ./ relative path as the name', 'NAME_INVALID', './team/app:v1'),
  listLine('an empty component (double slash)', 'NAME_INVALID', 'team//app:v1', ['empty path component']),
  listLine('a trailing slash', 'NAME_INVALID', 'team/app/'),
  listLine('a name of 256 characters', 'NAME_INVALID', `${'a'.repeat(128)}/${'b'.repeat(127)}:v1`, ['longer than 255']),
  listLine('an empty name before the tag', 'NAME_INVALID', ':v1', ['empty']),
  listLine('a registry host with an underscore', 'NAME_INVALID', 'bad_host.example.com:5000/app:v1', ['bad registry host']),
  listLine('a NUL byte in the name', 'NAME_INVALID', 'team/a\u0000pp:v1'),
  listLine('comma-separated refs', 'NAME_INVALID', 'team/app:v1,team/app:v2'),
  listLine('a digest too short', 'DIGEST_INVALID', 'team/app@sha256:abc123', ['needs 64 hex digits']),
  listLine('a digest in upper-case hex', 'DIGEST_INVALID', `team/app@sha256:${'A'.repeat(64)}`),
  listLine('a digest of an unknown algorithm', 'DIGEST_INVALID', `team/app@md5:${'0'.repeat(32)}`),
  listLine('an empty digest after @', 'DIGEST_INVALID', 'team/app:v1@'),
  listLine('a repository that does not exist', 'NAME_UNKNOWN', 'no/such/repo:1', ['no/such/repo']),
  listLine('a tag that does not exist', 'TAG_UNKNOWN', 'team/app:nosuchtag', ['team/app:nosuchtag']),
  listLine('a tag pinned to a digest it no longer points at', 'TAG_DIGEST_MISMATCH', `team/app:v1@${v2img.digest}`, [v1.digest]),
  listLine('a digest the repository has no revision for', 'MANIFEST_UNKNOWN', `team/app@${ZERO}`, [ZERO]),
  {
    name: 'several bad lines: each reported with its line, then one summary',
    code: 'TAG_INVALID',
    incomplete: true,
    problems: 3,
    async setup(ctx) {
      const list = await ctx.list(['team/app:v1', 'Upper/Case', 'team/app:-x', `team/app@sha256:${'0'.repeat(10)}`]);
      return {
        args: ['extract', list, await ctx.src(), ctx.out],
        out: { path: ctx.out, kind: 'storage' },
        names: [`${list}:3:`],
        namesAnywhere: [`${list}:2:`, `${list}:4:`],
      };
    },
  },
  {
    name: 'a bad line on standard input is named <stdin> and its line',
    code: 'TAG_INVALID',
    incomplete: true,
    problems: 1,
    async setup(ctx) {
      return { args: ['extract', '-', await ctx.src(), ctx.out], stdin: 'team/app:v1\r\nteam/app:bad!tag\r\n', out: { path: ctx.out, kind: 'storage' }, names: ['<stdin>:2:'] };
    },
  },
  {
    name: 'a bad line in a list directory names that file',
    code: 'NAME_INVALID',
    incomplete: true,
    problems: 1,
    async setup(ctx) {
      await ctx.list(['team/app:v1'], 'lists/a.list');
      const bad = await ctx.list(['', 'library/busybox:1.36', 'team/App:v2'], 'lists/b.list');
      return { args: ['extract', join(ctx.dir, 'lists'), await ctx.src(), ctx.out], out: { path: ctx.out, kind: 'storage' }, names: [`${bad}:3:`] };
    },
  },
  {
    name: 'a list file that does not exist',
    code: 'LIST_UNREADABLE',
    async setup(ctx) {
      const list = join(ctx.dir, 'missing.list');
      return { args: ['extract', list, await ctx.src(), ctx.out], out: { path: ctx.out, kind: 'storage' }, names: [list, 'no such file'] };
    },
  },
  {
    name: 'a list directory holding no *.list files',
    code: 'LIST_UNREADABLE',
    async setup(ctx) {
      await ctx.list(['team/app:v1'], 'lists/images.txt');
      const dir = join(ctx.dir, 'lists');
      return { args: ['extract', dir, await ctx.src(), ctx.out], out: { path: ctx.out, kind: 'storage' }, names: [dir, 'no *.list'] };
    },
  },
]);

// ---------------------------------------------------------------------------------------------
// Damaged sources: link files, manifests, blobs, symbolic links (extract)
// ---------------------------------------------------------------------------------------------

cases('bad input: link files in the source (extract)', [
  damaged('a tag current/link that is empty', 'LINK_INVALID', async (v2) => {
    await writeFile(currentLink(v2), '');
    return { names: [currentLink(v2), 'empty'] };
  }),
  damaged('a tag current/link with a trailing newline', 'LINK_INVALID', async (v2) => {
    await writeFile(currentLink(v2), `${v1.digest}\n`);
    return { names: [currentLink(v2), 'white space'] };
  }),
  damaged('a tag current/link holding garbage', 'LINK_INVALID', async (v2) => {
    await writeFile(currentLink(v2), 'hello, registry');
    return { names: [currentLink(v2), 'hello, registry'] };
  }),
  damaged('a tag current/link that is a directory', 'LINK_INVALID', async (v2) => {
    await unlink(currentLink(v2));
    await mkdir(currentLink(v2));
    return { names: [currentLink(v2), 'a directory'] };
  }),
  damaged('a tag pointing at a digest with no revision link', 'MANIFEST_UNKNOWN', async (v2) => {
    await writeFile(currentLink(v2), ELSEWHERE);
    return { names: [ELSEWHERE, 'no revision link in repository team/app'] };
  }),
  damaged('a tag pointing at a missing blob (revision link present, no data)', 'BLOB_UNKNOWN', async (v2) => {
    await writeFile(currentLink(v2), ELSEWHERE);
    await mkdir(dirname(layout.revisionLinkPath(v2, APP, ELSEWHERE)), { recursive: true });
    await writeFile(layout.revisionLinkPath(v2, APP, ELSEWHERE), ELSEWHERE);
    return { names: [dataOf(v2, ELSEWHERE)] };
  }),
  damaged('a revision link holding garbage', 'LINK_INVALID', async (v2) => {
    await writeFile(layout.revisionLinkPath(v2, APP, v1.digest), 'sha256:not-a-digest');
    return { names: [layout.revisionLinkPath(v2, APP, v1.digest)] };
  }),
  damaged('a revision link naming another digest than its path', 'LINK_INVALID', async (v2) => {
    await writeFile(layout.revisionLinkPath(v2, APP, v1.digest), v2img.digest);
    return { names: [layout.revisionLinkPath(v2, APP, v1.digest), v2img.digest] };
  }),
]);

cases('bad input: manifests in the source (extract)', [
  damaged('a manifest that is not JSON (stored under its own digest)', 'MANIFEST_INVALID', async (v2) => {
    const d = await storeManifestAndTag(v2, Buffer.from('this is not json {'));
    return { names: [dataOf(v2, d), 'not JSON'] };
  }),
  damaged('a manifest that is JSON but not an object', 'MANIFEST_INVALID', async (v2) => {
    const d = await storeManifestAndTag(v2, Buffer.from('[1, 2, 3]'));
    return { names: [dataOf(v2, d), 'not a JSON object'] };
  }),
  damaged('a manifest of an unknown media type', 'MANIFEST_INVALID', async (v2) => {
    const d = await storeManifestAndTag(v2, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example.thing+json', layers: [] })));
    return { names: [dataOf(v2, d), 'application/vnd.example.thing+json'] };
  }),
  damaged('a manifest of an unknown schemaVersion', 'MANIFEST_INVALID', async (v2) => {
    const d = await storeManifestAndTag(v2, Buffer.from(JSON.stringify({ schemaVersion: 3, config: {}, layers: [] })));
    return { names: [dataOf(v2, d), 'schemaVersion'] };
  }),
  damaged('a manifest truncated in place', 'DIGEST_MISMATCH', async (v2) => {
    await truncate(dataOf(v2, v1.digest), Math.floor(v1.bytes.length / 2));
    return { names: [dataOf(v2, v1.digest), v1.digest] };
  }),
  damaged('a manifest with one byte altered', 'DIGEST_MISMATCH', async (v2) => {
    const b = Buffer.from(v1.bytes);
    b[b.length - 3] = b[b.length - 3]! ^ 1;
    await replaceFile(dataOf(v2, v1.digest), b);
    return { names: [dataOf(v2, v1.digest)] };
  }),
  damaged('a manifest naming a layer by a malformed digest (the manifest is invalid)', 'MANIFEST_INVALID', async (v2) => {
    const doc = JSON.parse(v1.bytes.toString('utf8')) as { layers: Array<{ digest: string }> };
    doc.layers[1]!.digest = 'sha256:../../../../etc/passwd';
    const d = await storeManifestAndTag(v2, Buffer.from(JSON.stringify(doc)));
    return { names: [dataOf(v2, d)] };
  }),
  damaged('manifest blob data that is a directory', 'BLOB_INVALID', async (v2) => {
    await unlink(dataOf(v2, v1.digest));
    await mkdir(dataOf(v2, v1.digest));
    return { names: [dataOf(v2, v1.digest), 'is a directory'] };
  }),
  damaged(
    'an index child truncated',
    'SIZE_INVALID',
    async (v2) => {
      await truncate(dataOf(v2, toolChildren[1]!.digest), 10);
      return { names: [toolChildren[1]!.digest, `size ${toolChildren[1]!.size}`, '10 bytes'] };
    },
    ['multiarch/tool:1.0'],
  ),
  damaged(
    'an index child altered (same size)',
    'DIGEST_MISMATCH',
    async (v2) => {
      const b = Buffer.from(toolChildren[0]!.bytes);
      b[b.length - 3] = b[b.length - 3]! ^ 1;
      await replaceFile(dataOf(v2, toolChildren[0]!.digest), b);
      return { names: [dataOf(v2, toolChildren[0]!.digest)] };
    },
    ['multiarch/tool:1.0'],
  ),
  damaged(
    'an index child missing',
    'BLOB_UNKNOWN',
    async (v2) => {
      await rmrf(layout.blobDir(v2, toolChildren[2]!.digest), { recursive: true });
      return { names: [toolChildren[2]!.digest, 'linux/arm/v7'] };
    },
    ['multiarch/tool:1.0'],
  ),
]);

cases('bad input: blobs in the source (extract)', [
  damaged('a layer truncated', 'SIZE_INVALID', async (v2) => {
    await truncate(dataOf(v2, v1.layers[1]!.digest), 100);
    return { names: [v1.layers[1]!.digest] };
  }),
  damaged('a layer altered by appended bytes', 'SIZE_INVALID', async (v2) => {
    await appendFile(dataOf(v2, v1.layers[1]!.digest), 'trailing garbage');
    return { names: [v1.layers[1]!.digest] };
  }),
  damaged('a config missing', 'BLOB_UNKNOWN', async (v2) => {
    await rmrf(layout.blobDir(v2, v1.config.digest), { recursive: true });
    return { names: [dataOf(v2, v1.config.digest)] };
  }),
  damaged('a layer whose data is a directory', 'BLOB_INVALID', async (v2) => {
    await unlink(dataOf(v2, v1.layers[0]!.digest));
    await mkdir(dataOf(v2, v1.layers[0]!.digest));
    return { names: [dataOf(v2, v1.layers[0]!.digest)] };
  }),
]);

cases('bad input: symbolic links in the source (extract)', [
  // A symbolic link to a regular file is followed, as the registry follows it (test/read-tree.test.ts);
  // one to a FIFO is refused at once, never opened.
  damaged('layer data that is a symlink to a FIFO outside the source', 'BLOB_INVALID', async (v2, ctx) => {
    const outside = join(ctx.dir, 'outside-layer');
    execFileSync('mkfifo', [outside]);
    await unlink(dataOf(v2, v1.layers[1]!.digest));
    await symlink(outside, dataOf(v2, v1.layers[1]!.digest));
    return { names: [dataOf(v2, v1.layers[1]!.digest), 'symbolic link to a FIFO'] };
  }),
  damaged('manifest data that is a symlink to a FIFO outside the source', 'BLOB_INVALID', async (v2, ctx) => {
    const outside = join(ctx.dir, 'outside-manifest');
    execFileSync('mkfifo', [outside]);
    await unlink(dataOf(v2, v1.digest));
    await symlink(outside, dataOf(v2, v1.digest));
    return { names: [dataOf(v2, v1.digest), 'symbolic link to a FIFO'] };
  }),
  damaged('a current/link that is a symlink to a secret outside the source', 'LINK_INVALID', async (v2, ctx) => {
    const secret = 'password=hunter2-do-not-print';
    const outside = join(ctx.dir, 'secret.txt');
    await writeFile(outside, secret);
    await unlink(currentLink(v2));
    await symlink(outside, currentLink(v2));
    return { names: [currentLink(v2)], secret };
  }),
  damaged(
    'a repository directory that is a symlink loop',
    'IO_ERROR',
    async (v2) => {
      const loop = join(v2, 'repositories', 'loop');
      await symlink(loop, loop);
      return { names: [loop, 'ELOOP'] };
    },
    ['loop/app:1'],
  ),
]);

// ---------------------------------------------------------------------------------------------
// SRC and OUT (extract)
// ---------------------------------------------------------------------------------------------

cases('bad input: SRC that is not registry storage (extract)', [
  {
    name: 'SRC an empty directory',
    code: 'NOT_REGISTRY',
    async setup(ctx) {
      const src = join(ctx.dir, 'empty');
      await mkdir(src);
      return { args: ['extract', await ctx.list(['team/app:v1']), src, ctx.out], unchanged: [src], out: { path: ctx.out, kind: 'storage' }, names: [src] };
    },
  },
  {
    name: 'SRC a registry root whose docker/registry holds no v2',
    code: 'NOT_REGISTRY',
    async setup(ctx) {
      const src = join(ctx.dir, 'home');
      await mkdir(join(src, 'docker', 'registry'), { recursive: true });
      await writeFile(join(src, 'docker', 'registry', 'README'), 'v2 is missing');
      return { args: ['extract', await ctx.list(['team/app:v1']), src, ctx.out], unchanged: [src], out: { path: ctx.out, kind: 'storage' }, names: [src] };
    },
  },
  {
    name: 'SRC that does not exist',
    code: 'NOT_REGISTRY',
    async setup(ctx) {
      const src = join(ctx.dir, 'nowhere');
      return { args: ['extract', await ctx.list(['team/app:v1']), src, ctx.out], out: { path: ctx.out, kind: 'storage' }, names: [src, 'no such directory'] };
    },
  },
  {
    name: 'SRC a regular file',
    code: 'NOT_REGISTRY',
    async setup(ctx) {
      const src = join(ctx.dir, 'registry.tar');
      await writeFile(src, 'not a directory');
      return { args: ['extract', await ctx.list(['team/app:v1']), src, ctx.out], out: { path: ctx.out, kind: 'storage' }, names: [src] };
    },
  },
  {
    name: 'OUT inside SRC',
    code: 'OUTPUT_IN_SOURCE',
    async setup(ctx) {
      const out = join(await ctx.src(), 'subset');
      return { args: ['extract', await ctx.list(['team/app:v1']), await ctx.src(), out], names: [out] };
    },
  },
  {
    name: 'OUT a symlink into SRC',
    code: 'OUTPUT_IN_SOURCE',
    async setup(ctx) {
      const alias = join(ctx.dir, 'alias');
      await symlink(join(await ctx.src(), V2), alias);
      return { args: ['extract', await ctx.list(['team/app:v1']), await ctx.src(), join(alias, 'x')], names: [join(alias, 'x')] };
    },
  },
]);

/** A directory on another filesystem than the temp dir (/dev/shm), removed at cleanup; undefined if there is none. */
async function otherFilesystemDir(ctx: Ctx): Promise<string | undefined> {
  const shm = '/dev/shm';
  if (!(await pathExists(shm)) || (await deviceOf(shm)) === (await deviceOf(ctx.dir))) return undefined;
  const dir = await mkdtemp(join(shm, 'regfs-bad-'));
  ctx.onCleanup(() => rmrf(dir, { recursive: true, force: true }));
  return dir;
}

/** A mount point in the case's directory, unmounted at cleanup once mounted. */
async function mountPoint(ctx: Ctx, name: string, mount: (dir: string) => boolean): Promise<string | undefined> {
  const dir = join(ctx.dir, name);
  await mkdir(dir);
  if (!mount(dir)) return undefined;
  ctx.onCleanup(() => unmount(dir));
  return dir;
}

/** Hold the lock of a storage root (or export) as a running regfs would; released after the run. */
async function holdLock(ctx: Ctx, path: string, command = 'extract'): Promise<Lock> {
  await mkdir(dirname(path), { recursive: true });
  const lock = await acquireLock(path, command);
  ctx.afterRun(() => lock.release());
  ctx.onCleanup(() => lock.release());
  return lock;
}

cases('bad input: the output (extract)', [
  {
    name: 'OUT on another filesystem with --link hardlink',
    code: 'LINK_FAILED',
    async setup(ctx) {
      const other = await otherFilesystemDir(ctx);
      if (other === undefined) return { args: [], names: [], skip: 'no second filesystem (/dev/shm) here' };
      const out = join(other, 'out');
      return {
        args: ['extract', await ctx.list(['team/app:v1', 'multiarch/tool:1.0']), await ctx.src(), out, '--link', 'hardlink'],
        out: { path: out, kind: 'storage', writes: true },
        names: [out, 'EXDEV'],
      };
    },
  },
  {
    name: 'OUT on a read-only filesystem',
    code: 'IO_ERROR',
    async setup(ctx) {
      const ro = await mountPoint(ctx, 'ro', mountReadOnlyTmpfs);
      if (ro === undefined) return { args: [], names: [], skip: 'mounting a tmpfs is not permitted here' };
      const out = join(ro, 'out');
      return { args: ['extract', await ctx.list(['team/app:v1']), await ctx.src(), out], out: { path: out, kind: 'storage' }, names: [out, 'EROFS'] };
    },
  },
  {
    name: 'OUT an existing registry on a read-only bind mount',
    code: 'IO_ERROR',
    async setup(ctx) {
      const rw = join(ctx.dir, 'rw');
      await extract({ list: await ctx.list(['team/app:v1'], 'first.list'), source: await ctx.src(), output: rw });
      const ro = await mountPoint(ctx, 'ro', (d) => mountReadOnlyBind(rw, d));
      if (ro === undefined) return { args: [], names: [], skip: 'bind mounts are not permitted here' };
      return { args: ['extract', await ctx.list(['team/app:v2']), await ctx.src(), ro], out: { path: ro, kind: 'storage' }, names: [join(ro, V2), 'EROFS'] };
    },
  },
  {
    name: 'OUT a regular file',
    code: 'OUTPUT_UNWRITABLE',
    async setup(ctx) {
      const out = join(ctx.dir, 'out.img');
      await writeFile(out, 'someone\'s file');
      return { args: ['extract', await ctx.list(['team/app:v1']), await ctx.src(), out], unchanged: [await ctx.src(), ctx.dir], names: [out, 'is not a directory'] };
    },
  },
  {
    name: 'no space left while placing blob data (a 64k tmpfs, --link copy)',
    code: 'IO_ERROR',
    async setup(ctx) {
      const small = await mountPoint(ctx, 'small', (d) => mountSmallTmpfs(d, '64k'));
      if (small === undefined) return { args: [], names: [], skip: 'mounting a tmpfs is not permitted here' };
      const out = join(small, 'out');
      return { args: ['extract', await ctx.list(ALL_REFS), await ctx.src(), out, '--link', 'copy'], out: { path: out, kind: 'storage', writes: true }, names: [out, 'ENOSPC'] };
    },
  },
  {
    name: 'no space left while writing links (a 256k tmpfs, --link copy)',
    code: 'IO_ERROR',
    async setup(ctx) {
      const small = await mountPoint(ctx, 'small', (d) => mountSmallTmpfs(d, '256k'));
      if (small === undefined) return { args: [], names: [], skip: 'mounting a tmpfs is not permitted here' };
      const out = join(small, 'out');
      return { args: ['extract', await ctx.list(ALL_REFS), await ctx.src(), out, '--link', 'copy'], out: { path: out, kind: 'storage', writes: true }, names: [out, 'ENOSPC'] };
    },
  },
  {
    name: 'no space left (ENOSPC injected into the 4th blob copy, --link copy)',
    code: 'IO_ERROR',
    async setup(ctx) {
      const out = ctx.out;
      return {
        args: ['extract', await ctx.list(['team/app:v1', 'multiarch/tool:1.0']), await ctx.src(), out, '--link', 'copy', '--jobs', '1'],
        env: await enospcEnv(ctx.dir, out, 3),
        out: { path: out, kind: 'storage', writes: true },
        names: [out, 'ENOSPC'],
      };
    },
  },
  {
    name: 'two runs on the same OUT at once',
    code: 'LOCKED',
    async setup(ctx) {
      const out = ctx.out;
      await extract({ list: await ctx.list(['team/app:v1'], 'first.list'), source: await ctx.src(), output: out });
      await holdLock(ctx, join(out, V2, LOCK_FILE));
      return { args: ['extract', await ctx.list(['team/app:v2', 'multiarch/tool:1.0']), await ctx.src(), out], out: { path: out, kind: 'storage' }, names: [join(out, V2, LOCK_FILE), `pid ${process.pid}`] };
    },
  },
  {
    name: 'OUT locked by a run on another host',
    code: 'LOCKED',
    async setup(ctx) {
      const out = ctx.out;
      await mkdir(join(out, V2), { recursive: true });
      await writeFile(join(out, V2, LOCK_FILE), `${JSON.stringify({ pid: 1, host: 'elsewhere.example.com', command: 'extract', started: '2026-01-01T00:00:00Z' })}\n`);
      return { args: ['extract', await ctx.list(['team/app:v1']), await ctx.src(), out], out: { path: out, kind: 'storage' }, names: [join(out, V2, LOCK_FILE), 'elsewhere.example.com', 'remove the lock file'] };
    },
  },
  {
    name: '--jobs 0',
    code: 'USAGE',
    async setup(ctx) {
      return { args: ['extract', await ctx.list(['team/app:v1']), await ctx.src(), ctx.out, '--jobs', '0'], out: { path: ctx.out, kind: 'storage' }, names: ['--jobs'] };
    },
  },
]);

test('control: OUT on another filesystem with --link auto copies, warns once, and is complete', async (t) => {
  const tmp = await tempDir('regfs-bad-');
  const ctx = new Ctx(tmp.dir);
  try {
    const other = await otherFilesystemDir(ctx);
    if (other === undefined) {
      t.skip('no second filesystem (/dev/shm) here');
      return;
    }
    const src = await ctx.src();
    const before = await snapshotTree(src);
    const out = join(other, 'out');
    const r = await runCli(['extract', await ctx.list(['team/app:v1', 'multiarch/tool:1.0']), src, out, '--link', 'auto']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.match(/warning: cannot hard-link .*EXDEV/g)?.length, 1, r.stderr);
    assert.match(r.stdout, /blobs 0 linked, \d+ copied/);
    assert.deepEqual(await storageProblems(out), []);
    assert.equal((await verifyCli(out)).code, 0);
    assert.deepEqual(await snapshotTree(src), before);
  } finally {
    await ctx.cleanup();
    await tmp.cleanup();
  }
});

// ---------------------------------------------------------------------------------------------
// to-dir
// ---------------------------------------------------------------------------------------------

cases('bad input: to-dir', [
  {
    name: '--image into a non-empty directory that is not a dir: image',
    code: 'NOT_DIR_TRANSPORT',
    incomplete: true,
    async setup(ctx) {
      const out = join(ctx.dir, 'photos');
      await mkdir(out);
      await writeFile(join(out, 'holiday.jpg'), 'jpeg bytes');
      return { args: ['to-dir', '--image', 'team/app:v1', await ctx.src(), out], out: { path: out, kind: 'dir' }, names: [out, 'no version file'] };
    },
  },
  {
    name: 'an image directory of OUT holding someone\'s data',
    code: 'NOT_DIR_TRANSPORT',
    incomplete: true,
    async setup(ctx) {
      const out = ctx.out;
      await mkdir(join(out, 'team', 'app:v1'), { recursive: true });
      await writeFile(join(out, 'team', 'app:v1', 'precious.txt'), 'data');
      return { args: ['to-dir', await ctx.list(['library/busybox:1.36', 'team/app:v1']), await ctx.src(), out], out: { path: out, kind: 'dir' }, names: [join(out, 'team', 'app:v1')] };
    },
  },
  {
    name: 'an image directory of OUT that is a regular file',
    code: 'NOT_DIR_TRANSPORT',
    incomplete: true,
    async setup(ctx) {
      const out = ctx.out;
      await mkdir(join(out, 'team'), { recursive: true });
      await writeFile(join(out, 'team', 'app:v1'), 'a file');
      return { args: ['to-dir', await ctx.list(['team/app:v1']), await ctx.src(), out], out: { path: out, kind: 'dir' }, names: [join(out, 'team', 'app:v1'), 'not a directory'] };
    },
  },
  {
    name: 'an image directory of OUT of dir: version 1.0',
    code: 'NOT_DIR_TRANSPORT',
    incomplete: true,
    async setup(ctx) {
      const out = ctx.out;
      await mkdir(join(out, 'team', 'app:v1'), { recursive: true });
      await writeFile(join(out, 'team', 'app:v1', 'version'), 'Directory Transport Version: 1.0\n');
      return { args: ['to-dir', await ctx.list(['team/app:v1']), await ctx.src(), out], out: { path: out, kind: 'dir' }, names: [join(out, 'team', 'app:v1'), '1.0'] };
    },
  },
  {
    name: '--platform the index does not have',
    code: 'PLATFORM_UNKNOWN',
    incomplete: true,
    async setup(ctx) {
      const list = await ctx.list(['multiarch/tool:1.0']);
      return { args: ['to-dir', list, await ctx.src(), ctx.out, '--platform', 'linux/s390x'], out: { path: ctx.out, kind: 'dir' }, names: [`${list}:1`, 'linux/s390x', 'linux/arm/v7'] };
    },
  },
  {
    name: '--platform that is not os/arch',
    code: 'USAGE',
    async setup(ctx) {
      return { args: ['to-dir', await ctx.list(['multiarch/tool:1.0']), await ctx.src(), ctx.out, '--platform', 'linux'], out: { path: ctx.out, kind: 'dir' }, names: ['--platform', '"linux"'] };
    },
  },
  {
    name: '--image of a bare repository (every tag)',
    code: 'USAGE',
    async setup(ctx) {
      return { args: ['to-dir', '--image', 'team/app', await ctx.src(), ctx.out], out: { path: ctx.out, kind: 'dir' }, names: ['--image team/app'] };
    },
  },
  {
    name: 'a list line with a bad tag',
    code: 'TAG_INVALID',
    incomplete: true,
    async setup(ctx) {
      const list = await ctx.list(['team/app:v1', 'team/app:v1!']);
      return { args: ['to-dir', list, await ctx.src(), ctx.out], out: { path: ctx.out, kind: 'dir' }, names: [`${list}:2:`] };
    },
  },
  {
    name: 'a damaged source: a layer missing',
    code: 'BLOB_UNKNOWN',
    incomplete: true,
    async setup(ctx) {
      const v2 = await ctx.v2();
      await rmrf(layout.blobDir(v2, v1.layers[1]!.digest), { recursive: true });
      const list = await ctx.list(['team/app:v1']);
      return { args: ['to-dir', list, await ctx.src(), ctx.out], out: { path: ctx.out, kind: 'dir' }, names: [`${list}:1:`, dataOf(v2, v1.layers[1]!.digest)] };
    },
  },
  {
    name: 'OUT inside SRC',
    code: 'OUTPUT_IN_SOURCE',
    async setup(ctx) {
      const out = join(await ctx.src(), 'export');
      return { args: ['to-dir', await ctx.list(['team/app:v1']), await ctx.src(), out], names: [out] };
    },
  },
  {
    name: 'OUT on another filesystem with --link hardlink',
    code: 'LINK_FAILED',
    async setup(ctx) {
      const other = await otherFilesystemDir(ctx);
      if (other === undefined) return { args: [], names: [], skip: 'no second filesystem (/dev/shm) here' };
      const out = join(other, 'export');
      return {
        args: ['to-dir', await ctx.list(['team/app:v1', 'multiarch/tool:1.0']), await ctx.src(), out, '--link', 'hardlink'],
        out: { path: out, kind: 'dir', writes: true },
        names: [out, 'EXDEV'],
      };
    },
  },
  {
    name: 'OUT on a read-only filesystem',
    code: 'IO_ERROR',
    async setup(ctx) {
      const ro = await mountPoint(ctx, 'ro', mountReadOnlyTmpfs);
      if (ro === undefined) return { args: [], names: [], skip: 'mounting a tmpfs is not permitted here' };
      const out = join(ro, 'export');
      return { args: ['to-dir', await ctx.list(['team/app:v1']), await ctx.src(), out], out: { path: out, kind: 'dir' }, names: [out, 'EROFS'] };
    },
  },
  {
    name: 'no space left (ENOSPC injected into the 5th blob copy, --link copy)',
    code: 'IO_ERROR',
    async setup(ctx) {
      const out = ctx.out;
      return {
        args: ['to-dir', await ctx.list(['team/app:v1', 'multiarch/tool:1.0', 'library/busybox:1.36']), await ctx.src(), out, '--link', 'copy', '--jobs', '1'],
        env: await enospcEnv(ctx.dir, out, 4),
        out: { path: out, kind: 'dir', writes: true },
        names: [out, 'ENOSPC'],
      };
    },
  },
  {
    name: 'an export another run is writing',
    code: 'LOCKED',
    async setup(ctx) {
      const out = ctx.out;
      await toDir({ list: await ctx.list(['team/app:v1'], 'first.list'), source: await ctx.src(), output: out });
      await holdLock(ctx, join(out, LOCK_FILE), 'to-dir');
      return { args: ['to-dir', await ctx.list(['team/app:v2']), await ctx.src(), out], out: { path: out, kind: 'dir' }, names: [join(out, LOCK_FILE)] };
    },
  },
]);

// ---------------------------------------------------------------------------------------------
// from-dir
// ---------------------------------------------------------------------------------------------

const EXPORT_LIST = ['team/app:v1', 'multiarch/tool:1.0', 'library/busybox:1.36', `team/app@${v2img.digest}`];
let pristineExport: { dir: string; cleanup: () => Promise<void> } | undefined;

/** A fresh copy of a `dir:` export of EXPORT_LIST (blob files copied, so damage stays in the copy). */
async function exportCopy(ctx: Ctx): Promise<string> {
  const input = join(ctx.dir, 'in');
  await copyTree(join(pristineExport!.dir, 'export'), input);
  return input;
}

function fromDirCase(
  name: string,
  code: RegfsErrorCode,
  damage: (input: string, ctx: Ctx) => Promise<{ names: string[]; input?: string; args?: string[] }>,
  opts: { incomplete?: boolean } = { incomplete: true },
): Case {
  return {
    name,
    code,
    ...(opts.incomplete === true ? { incomplete: true } : {}),
    async setup(ctx) {
      const input = await exportCopy(ctx);
      const got = await damage(input, ctx);
      const dest = join(ctx.dir, 'dest');
      const used = got.input ?? input;
      return { args: ['from-dir', used, dest, ...(got.args ?? [])], unchanged: (await pathExists(used)) ? [used] : [], out: { path: dest, kind: 'storage' }, names: got.names };
    },
  };
}

const APP_DIR = 'team/app:v1';
const TOOL_DIR = 'multiarch/tool:1.0';

describe('bad input: from-dir', { concurrency: CONCURRENCY }, () => {
  before(async () => {
    pristineExport = await tempDir('regfs-bad-export-');
    const list = join(pristineExport.dir, 'export.list');
    await writeFile(list, `${EXPORT_LIST.join('\n')}\n`);
    await toDir({ list, source: FIXTURE_ROOT, output: join(pristineExport.dir, 'export'), link: 'copy' });
  });
  after(async () => {
    await pristineExport?.cleanup();
  });

  const list: Case[] = [
    fromDirCase('a blob altered (same size)', 'DIGEST_MISMATCH', async (input) => {
      const p = join(input, APP_DIR, digestHex(v1.layers[1]!.digest));
      const b = await readFile(p);
      b[200] = b[200]! ^ 0xff;
      await writeFile(p, b);
      return { names: [APP_DIR, p] };
    }),
    fromDirCase('a blob truncated', 'SIZE_INVALID', async (input) => {
      const p = join(input, APP_DIR, digestHex(v1.layers[1]!.digest));
      await truncate(p, 10);
      return { names: [APP_DIR, p] };
    }),
    fromDirCase('a blob missing', 'BLOB_UNKNOWN', async (input) => {
      await unlink(join(input, APP_DIR, digestHex(v1.config.digest)));
      return { names: [APP_DIR, v1.config.digest] };
    }),
    // A symbolic link to a regular file is followed, as containers/image follows it; one to a FIFO is refused.
    fromDirCase('a blob that is a symlink to a FIFO outside the input', 'BLOB_INVALID', async (input, ctx) => {
      const p = join(input, APP_DIR, digestHex(v1.layers[0]!.digest));
      const outside = join(ctx.dir, 'outside-blob');
      execFileSync('mkfifo', [outside]);
      await unlink(p);
      await symlink(outside, p);
      return { names: [p, 'symbolic link to a FIFO'] };
    }),
    fromDirCase('manifest.json that is not JSON', 'MANIFEST_INVALID', async (input) => {
      const p = join(input, APP_DIR, 'manifest.json');
      await writeFile(p, '<html>not json</html>');
      return { names: [p, 'not JSON'] };
    }),
    fromDirCase('manifest.json truncated', 'MANIFEST_INVALID', async (input) => {
      const p = join(input, APP_DIR, 'manifest.json');
      await truncate(p, 40);
      return { names: [p] };
    }),
    fromDirCase('manifest.json of an unknown media type', 'MANIFEST_INVALID', async (input) => {
      const p = join(input, APP_DIR, 'manifest.json');
      await writeFile(p, JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.example.other+json' }));
      return { names: [p, 'application/vnd.example.other+json'] };
    }),
    fromDirCase('an @digest directory whose manifest is another image', 'DIGEST_MISMATCH', async (input) => {
      await writeFile(join(input, `team/app@${v2img.digest}`, 'manifest.json'), v1.bytes);
      return { names: [`team/app@${v2img.digest}`, v1.digest] };
    }),
    fromDirCase('an index instance missing', 'BLOB_UNKNOWN', async (input) => {
      await unlink(join(input, TOOL_DIR, `${digestHex(toolChildren[1]!.digest)}.manifest.json`));
      return { names: [TOOL_DIR, toolChildren[1]!.digest] };
    }),
    fromDirCase('an index instance altered (same size, still JSON)', 'DIGEST_MISMATCH', async (input) => {
      const p = join(input, TOOL_DIR, `${digestHex(toolChildren[0]!.digest)}.manifest.json`);
      const text = await readFile(p, 'utf8');
      assert.ok(text.includes('"application/'));
      await writeFile(p, text.replace('"application/', '"applicatiom/'));
      return { names: [TOOL_DIR, p] };
    }),
    fromDirCase('an image directory cut short (version, blobs, no manifest.json)', 'MANIFEST_UNKNOWN', async (input) => {
      await unlink(join(input, 'library/busybox:1.36', 'manifest.json'));
      return { names: [join(input, 'library/busybox:1.36'), 'manifest.json'] };
    }),
    // Upper case in the first component is a domain (Library/busybox is valid); elsewhere it is not.
    fromDirCase('an image directory named in upper case', 'NAME_INVALID', async (input) => {
      await rename(join(input, 'library/busybox:1.36'), join(input, 'library/BusyBox:1.36'));
      return { names: ['library/BusyBox:1.36'] };
    }),
    fromDirCase('an image directory named with a bad tag', 'TAG_INVALID', async (input) => {
      await rename(join(input, 'library/busybox:1.36'), join(input, 'library/busybox:.1.36'));
      return { names: ['library/busybox:.1.36'] };
    }),
    fromDirCase('a registry host with a port in the path', 'NAME_INVALID', async (input) => {
      await mkdir(join(input, '127.0.0.1:5000'));
      await rename(join(input, 'library'), join(input, '127.0.0.1:5000', 'library'));
      return { names: ['127.0.0.1:5000/library/busybox:1.36', '--strip-registry'] };
    }),
    fromDirCase(
      'IN that does not exist',
      'NOT_DIR_TRANSPORT',
      async (_input, ctx) => {
        const nowhere = join(ctx.dir, 'nowhere');
        return { names: [nowhere, 'no such directory'], input: nowhere };
      },
      {},
    ),
    fromDirCase(
      'IN holding no image directories',
      'NOT_DIR_TRANSPORT',
      async (_input, ctx) => {
        const empty = join(ctx.dir, 'empty');
        await mkdir(join(empty, 'a', 'b'), { recursive: true });
        await writeFile(join(empty, 'a', 'notes.txt'), 'x');
        return { names: [empty, 'no image directories'], input: empty };
      },
      {},
    ),
    fromDirCase(
      'IN a regular file',
      'NOT_DIR_TRANSPORT',
      async (_input, ctx) => {
        const file = join(ctx.dir, 'images.tar');
        await writeFile(file, 'a tarball, not a tree');
        return { names: [file, 'not a directory'], input: file };
      },
      {},
    ),
    fromDirCase(
      'IN whose only image directory is a symlink to a directory outside IN (not followed)',
      'NOT_DIR_TRANSPORT',
      async (input, ctx) => {
        const tree = join(ctx.dir, 'tree');
        await mkdir(join(tree, 'team'), { recursive: true });
        await symlink(join(input, APP_DIR), join(tree, 'team', 'app:v1'));
        return { names: [tree, 'no image directories'], input: tree };
      },
      {},
    ),
    fromDirCase('--name for a tree of images', 'USAGE', async (input) => ({ names: ['--name', input], args: ['--name', 'a/b:c'] }), {}),
  ];
  list.push(
    {
      name: 'DEST inside IN',
      code: 'OUTPUT_IN_SOURCE',
      async setup(ctx) {
        const input = await exportCopy(ctx);
        const dest = join(input, 'registry');
        return { args: ['from-dir', input, dest], unchanged: [input], out: { path: dest, kind: 'storage' }, names: [dest] };
      },
    },
    {
      name: 'DEST on a read-only filesystem',
      code: 'IO_ERROR',
      async setup(ctx) {
        const input = await exportCopy(ctx);
        const ro = await mountPoint(ctx, 'ro', mountReadOnlyTmpfs);
        if (ro === undefined) return { args: [], names: [], skip: 'mounting a tmpfs is not permitted here' };
        const dest = join(ro, 'dest');
        return { args: ['from-dir', input, dest], unchanged: [input], out: { path: dest, kind: 'storage' }, names: [dest, 'EROFS'] };
      },
    },
    {
      name: 'DEST on another filesystem with --link hardlink',
      code: 'LINK_FAILED',
      async setup(ctx) {
        const input = await exportCopy(ctx);
        const other = await otherFilesystemDir(ctx);
        if (other === undefined) return { args: [], names: [], skip: 'no second filesystem (/dev/shm) here' };
        const dest = join(other, 'dest');
        return { args: ['from-dir', input, dest, '--link', 'hardlink'], unchanged: [input], out: { path: dest, kind: 'storage', writes: true }, names: [dest, 'EXDEV'] };
      },
    },
    {
      name: 'no space left (ENOSPC injected into the 3rd blob copy, --link copy)',
      code: 'IO_ERROR',
      async setup(ctx) {
        const input = await exportCopy(ctx);
        const dest = join(ctx.dir, 'dest');
        return {
          args: ['from-dir', input, dest, '--link', 'copy', '--jobs', '1'],
          env: await enospcEnv(ctx.dir, dest, 2),
          unchanged: [input],
          out: { path: dest, kind: 'storage', writes: true },
          names: [dest, 'ENOSPC'],
        };
      },
    },
    {
      name: 'DEST another run is writing',
      code: 'LOCKED',
      async setup(ctx) {
        const input = await exportCopy(ctx);
        const dest = join(ctx.dir, 'dest');
        await holdLock(ctx, join(dest, V2, LOCK_FILE), 'extract');
        return { args: ['from-dir', input, dest], unchanged: [input], out: { path: dest, kind: 'storage' }, names: [join(dest, V2, LOCK_FILE)] };
      },
    },
  );
  for (const c of list) test(`${c.name} [${c.code}]`, (t) => runCase(t, c));
});

// ---------------------------------------------------------------------------------------------
// gc --apply and rm
// ---------------------------------------------------------------------------------------------

function rootCase(name: string, code: RegfsErrorCode, build: (root: string, v2: string, ctx: Ctx) => Promise<Omit<Setup, 'unchanged'> & { unchanged?: string[] }>): Case {
  return {
    name,
    code,
    async setup(ctx) {
      const root = await ctx.src();
      return { unchanged: [root], ...(await build(root, join(root, V2), ctx)) };
    },
  };
}

cases('bad input: rm', [
  rootCase('a tag that does not exist', 'TAG_UNKNOWN', async (root) => ({ args: ['rm', root, 'team/app:nosuch'], names: ['team/app:nosuch'] })),
  rootCase('a repository that does not exist', 'NAME_UNKNOWN', async (root, v2) => ({ args: ['rm', root, 'no/such'], names: ['no/such', v2] })),
  rootCase('a digest the repository has no revision for', 'MANIFEST_UNKNOWN', async (root) => ({ args: ['rm', root, `team/app@${ZERO}`], names: [ZERO, 'team/app'] })),
  rootCase('a tag pinned to a digest it does not point at', 'TAG_DIGEST_MISMATCH', async (root) => ({ args: ['rm', root, `team/app:v1@${v2img.digest}`], names: ['team/app:v1', v2img.digest] })),
  rootCase('a child of a tagged index (without --force)', 'UNSAFE', async (root) => ({
    args: ['rm', root, `multiarch/tool@${toolChildren[0]!.digest}`],
    names: [toolChildren[0]!.digest, tool.digest],
  })),
  rootCase('a ref climbing out of the storage (../../etc)', 'NAME_INVALID', async (root) => ({ args: ['rm', root, '../../etc'], names: ['../../etc'] })),
  rootCase('a ref with an absolute path', 'NAME_INVALID', async (root) => ({ args: ['rm', root, '/team/app:v1'], names: ['/team/app'] })),
  rootCase('a tag with a malformed current/link, pinned to a digest', 'LINK_INVALID', async (root, v2) => {
    await writeFile(currentLink(v2), `${v1.digest}\n`);
    return { args: ['rm', root, `team/app:v1@${v1.digest}`], names: [currentLink(v2)] };
  }),
  {
    name: 'ROOT that is not registry storage',
    code: 'NOT_REGISTRY',
    async setup(ctx) {
      const root = join(ctx.dir, 'home');
      await mkdir(root);
      await writeFile(join(root, 'notes.txt'), 'x');
      return { args: ['rm', root, 'team/app:v1'], unchanged: [root], names: [root] };
    },
  },
  rootCase('a root another run is writing', 'LOCKED', async (root, v2, ctx) => {
    await holdLock(ctx, join(v2, LOCK_FILE), 'extract');
    return { args: ['rm', root, 'team/app:v2'], names: [join(v2, LOCK_FILE)] };
  }),
]);

test('control: rm of a tag whose current/link is empty (a 2.8 crash leaves them) removes the tag', async () => {
  const tmp = await tempDir('regfs-bad-');
  try {
    const root = join(tmp.dir, 'root');
    await copyTree(FIXTURE_ROOT, root);
    const v2 = join(root, V2);
    await writeFile(currentLink(v2), '');
    const r = await runCli(['rm', root, 'team/app:v1']);
    assertNoStackTrace(r.stderr);
    assert.equal(r.code, 0, `rm of a broken tag must delete it (docs/health.md: repo:tag removes "the tag (its current/link and history)")\n${r.stderr}`);
    assert.equal(await pathExists(layout.tagDir(v2, APP, V1)), false);
    assert.equal((await verifyCli(root)).code, 0);
  } finally {
    await tmp.cleanup();
  }
});

cases('bad input: gc --apply', [
  rootCase('a manifest whose bytes do not match its digest makes --apply refuse', 'UNSAFE', async (root, v2) => {
    const b = Buffer.concat([v1.bytes, Buffer.from(' ')]);
    await replaceFile(dataOf(v2, v1.digest), b);
    // Only the storage root's mtime may move, as the lock comes and goes.
    return { args: ['gc', root, '--apply'], mayTouch: [V2], names: ['could not be read'], namesAnywhere: [dataOf(v2, v1.digest)] };
  }),
  rootCase('a manifest that is not JSON makes --apply refuse', 'UNSAFE', async (root, v2) => {
    const d = await storeManifestAndTag(v2, Buffer.from('garbage, not a manifest'), APP, parseTag('v2'));
    return { args: ['gc', root, '--apply'], mayTouch: [V2], names: ['could not be read'], namesAnywhere: [dataOf(v2, d)] };
  }),
  rootCase('a malformed current/link makes --apply --delete-untagged refuse', 'UNSAFE', async (root, v2) => {
    await writeFile(currentLink(v2), 'sha256:oops');
    return { args: ['gc', root, '--apply', '--delete-untagged'], mayTouch: [V2], names: ['could not be read'], namesAnywhere: [currentLink(v2)] };
  }),
  rootCase('a root another run is writing', 'LOCKED', async (root, v2, ctx) => {
    await holdLock(ctx, join(v2, LOCK_FILE), 'extract');
    return { args: ['gc', root, '--apply'], names: [join(v2, LOCK_FILE)] };
  }),
  {
    name: 'ROOT that does not exist',
    code: 'NOT_REGISTRY',
    async setup(ctx) {
      const root = join(ctx.dir, 'nowhere');
      return { args: ['gc', root, '--apply'], names: [root] };
    },
  },
  rootCase('--jobs 0', 'USAGE', async (root) => ({ args: ['gc', root, '--apply', '--jobs', '0'], names: ['--jobs'] })),
]);

const suiteStarted = performance.now();

after(() => {
  const slowest = [...timings].sort((a, b) => b[1] - a[1]).slice(0, 3);
  process.stderr.write(
    `# bad-input: ${timings.length} cases in ${((performance.now() - suiteStarted) / 1000).toFixed(1)} s (${CONCURRENCY} at a time); ` +
      `slowest: ${slowest.map(([n, ms]) => `${n} (${ms.toFixed(0)} ms)`).join('; ')}\n`,
  );
});
