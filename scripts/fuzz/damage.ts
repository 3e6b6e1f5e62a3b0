/**
 * Damage a generated state's files at random, one of the enabled file kinds (kinds.ts) per
 * step: link files removed, emptied or given a newline; a revision link made to hold another
 * revision's digest (that revision's link removed); blob data and fan-out directories
 * moved to `outside` with a relative symlink left behind (so a copy of the root made at the
 * same depth still resolves them); link files moved the same way; a repository given a second
 * name by a symlink (an alias); FIFOs; truncated blobs; a first name component in upper case;
 * a tag directory renamed to a name that is no tag, or replaced by a file; a stray file or
 * directory under blobs/ that is no blob, or a stray file beside a `_layers` or revision link.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { FILE_KINDS, type Kind, type Kinds } from './kinds.js';

/** `<root>/docker/registry/v2`. */
export function v2Of(root: string): string {
  return join(root, 'docker', 'registry', 'v2');
}

/** Apply 0 to 3 damages of the enabled file kinds to the registry root `root`; returns what was done. */
export async function damage(root: string, outside: string, kinds: Kinds, rand: () => number): Promise<string[]> {
  const enabled = FILE_KINDS.filter((k) => kinds.has(k));
  const done: string[] = [];
  if (enabled.length === 0) return done;
  const count = Math.floor(rand() * 4);
  for (let i = 0; i < count; i++) {
    const kind = enabled[Math.floor(rand() * enabled.length)]!;
    const what = await damageOne(kind, root, outside, rand, i);
    if (what !== undefined) done.push(`${kind} ${what}`);
  }
  return done;
}

