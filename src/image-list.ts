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
import { createReadStream, fstatSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, Problems, quote, RegfsError, type ListPosition } from './errors.js';
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
  const problems = new Problems();
  const entries = [...parseLines(text, file, opts, (p) => problems.add(p))].map(([e]) => e);
  return { entries, problems: problems.list };
}

/**
 * The references of list text, one at a time as they are taken, each with the offset its line
 * starts at: a list of a million lines is never held as a million entries. A line that does
 * not parse goes to `problems`.
 */
function* parseLines(text: string, file: string, opts: ParseRefOptions, bad: (p: RegfsError) => void): Generator<[ListEntry, number]> {
  // Line by line through the text, without an array of every line.
  for (let start = 0, i = 0; start <= text.length; i++) {
    const { content, next } = lineAt(text, start);
    const lineStart = start;
    start = next;
    if (content === '') continue;
    const at = { file, line: i + 1 };
    if (/\s/.test(content)) {
      bad(new RegfsError('LIST_SYNTAX', `${file}:${at.line}: one image a line, found ${quote(content)}`, { at }));
      continue;
    }
    let ref: ImageRef;
    try {
      ref = parseImageRef(content, opts);
    } catch (err) {
      if (!(err instanceof RegfsError)) throw err;
      bad(new RegfsError(err.code, `${file}:${at.line}: ${err.message}`, { at }));
      continue;
    }
    yield [{ ref, at }, lineStart];
  }
}

/** The line starting at `start`, less its comment and surrounding white space, and where the next one starts. */
function lineAt(text: string, start: number): { content: string; next: number } {
  let end = text.indexOf('\n', start);
  if (end < 0) end = text.length;
  const line = text.slice(start, end);
  const hash = line.indexOf('#');
  return { content: (hash >= 0 ? line.slice(0, hash) : line).trim(), next: end + 1 };
}

/** Drop repeated references, keeping the first position of each. */
export function mergeDuplicates(entries: readonly ListEntry[]): ListEntry[] {
  const seen = new Map<string, ListEntry>();
  for (const e of entries) {
    const key = formatImageRef(e.ref);
    if (!seen.has(key)) seen.set(key, e);
  }
  return [...seen.values()];
}

/** The text of an image list, and the name messages give it. */
export interface ListText {
  file: string;
  text: string;
}

/**
 * An image list read but not yet parsed: its text (every `*.list` file of a directory, in
 * name order). `entries` parses it as it is iterated, each reference once.
 */
export class ImageList {
  /** Lines that did not parse, so far (each one problem). */
  badLines = 0;

  constructor(
    readonly texts: readonly ListText[],
    private readonly opts: ParseRefOptions,
  ) {}

  /**
   * Every reference, each once (the first position kept); a line that does not parse goes to
   * `problems`. What is held is the text and about 16 to 32 bytes a distinct reference
   * (SeenRefs), not the entries: a million missing images hold no entry and no problem.
   */
  *entries(problems: Problems): Generator<ListEntry> {
    const { texts, opts } = this;
    const seen = new SeenRefs((pos) => {
      const t = texts[pos.text]!;
      return formatImageRef(parseImageRef(lineAt(t.text, pos.start).content, opts));
    });
    const bad = (p: RegfsError): void => {
      this.badLines++;
      problems.add(p);
    };
    for (let i = 0; i < texts.length; i++) {
      for (const [entry, start] of parseLines(texts[i]!.text, texts[i]!.file, opts, bad)) {
        if (seen.add(formatImageRef(entry.ref), i, start)) yield entry;
      }
    }
  }
}

/** Where a line is: which text, and the offset it starts at. */
interface LinePosition {
  text: number;
  start: number;
}

/**
 * The references seen so far, exactly, in typed arrays: an open-addressing table of each
 * distinct reference's hash and the position of the first line that named it. Two references
 * that hash alike are told apart by remaking the earlier one from its line (`keyAt`), so
 * nothing is dropped by a collision; a Set of the reference strings cost about 100 bytes a
 * line.
 */
class SeenRefs {
  private hashes = new Uint32Array(1024);
  /** Text index and line start of each slot, packed as text * 2^32 + start; -1 when empty. */
  private where = new Float64Array(1024).fill(-1);
  private size = 0;

  constructor(private readonly keyAt: (pos: LinePosition) => string) {}

  /** Record `key`, first named at (text, start); false if it was seen before. */
  add(key: string, text: number, start: number): boolean {
    const h = fnv1a(key);
    const mask = this.hashes.length - 1;
    let i = h & mask;
    for (; this.where[i] !== -1; i = (i + 1) & mask) {
      if (this.hashes[i] !== h) continue;
      const w = this.where[i]!;
      if (this.keyAt({ text: Math.floor(w / 2 ** 32), start: w % 2 ** 32 }) === key) return false;
    }
    this.hashes[i] = h;
    this.where[i] = text * 2 ** 32 + start;
    if (++this.size * 4 > this.hashes.length * 3) this.grow();
    return true;
  }

