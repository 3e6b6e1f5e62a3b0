/** Test helpers for whole trees: snapshots to prove a tree unchanged, temp dirs, copies. */
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * Every entry under `root` with its type, mode, size, mtime and content hash (links:
 * target). Two equal snapshots mean nothing was written, chmod'ed or touched.
 */
export async function snapshotTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      const st = await lstat(p);
      const rel = relative(root, p);
      const meta = `${st.mode.toString(8)} ${st.mtimeMs}`;
      if (st.isDirectory()) {
        out.set(rel, `dir ${meta}`);
        await walk(p);
      } else if (st.isSymbolicLink()) {
        out.set(rel, `symlink ${await readlink(p)}`);
      } else {
        out.set(rel, `file ${meta} ${st.size} ${createHash('sha256').update(await readFile(p)).digest('hex')}`);
      }
    }
  };
  await walk(root);
  return out;
}

/** Relative paths of the regular files under `root`, sorted. */
export async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(relative(root, p));
    }
  };
  await walk(root);
  return out.sort();
}

/** A fresh temp directory, removed by the returned function. */
export async function tempDir(prefix = 'regfs-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Run `fn` in a fresh temp directory, removed after, whatever `fn` does. */
export async function withTempDir(fn: (dir: string) => Promise<void>, prefix = 'regfs-test-'): Promise<void> {
  const t = await tempDir(prefix);
  try {
    await fn(t.dir);
  } finally {
    await t.cleanup();
  }
}

/** Write an image list of `lines` into a new file in `dir`; its path. */
export async function writeListFile(dir: string, lines: string[]): Promise<string> {
  const p = join(dir, `l${Math.random().toString(36).slice(2)}.list`);
  await writeFile(p, `${lines.join('\n')}\n`);
  return p;
}

/** Copy a tree (data copied, not linked), for tests that damage a source. `cp -a` is ten times faster than fs.cp here. */
export async function copyTree(from: string, to: string): Promise<void> {
  await promisify(execFile)('cp', ['-a', '--', from, to]);
}
