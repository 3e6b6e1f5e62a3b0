/**
 * Bounded parallel work that stops at the first failure. p-limit alone keeps running its
 * queue after a task fails (and clearQueue leaves the dropped tasks' promises unsettled), so
 * a run that hit ENOSPC would go on copying, and work could outlive the lock that guards it.
 * Here a task that starts after a failure does nothing; the first error is thrown once the
 * tasks in flight have settled.
 */
import type pLimit from 'p-limit';

type Limit = ReturnType<typeof pLimit>;

/** Run `fn` for every item through `limit`; stop starting new items after the first failure. */
export async function forEachBounded<T>(limit: Limit, items: Iterable<T>, fn: (item: T) => Promise<void>): Promise<void> {
  let failure: { err: unknown } | undefined;
  await Promise.all(
    Array.from(items, (item) =>
      limit(async () => {
        if (failure !== undefined) return;
        try {
          await fn(item);
        } catch (err) {
          failure ??= { err };
        }
      }),
    ),
  );
  if (failure !== undefined) throw failure.err;
}

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
