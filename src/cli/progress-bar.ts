/**
 * The progress bar: one line on stderr, drawn only when stderr is a terminal, redrawn at most
 * ten times a second, for every phase of a run in turn (src/progress.ts: each phase once, its
 * totals known when it starts), and cleared at the end and before any warning.
 *
 *   writing    [#########-----------]  1,204/2,610  1.1 GiB/2.3 GiB  85.2 MiB/s  ETA 0:14
 *
 * Hand-written rather than cli-progress (the well-kept candidate): what it draws is a pure
 * function of the state (renderProgress, tested as such), it needs bytes and items in one
 * line, a redraw that never wraps at the terminal's width and a clear before each warning, and
 * it costs no module to load at start-up; cli-progress would need as much code around it.
 */
import type { Progress, ProgressPhase } from '../progress.js';
import { formatBytes, type Io } from './output.js';

/** What a phase is called on the bar. */
const LABELS: Record<ProgressPhase, string> = {
  resolve: 'resolving',
  hash: 'hashing',
  write: 'writing',
  mark: 'marking',
  sweep: 'sweeping',
};
const LABEL_WIDTH = Math.max(...Object.values(LABELS).map((l) => l.length));
const BAR_WIDTH = 20;

/** Redraws at most this often. */
export const REDRAW_MS = 100;

/**
 * The bar's line for `p`, `seconds` into its phase, at most `columns - 1` characters (a line
 * as wide as the terminal wraps, and `\r` then redraws only its last part). The rate and ETA
 * go by bytes where the phase has them, else by items; no ETA before anything is done.
 */
export function renderProgress(p: Progress, seconds: number, columns = 80): string {
  const byBytes = p.totalBytes !== undefined && p.totalBytes > 0;
  const frac = byBytes ? (p.bytes ?? 0) / p.totalBytes! : p.total === 0 ? 1 : p.done / p.total;
  const f = Math.min(1, Math.max(0, frac));
  const fill = Math.round(f * BAR_WIDTH);
  const parts = [`${LABELS[p.phase].padEnd(LABEL_WIDTH)} [${'#'.repeat(fill)}${'-'.repeat(BAR_WIDTH - fill)}]`, `${count(p.done)}/${count(p.total)}`];
  if (p.totalBytes !== undefined) parts.push(`${formatBytes(p.bytes ?? 0)}/${formatBytes(p.totalBytes)}`);
  if (seconds > 0) parts.push(byBytes ? `${formatBytes(Math.round((p.bytes ?? 0) / seconds))}/s` : `${count(Math.round(p.done / seconds))}/s`);
  parts.push(`ETA ${f > 0 && seconds > 0 ? clock((seconds * (1 - f)) / f) : '-:--'}`);
  const line = parts.join('  ');
  return line.length < columns ? line : line.slice(0, Math.max(0, columns - 1));
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** `0:07`, `12:34`, `1:02:03` */
function clock(seconds: number): string {
  const s = Math.round(seconds);
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const two = (n: number): string => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
}

export interface ProgressBar {
  update: (p: Progress) => void;
  /** Clear the line (at the end, and before a warning); the next update draws it again. */
  clear: () => void;
}

/** A progress bar on `io.stderr` if it is a terminal; otherwise one that draws nothing. */
export function createProgressBar(io: Io, now: () => number = Date.now): ProgressBar {
  const stderr = io.stderr as Io['stderr'] & { columns?: number };
  if (stderr.isTTY !== true) return { update: () => undefined, clear: () => undefined };
  let phase: ProgressPhase | undefined;
  let started = 0;
  let last = -Infinity;
  let drawn = false;
  return {
    update(p) {
      const t = now();
      if (p.phase !== phase) {
        phase = p.phase;
        started = t;
      } else if (t - last < REDRAW_MS) return;
      last = t;
      // A terminal of unknown width (0 columns, as under script(1)) is taken as 80 wide.
      stderr.write(`\r${renderProgress(p, (t - started) / 1000, stderr.columns || 80)}\x1b[K`);
      drawn = true;
    },
    clear() {
      if (drawn) stderr.write('\r\x1b[K');
      drawn = false;
      // What follows (a warning) pushed the bar away: the next update draws it again at once.
      last = -Infinity;
    },
  };
}

/** Run `fn` with a progress bar on stderr taking its reports; the bar is cleared when it ends, however it ends. */
export async function withProgressBar<T>(io: Io, fn: (onProgress: ProgressBar['update']) => Promise<T>): Promise<T> {
  const bar = createProgressBar(io);
  try {
    return await fn(bar.update);
  } finally {
    bar.clear();
  }
}
