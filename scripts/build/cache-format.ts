/**
 * The code cache files of the CLI bundle (FILE.cache beside each FILE of dist/cli): written by
 * code-cache.ts at build time, read by the loader (loader.ts) at every start.
 *
 *   "regfs code cache 1\n"  uint32 LE: the source's length S  the source (S bytes)  V8's cached data
 *
 * The copy of the source lets the loader offer the cache only to the exact bytes it was made
 * from, by one comparison: V8 itself checks no more than the source's length.
 */
const MAGIC = Buffer.from('regfs code cache 1\n', 'latin1');

/** A cache file's bytes, for `source` and V8's cached data of it. */
export function cacheFile(source: Buffer, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32LE(source.length);
  return Buffer.concat([MAGIC, length, source, data]);
}

/** A cache file's source and V8 data; undefined if the bytes are not such a file. */
export function cacheParts(file: Buffer): { source: Buffer; data: Buffer } | undefined {
  const head = MAGIC.length + 4;
  if (file.length < head || !file.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const end = head + file.readUInt32LE(MAGIC.length);
  if (end >= file.length) return undefined;
  return { source: file.subarray(head, end), data: file.subarray(end) };
}
