/**
 * Metadata work in chunks. Each call (a link, a small file, a stat) is a syscall cheaper than
 * a threadpool round trip, so it is made synchronously; the event loop runs between chunks.
 */
/** Items done between two yields to the event loop in forEachChunked. */
export const CHUNK = 512;

/**
 * Run a synchronous `fn` for every item, CHUNK at a time, letting the event loop run between
 * chunks (for timers, signals, a progress bar); `onChunk` is told how many are done. For
 * metadata work, where each call is a syscall cheaper than a threadpool round trip. The items
 * may be made as they are taken (a generator: a list parsed line by line, never held whole).
 */
export async function forEachChunked<T>(items: Iterable<T>, fn: (item: T) => void, onChunk?: (done: number) => void): Promise<void> {
  if (Array.isArray(items)) {
    const all = items as readonly T[];
    for (let i = 0; i < all.length; ) {
      const end = Math.min(all.length, i + CHUNK);
      for (; i < end; i++) fn(all[i]!);
      onChunk?.(i);
      if (i < all.length) await new Promise((resolve) => setImmediate(resolve));
    }
    return;
  }
  const it = items[Symbol.iterator]();
  let done = 0;
  for (;;) {
    const end = done + CHUNK;
    let next = it.next();
    for (; next.done !== true; next = it.next()) {
      fn(next.value);
      if (++done === end) break;
    }
    onChunk?.(done);
    if (next.done === true) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * forEachChunked for work that may wait (storage on S3, where each read is a request): `fn`
 * runs for the items of a chunk at once, and `then` takes each result in the items' order, so
 * what is built from them does not depend on which request came back first. On disk the
 * reads are synchronous underneath and this costs a promise per item. `around`, if given,
 * wraps the work of each chunk: taking its items (which may run a generator's side effects)
 * and handling its results.
 */
export async function forEachChunkedAsync<T, R>(
  items: Iterable<T>,
  fn: (item: T) => Promise<R>,
  then: (item: T, result: R) => void,
  onChunk?: (done: number) => void,
  around: (work: () => Promise<boolean>) => Promise<boolean> = (work) => work(),
): Promise<void> {
  const it = items[Symbol.iterator]();
  let done = 0;
  for (;;) {
    const more = await around(async () => {
      const chunk: T[] = [];
      let next = it.next();
      for (; next.done !== true; next = it.next()) {
        chunk.push(next.value);
        if (chunk.length === CHUNK) break;
      }
      const results = await Promise.all(chunk.map(fn));
      for (let i = 0; i < chunk.length; i++) then(chunk[i]!, results[i]!);
      done += chunk.length;
      onChunk?.(done);
      return chunk.length === CHUNK;
    });
    if (!more) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
