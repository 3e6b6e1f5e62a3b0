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
