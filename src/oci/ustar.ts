/**
 * Deterministic POSIX tar (ustar) headers, for bundles: mtime 0, uid and gid 0, no user or
 * group names, mode 0644 for files and 0755 for directories, so the same entries always give
 * the same bytes. A name longer than ustar holds (a sha512 blob's) goes in a pax `path`
 * record before its header; a size beyond ustar's 11 octal digits (8 GiB) in base-256, as GNU
 * tar writes it and Go's archive/tar (skopeo's reader) reads it.
 */

export const BLOCK = 512;
/** The end of an archive: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

export type EntryType = 'file' | 'dir';

/** The bytes an entry's data takes, padded to whole blocks. */
export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/** The header bytes of an entry: one block, or a pax record and its header before it when the name does not fit. */
export function entryHeader(name: string, type: EntryType, size: number): Buffer {
  const split = splitName(name);
  if (split !== undefined) return header(split.name, split.prefix, type, size);
  const record = paxRecord('path', name);
  const pax = header('PaxHeaders/' + name.slice(-80), '', 'pax', record.length);
  return Buffer.concat([pax, record, Buffer.alloc(paddedSize(record.length) - record.length), header(name.slice(-100), '', type, size)]);
}

/** The bytes of an entry's header(s) without building them. */
export function headerSize(name: string): number {
  if (splitName(name) !== undefined) return BLOCK;
  return 2 * BLOCK + paddedSize(paxRecord('path', name).length);
}

/** ustar's two name fields: `name` up to 100 bytes, `prefix` up to 155, split at a slash. */
function splitName(name: string): { name: string; prefix: string } | undefined {
  const bytes = Buffer.byteLength(name);
  if (bytes <= 100) return { name, prefix: '' };
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest !== '') return { name: rest, prefix };
  }
  return undefined;
}

/** `<len> <key>=<value>\n`, its length counting itself. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return Buffer.from(`${len}${body}`);
}

function header(name: string, prefix: string, type: EntryType | 'pax', size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, 'utf8');
  octal(h, 100, 8, type === 'dir' ? 0o755 : 0o644);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  sizeField(h, size);
  octal(h, 136, 12, 0);
  h.write(type === 'dir' ? '5' : type === 'pax' ? 'x' : '0', 156, 1, 'latin1');
  h.write('ustar\u000000', 257, 8, 'latin1');
  octal(h, 329, 8, 0);
  octal(h, 337, 8, 0);
  h.write(prefix, 345, 155, 'utf8');
  // The checksum: the sum of the header's bytes with the checksum field as eight spaces.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'latin1');
  return h;
}

/** A numeric field: octal digits, zero-padded, then a NUL. */
function octal(h: Buffer, at: number, width: number, n: number): void {
  h.write(`${n.toString(8).padStart(width - 1, '0')}\u0000`, at, width, 'latin1');
}

/** The size field: 11 octal digits up to 8 GiB - 1, base-256 (a leading 0x80 byte) beyond. */
function sizeField(h: Buffer, size: number): void {
  if (size < 8 ** 11) return octal(h, 124, 12, size);
  h[124] = 0x80;
  let n = BigInt(size);
  for (let i = 135; i > 124; i--) {
    h[i] = Number(n & 0xffn);
    n >>= 8n;
  }
}
