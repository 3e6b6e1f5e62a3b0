/**
 * Progress through the long phases of an operation, reported through an `onProgress` option;
 * the library never draws it (the CLI's progress bar does).
 *
 * A run goes through its phases in order, each once: extract and to-dir `resolve` then
 * `write`, from-dir `hash` (not with noVerify) then `write`, verify `hash` (not with fast),
 * gc `mark` then (applied) `sweep`; a dry run does not write. A phase's first report has
 * `done` 0 and its totals, which stay the same to its last report, where `done` equals
 * `total`; `done` (and `bytes`) never go back and never pass their totals.
 */

/** What a run is doing. */
export type ProgressPhase = 'resolve' | 'hash' | 'write' | 'mark' | 'sweep';

/** One report of progress. */
export interface Progress {
  phase: ProgressPhase;
  /** Items done: images resolved, blob files hashed, files written, repositories marked, paths deleted. */
  done: number;
  total: number;
  /** Bytes of the items done, and of all of them, where items have a size (hashing, writing blob data). */
  bytes?: number;
  totalBytes?: number;
}

/** A callback that takes progress reports. */
export type OnProgress = (p: Progress) => void;

/**
 * One phase, as its code advances it: reports its start (done 0) at once, then `report()`
 * whenever the code has advanced it (a chunk, a file); the last report comes with the last item.
 */
export class PhaseProgress {
  private done = 0;
  private bytes = 0;

  constructor(
    private readonly onProgress: OnProgress | undefined,
    readonly phase: ProgressPhase,
    readonly total: number,
    readonly totalBytes?: number,
  ) {
    this.report();
  }

  /** Count `n` more items of `bytes` bytes done (not reported until report()). */
  add(n: number, bytes = 0): void {
    this.done += n;
    this.bytes += bytes;
  }

  report(): void {
    if (this.onProgress === undefined) return;
    this.onProgress(
      this.totalBytes === undefined
        ? { phase: this.phase, done: this.done, total: this.total }
        : { phase: this.phase, done: this.done, total: this.total, bytes: this.bytes, totalBytes: this.totalBytes },
    );
  }
}