async function damageOne(kind: Kind, root: string, outside: string, rand: () => number, n: number): Promise<string | undefined> {
  const v2 = v2Of(root);
  const pick = <T>(xs: T[]): T | undefined => (xs.length === 0 ? undefined : xs[Math.floor(rand() * xs.length)]);
  const rel = (p: string): string => relative(root, p);
  switch (kind) {
    case 'link-missing':
    case 'link-empty':
    case 'link-newline': {
      const link = pick(regularFiles(join(v2, 'repositories')).filter((p) => p.endsWith('/link')));
      if (link === undefined) return undefined;
      if (kind === 'link-missing') rmSync(link);
      else if (kind === 'link-empty') truncateSync(link, 0);
      else appendFileSync(link, '\n');
      return rel(link);
    }
    case 'link-retarget': {
      // The registry reads the digest in a revision link, not its path: this tag's or digest's
      // requests get the other manifest, which nothing else leads to any more.
      const revs = pick(repositoryDirs(join(v2, 'repositories')).map((r) => dirs(join(r, '_manifests', 'revisions', 'sha256')).filter((d) => lstatSync(join(d, 'link'), { throwIfNoEntry: false })?.isFile() === true)).filter((rs) => rs.length >= 2));
      if (revs === undefined) return undefined;
      const from = pick(revs)!;
      // Not to a schema1 manifest: the registry signs it anew on every GET, so the oracle
      // cannot tell by its body that it is not the manifest asked for.
      const to = pick(revs.filter((r) => r !== from && !isSchema1(join(v2, 'blobs', 'sha256', basename(r).slice(0, 2), basename(r), 'data'))));
      if (to === undefined) return undefined;
      const hex = basename(to);
      writeFileSync(join(from, 'link'), `sha256:${hex}`);
      rmSync(to, { recursive: true });
      return `${rel(join(from, 'link'))} holds sha256:${hex.slice(0, 12)}, whose revision link is gone`;
    }
    case 'data-symlink': {
      const data = pick(blobData(v2));
      if (data === undefined) return undefined;
      const moved = join(outside, `data-${n}`);
      renameSync(data, moved);
      symlinkSync(relative(dirname(data), moved), data);
      return rel(data);
    }
    case 'dir-symlink': {
      const fan = pick(dirs(join(v2, 'blobs', 'sha256')));
      if (fan === undefined) return undefined;
      const moved = join(outside, `fan-${n}`);
      renameSync(fan, moved);
      symlinkSync(relative(dirname(fan), moved), fan);
      return rel(fan);
    }
    case 'link-symlink': {
      const link = pick(regularFiles(join(v2, 'repositories')).filter((p) => p.endsWith('/link')));
      if (link === undefined) return undefined;
      const moved = join(outside, `link-${n}`);
      renameSync(link, moved);
      symlinkSync(relative(dirname(link), moved), link);
      return rel(link);
    }
    case 'repo-alias': {
      // A second name for a repository: `<repos>/alias<n>` -> an existing repository directory.
      const repos = join(v2, 'repositories');
      const repo = pick(repositoryDirs(repos));
      if (repo === undefined) return undefined;
      const alias = join(repos, `alias${n}`);
      if (existsSync(alias)) return undefined;
      symlinkSync(relative(repos, repo), alias);
      return `${rel(alias)} -> ${rel(repo)}`;
    }
    case 'fifo': {
      const target = pick([...blobData(v2), ...regularFiles(join(v2, 'repositories')).filter((p) => p.endsWith('/link'))]);
      if (target === undefined) return undefined;
      rmSync(target);
      await promisify(execFile)('mkfifo', ['--', target]);
      return rel(target);
    }
    case 'truncate': {
      const data = pick(blobData(v2));
      if (data === undefined) return undefined;
      truncateSync(data, Math.floor(lstatSync(data).size / 2));
      return rel(data);
    }
    case 'upper-rename': {
      const repos = join(v2, 'repositories');
      const first = pick(dirs(repos).filter((d) => /^[a-z]/.test(d.slice(repos.length + 1)) && dirs(d).some((c) => !c.endsWith('/_manifests') && !c.endsWith('/_layers') && !c.endsWith('/_uploads'))));
      if (first === undefined) return undefined;
      const name = first.slice(repos.length + 1);
      const upper = join(repos, name[0]!.toUpperCase() + name.slice(1));
      if (existsSync(upper)) return undefined;
      renameSync(first, upper);
      return `${rel(first)} -> ${rel(upper)}`;
    }
    case 'tag-misname':
    case 'tag-file': {
      const tags = repositoryDirs(join(v2, 'repositories')).flatMap((r) => dirs(join(r, '_manifests', 'tags')));
      const tag = pick(tags);
      if (tag === undefined) return undefined;
      if (kind === 'tag-file') {
        rmSync(tag, { recursive: true });
        writeFileSync(tag, 'not a tag directory\n');
        return rel(tag);
      }
      const name = tag.slice(dirname(tag).length + 1);
      const bad = join(dirname(tag), rand() < 0.5 ? `-${name}` : name.padEnd(129, 'x'));
      if (existsSync(bad)) return undefined;
      renameSync(tag, bad);
      return `${rel(tag)} -> ${rel(bad)}`;
    }
    case 'blob-stray': {
      // Someone's file where no blob is: the registry's blob walk takes only `data` files.
      const blobs = join(v2, 'blobs');
      const where = Math.floor(rand() * 4);
      if (where === 0) {
        const p = join(blobs, `notes-${n}.txt`);
        writeFileSync(p, 'not a blob\n');
        return rel(p);
      }
      if (where === 1) {
        const p = join(blobs, `md5-${n}`);
        mkdirSync(p);
        writeFileSync(join(p, 'readme'), 'not a blob\n');
        return rel(p);
      }
      const data = pick(blobData(v2));
      if (data === undefined) return undefined;
      // Beside the data: a file, or a directory named like a temp file (no write's leftover).
      const p = join(dirname(data), where === 2 ? `notes-${n}` : `notes-${n}.tmp`);
      if (where === 2) writeFileSync(p, 'not a blob\n');
      else {
        mkdirSync(p);
        writeFileSync(join(p, 'readme'), 'not a blob\n');
      }
      return rel(p);
    }
    case 'link-stray': {
      // Someone's file in a link's directory: the registry reads only `link` there.
      const link = pick(regularFiles(join(v2, 'repositories')).filter((p) => /\/(_layers|_manifests\/revisions)\/[^/]+\/[^/]+\/link$/.test(p)));
      if (link === undefined) return undefined;
      // A file, or a directory named like a temp file (no write's leftover).
      const file = rand() < 0.5;
      const p = join(dirname(link), file ? `notes-${n}` : `notes-${n}.tmp`);
      if (file) writeFileSync(p, 'not a link\n');
      else {
        mkdirSync(p);
        writeFileSync(join(p, 'readme'), 'not a link\n');
      }
      return rel(p);
    }
    default:
      throw new Error(`${kind} is not a file damage`);
  }
}

/** True if the file holds a schema1 manifest, or is no regular file that reads as JSON. */
function isSchema1(data: string): boolean {
  try {
    // Never read a FIFO an earlier damage left (the read would wait for a writer).
    if (lstatSync(data, { throwIfNoEntry: false })?.isFile() !== true) return true;
    return (JSON.parse(readFileSync(data, 'utf8')) as { schemaVersion?: unknown }).schemaVersion === 1;
  } catch {
    return true;
  }
}

/** Regular files under `dir` (no symlinks followed), sorted. */
function regularFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

/** Sub-directories of `dir` (not symlinks), sorted. */
function dirs(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => join(dir, e.name))
    .sort();
}

/** Every regular `blobs/sha256/xx/<hex>/data` file, sorted (symlinked fan-outs skipped). */
function blobData(v2: string): string[] {
  return regularFiles(join(v2, 'blobs')).filter((p) => p.endsWith('/data'));
}

/** Repository directories under `repos` (those holding `_manifests`), sorted; symlinks not followed. */
function repositoryDirs(repos: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const c of dirs(d)) {
      if (c.endsWith('/_manifests')) out.push(d);
      else if (!/\/_[^/]*$/.test(c)) walk(c);
    }
  };
  walk(repos);
  return out.sort();
}
