/**
 * Metadata work in chunks. Each call (a link, a small file, a stat) is a syscall cheaper than
 * a threadpool round trip, so it is made synchronously; the event loop runs between chunks.
 */
/** Items done between two yields to the event loop in forEachChunked. */
export const CHUNK = 512;

/**
 * Run a synchronous `fn` for every item, CHUNK at a time, letting the event loop run between
 * chunks (for timers, signals, a progress bar); `onChunk` is told how many are done. For
 * metadata work, where each call is a syscall cheaper than a threadpool round trip.
 */
export async function forEachChunked<T>(items: readonly T[], fn: (item: T) => void, onChunk?: (done: number) => void): Promise<void> {
  for (let i = 0; i < items.length; ) {
    const end = Math.min(items.length, i + CHUNK);
    for (; i < end; i++) fn(items[i]!);
    onChunk?.(i);
    if (i < items.length) await new Promise((resolve) => setImmediate(resolve));
  }
}
