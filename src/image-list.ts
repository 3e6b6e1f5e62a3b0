/**
 * Image lists: one image a line, as release pipelines write them.
 *
 *   repo:tag                 one tag
 *   repo@sha256:<hex>        one manifest, by digest (no tag is written)
 *   repo:tag@sha256:<hex>    one tag, which must point at that digest
 *   repo                     every tag of the repository
 *
 * `#` starts a comment; blank lines, CRLF and surrounding white space are fine; duplicate
 * lines are merged (the first position is kept for messages). A leading registry host stays
 * part of the name unless `stripRegistry`.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, quote, RegfsError, type ListPosition } from './errors.js';
import { isDirectoryFollowing, statData } from './registry/follow.js';
import { storageRoot } from './registry/layout.js';
import { formatImageRef, parseImageRef, type ImageRef, type ParseRefOptions } from './reference.js';

/** A reference and the list line it came from. */
export interface ListEntry {
  ref: ImageRef;
  at: ListPosition;
}

/** Every reference of a list, and every line that did not parse. */
export interface ParsedList {
  entries: ListEntry[];
  problems: RegfsError[];
}

/** The name standard input is given in messages. */
export const STDIN_NAME = '<stdin>';

/** Parse list text; `file` names it in messages. Never throws for a bad line: see `problems`. */
export function parseImageList(text: string, file: string, opts: ParseRefOptions = {}): ParsedList {
  const entries: ListEntry[] = [];
  const problems: RegfsError[] = [];
  // Line by line through the text, without an array of every line.
  for (let start = 0, i = 0; start <= text.length; i++) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    const hash = line.indexOf('#');
    const content = (hash >= 0 ? line.slice(0, hash) : line).trim();
    start = end + 1;
    if (content === '') continue;
    const at = { file, line: i + 1 };
    if (/\s/.test(content)) {
      problems.push(
        new RegfsError('LIST_SYNTAX', `${file}:${at.line}: one image a line, found ${quote(content)}`, { at }),
      );
      continue;
    }
    try {
      entries.push({ ref: parseImageRef(content, opts), at });
    } catch (err) {
      if (!(err instanceof RegfsError)) throw err;
      problems.push(new RegfsError(err.code, `${file}:${at.line}: ${err.message}`, { at }));
    }
  }
  return { entries, problems };
}

/** Drop repeated references, keeping the first position of each. */
export function mergeDuplicates(entries: ListEntry[]): ListEntry[] {
  const seen = new Map<string, ListEntry>();
  for (const e of entries) {
    const key = formatImageRef(e.ref);
    if (!seen.has(key)) seen.set(key, e);
  }
  return [...seen.values()];
}

/**
 * Read a list from a file, from standard input (`-`), or from every `*.list` file of a
 * directory (in name order). Lines that do not parse are returned as problems; a list that
 * cannot be read at all throws LIST_UNREADABLE.
 */
export async function readImageList(
  source: string,
  opts: ParseRefOptions & { stdin?: () => Promise<string> } = {},
): Promise<ParsedList> {
  if (source === '-') {
    const text = await (opts.stdin ?? readStdin)();
    return finish([parseImageList(text, STDIN_NAME, opts)]);
  }
  let isDir: boolean;
  try {
    isDir = (await stat(source)).isDirectory();
  } catch (err) {
    throw unreadable(source, err);
  }
  if (!isDir) return finish([parseImageList(await readText(source), source, opts)]);
  let names: string[];
  try {
    names = (await readdir(source)).filter((n) => n.endsWith('.list')).sort();
  } catch (err) {
    throw unreadable(source, err);
  }
  if (names.length === 0) {
    const storage = isDirectoryFollowing(storageRoot(source)) || isDirectoryFollowing(join(source, 'repositories'));
    const hint = storage ? ': it is registry storage, not an image list; are the arguments in the wrong order? (regfs extract LIST SRC OUT, regfs to-dir LIST SRC OUT)' : '';
    throw new RegfsError('LIST_UNREADABLE', `list directory "${source}" holds no *.list files${hint}`, { path: source });
  }
  const parsed: ParsedList[] = [];
  for (const n of names) {
    const path = join(source, n);
    // A list named on the command line may be a pipe (`<(…)`); one found in a directory must be
    // a file (symbolic links followed), checked before it is opened: a FIFO there would block.
    const what = statData(path)?.notRegular;
    if (what !== undefined) throw new RegfsError('LIST_UNREADABLE', `cannot read image list "${path}": it is ${what}, not a regular file`, { path });
    parsed.push(parseImageList(await readText(path), path, opts));
  }
  return finish(parsed);
}

function finish(parts: ParsedList[]): ParsedList {
  return {
    entries: mergeDuplicates(parts.length === 1 ? parts[0]!.entries : parts.flatMap((p) => p.entries)),
    problems: parts.length === 1 ? parts[0]!.problems : parts.flatMap((p) => p.problems),
  };
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw unreadable(path, err);
  }
}

function unreadable(path: string, err: unknown): RegfsError {
  const code = errnoCode(err);
  const why = code === 'ENOENT' ? 'no such file or directory' : (code ?? String(err));
  return new RegfsError('LIST_UNREADABLE', `cannot read image list "${path}": ${why}`, { path, cause: err });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
