/**
 * Reading an inventory file (docs/bundle.md, "The inventory file"): what a far side's storage
 * holds, as `regfs inventory` writes it. Read as a stream, a chunk at a time, hashed as it goes
 * (its identity is the sha256 of its bytes), each line checked as it comes: a line that is not
 * one of the format's records, a missing header or another version is INVENTORY_INVALID,
 * naming the file and the line. Only the blobs are kept; repositories, tags and manifests are
 * checked and passed over.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { isDigest, type Digest } from '../digest.js';
import { ioError, quote, RegfsError } from '../errors.js';
import { isRepoName, isTag } from '../reference.js';

/** The header line of version 1. */
export const INVENTORY_HEADER = 'regfs-inventory 1';

export interface Inventory {
  /** `sha256:<hex>` of the file's bytes. */
  id: Digest;
  /** Every `blob` line: digest to size. */
  blobs: Map<Digest, number>;
}

/** Bytes read at once. */
const CHUNK = 1 << 20;
/** No record of the format comes near this: a longer line is not an inventory's. */
const LINE_MAX = 4096;

/**
 * Read and check the inventory at `path` (a file, or a pipe: `--have <(ssh far regfs inventory /srv)`).
 * With `wanted`, only the blobs it takes are kept (and checked for a second line of theirs;
 * every line is checked for its form all the same), so that memory does not grow with the
 * far side's size.
 */
export function readInventory(path: string, wanted?: (d: Digest) => boolean): Inventory {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw ioError('reading', path, err);
  }
  try {
    return parse(path, fd, wanted);
  } finally {
    closeSync(fd);
  }
}

function parse(path: string, fd: number, wanted: ((d: Digest) => boolean) | undefined): Inventory {
  const hash = createHash('sha256');
  const blobs = new Map<Digest, number>();
  const buf = Buffer.allocUnsafe(CHUNK);
  let rest = '';
  let line = 0;
  let repo: string | undefined;
  const take = (text: string): void => {
    line++;
    if (line === 1) {
      if (text === INVENTORY_HEADER) return;
      const m = /^regfs-inventory (\S+)$/.exec(text);
      throw invalid(path, line, m === null ? `no header: want ${quote(INVENTORY_HEADER)}, found ${quote(text.slice(0, 80))}` : `version ${quote(m[1]!)}; this regfs reads version 1`);
    }
    const f = text.split(' ');
    switch (f[0]) {
      case 'blob': {
        const size = f[2];
        if (f.length !== 3 || !isDigest(f[1]!) || size === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(size) || !Number.isSafeInteger(Number(size))) {
          throw invalid(path, line, `want "blob <digest> <size>", found ${quote(text.slice(0, 200))}`);
        }
        if (wanted !== undefined && !wanted(f[1])) return;
        if (blobs.has(f[1])) throw invalid(path, line, `blob ${f[1]} is listed twice`);
        blobs.set(f[1], Number(size));
        return;
      }
      case 'repo':
        if (f.length !== 2 || !isRepoName(f[1]!)) throw invalid(path, line, `want "repo <name>", found ${quote(text.slice(0, 200))}`);
        repo = f[1];
        return;
      case 'tag':
        if (f.length !== 4 || !isRepoName(f[1]!) || !isTag(f[2]!) || !isDigest(f[3]!)) throw invalid(path, line, `want "tag <name> <tag> <digest>", found ${quote(text.slice(0, 200))}`);
        if (f[1] !== repo) throw invalid(path, line, `tag of ${quote(f[1]!)} outside its "repo" record`);
        return;
      case 'manifest':
        if (f.length !== 3 || !isRepoName(f[1]!) || !isDigest(f[2]!)) throw invalid(path, line, `want "manifest <name> <digest>", found ${quote(text.slice(0, 200))}`);
        if (f[1] !== repo) throw invalid(path, line, `manifest of ${quote(f[1]!)} outside its "repo" record`);
        return;
      default:
        throw invalid(path, line, `not a record of the format (blob, repo, tag, manifest): ${quote(text.slice(0, 200))}`);
    }
  };
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, CHUNK, null);
    } catch (err) {
      throw ioError('reading', path, err);
    }
    if (n === 0) break;
    const chunk = buf.subarray(0, n);
    hash.update(chunk);
    const text = rest + chunk.toString('latin1');
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      take(checkText(path, line + 1, text.slice(start, nl)));
      start = nl + 1;
    }
    rest = text.slice(start);
    if (rest.length > LINE_MAX) throw invalid(path, line + 1, `a line longer than ${LINE_MAX} bytes`);
  }
  if (rest !== '') throw invalid(path, line + 1, `the last line has no line end (a truncated file?)`);
  if (line === 0) throw invalid(path, 1, `empty: no ${quote(INVENTORY_HEADER)} header`);
  return { id: `sha256:${hash.digest('hex')}` as Digest, blobs };
}

/** Records are ASCII: no byte outside printable ASCII, no carriage return, no tab. */
function checkText(path: string, line: number, text: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[^\x20-\x7e]/.test(text)) throw invalid(path, line, `a byte that is not printable ASCII (a CR line end, a tab, or not text): ${quote(text.slice(0, 200))}`);
  return text;
}

function invalid(path: string, line: number, what: string): RegfsError {
  return new RegfsError('INVENTORY_INVALID', `inventory "${path}", line ${line}: ${what}`, { path });
}