  private grow(): void {
    const { hashes, where } = this;
    this.hashes = new Uint32Array(hashes.length * 2);
    this.where = new Float64Array(hashes.length * 2).fill(-1);
    const mask = this.hashes.length - 1;
    for (let j = 0; j < hashes.length; j++) {
      if (where[j] === -1) continue;
      let i = hashes[j]! & mask;
      while (this.where[i] !== -1) i = (i + 1) & mask;
      this.hashes[i] = hashes[j]!;
      this.where[i] = where[j]!;
    }
  }
}

/** 32-bit FNV-1a over UTF-16 code units (exported for tests, which make references that collide). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Read a list from a file, from standard input (`-`), or from every `*.list` file of a
 * directory (in name order). Lines that do not parse are returned as problems; a list that
 * cannot be read at all throws LIST_UNREADABLE.
 */
export async function readImageList(source: string, opts: ListReadOptions = {}): Promise<ParsedList> {
  const problems = new Problems();
  const entries = [...(await openImageList(source, opts)).entries(problems)];
  return { entries, problems: problems.list };
}

export interface ListReadOptions extends ParseRefOptions {
  /** Standard input, for `-` (tests). */
  stdin?: () => Promise<string>;
}

/**
 * Read the text of a list (a file, `-` for standard input, or a directory of `*.list` files)
 * without parsing it; a list that cannot be read throws LIST_UNREADABLE.
 */
export async function openImageList(source: string, opts: ListReadOptions = {}): Promise<ImageList> {
  const list = (texts: ListText[]): ImageList => new ImageList(texts, { stripRegistry: opts.stripRegistry });
  if (source === '-') return list([{ file: STDIN_NAME, text: await (opts.stdin ?? readStdin)() }]);
  let isDir: boolean;
  try {
    isDir = (await stat(source)).isDirectory();
  } catch (err) {
    throw unreadable(source, err);
  }
  if (!isDir) return list([{ file: source, text: await readText(source) }]);
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
  const texts: ListText[] = [];
  for (const n of names) {
    const path = join(source, n);
    // A list named on the command line may be a pipe (`<(…)`); one found in a directory must be
    // a file (symbolic links followed), checked before it is opened: a FIFO there would block.
    const what = statData(path)?.notRegular;
    if (what !== undefined) throw new RegfsError('LIST_UNREADABLE', `cannot read image list "${path}": it is ${what}, not a regular file`, { path });
    texts.push({ file: path, text: await readText(path) });
  }
  return list(texts);
}

async function readText(path: string): Promise<string> {
  return readListText(createReadStream(path), path);
}

/** The largest list read (about four million lines; a million is about 60 MB). */
const LIST_MAX_BYTES = 256 << 20;
/** The longest line read: a reference is at most a few hundred bytes, a comment rarely more. */
const LINE_MAX_BYTES = 1 << 20;

/**
 * A list's text, read chunk by chunk: a line longer than LINE_MAX_BYTES (no image list:
 * `/dev/zero`, a binary file) or more than LIST_MAX_BYTES in all stops the read at once,
 * LIST_UNREADABLE, instead of reading on until memory or the string limit runs out. (Lines
 * within one chunk are as long as a chunk at most; those across chunks are measured.)
 */
async function readListText(input: AsyncIterable<unknown>, name: string): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  /** Bytes of the line the last chunk ended in. */
  let open = 0;
  const tooLong = (): RegfsError =>
    new RegfsError('LIST_UNREADABLE', `cannot read image list "${name}": the line from byte ${total - open} is longer than ${LINE_MAX_BYTES} bytes, so it is no image list`, { path: name });
  try {
    for await (const c of input) {
      const chunk = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
      const first = chunk.indexOf(10);
      if (open + (first < 0 ? chunk.length : first) > LINE_MAX_BYTES) throw tooLong();
      open = first < 0 ? open + chunk.length : chunk.length - chunk.lastIndexOf(10) - 1;
      total += chunk.length;
      if (total > LIST_MAX_BYTES) throw new RegfsError('LIST_UNREADABLE', `cannot read image list "${name}": it is larger than ${LIST_MAX_BYTES} bytes`, { path: name });
      chunks.push(chunk);
    }
  } catch (err) {
    throw err instanceof RegfsError ? err : unreadable(name, err);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function unreadable(path: string, err: unknown): RegfsError {
  const code = errnoCode(err);
  const why = code === 'ENOENT' ? 'no such file or directory' : (code ?? String(err));
  return new RegfsError('LIST_UNREADABLE', `cannot read image list "${path}": ${why}`, { path, cause: err });
}

async function readStdin(): Promise<string> {
  // A directory as standard input (`regfs to-dir - SRC OUT < DIR`) reads as an empty stream in
  // Node, which would be an empty list: to-dir would then remove every image of its export.
  let directory = false;
  try {
    directory = fstatSync(0).isDirectory();
  } catch {
    // No standard input to stat (closed): reading it says what is wrong.
  }
  if (directory) throw new RegfsError('LIST_UNREADABLE', `cannot read image list "${STDIN_NAME}": standard input is a directory (EISDIR)`, { path: STDIN_NAME });
  return readListText(process.stdin, STDIN_NAME);
}
