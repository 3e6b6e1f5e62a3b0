/**
 * Whether (and how richly) the CLI colours what it writes to a stream: the one place that
 * decides it. In order, the first that applies:
 *
 *   1. `--no-color`: no colour.
 *   2. `--color`: colour, even into a pipe (at the level FORCE_COLOR gives, or the terminal's, at least 16 colours).
 *   3. `FORCE_COLOR`, as chalk reads it: `0` or `false` no colour; `1`, `2`, `3` at least
 *      16, 256 or 16 million colours; `true`, empty or anything else 16. It beats NO_COLOR,
 *      as it does for Node itself (whose docs say NO_COLOR is ignored when FORCE_COLOR is set).
 *   4. `NO_COLOR` set and not empty (no-color.org): no colour.
 *   5. The stream's own terminal: none if it is not one (a pipe, a file), else what its
 *      TERM and COLORTERM say it can show (Node's getColorDepth; TERM=dumb shows none).
 */
import { Parser } from 'yargs/helpers';

/** chalk's levels: 0 none, 1 basic (16 colours), 2 256 colours, 3 16 million. */
export type ColorLevel = 0 | 1 | 2 | 3;

/** What a stream is, as far as colour goes. */
export interface ColorStream {
  isTTY?: boolean;
  getColorDepth?: (env?: NodeJS.ProcessEnv) => number;
}

/** The colour level for `stream`, given the environment and `--color` / `--no-color` (undefined if neither). */
export function colorLevel(stream: ColorStream, env: NodeJS.ProcessEnv, flag: boolean | undefined): ColorLevel {
  if (flag === false) return 0;
  const forced = forceColorLevel(env['FORCE_COLOR']);
  if (flag === true) return Math.max(forced || 1, terminalLevel(stream, env)) as ColorLevel;
  if (forced !== undefined) return forced === 0 ? 0 : (Math.max(forced, terminalLevel(stream, env)) as ColorLevel);
  if ((env['NO_COLOR'] ?? '') !== '') return 0;
  return terminalLevel(stream, env);
}

/** FORCE_COLOR as chalk reads it; undefined when it is not set. */
export function forceColorLevel(value: string | undefined): ColorLevel | undefined {
  if (value === undefined) return undefined;
  if (value === 'false' || value === '0') return 0;
  const n = Number.parseInt(value, 10);
  return Number.isNaN(n) || n < 1 ? 1 : (Math.min(n, 3) as ColorLevel);
}

/** What the stream's terminal can show, ignoring the colour variables (they are judged above); 0 if it is no terminal. */
function terminalLevel(stream: ColorStream, env: NodeJS.ProcessEnv): ColorLevel {
  if (stream.isTTY !== true || stream.getColorDepth === undefined) return 0;
  const { FORCE_COLOR: _f, NO_COLOR: _n, NODE_DISABLE_COLORS: _d, ...rest } = env;
  const depth = stream.getColorDepth(rest);
  return depth >= 24 ? 3 : depth >= 8 ? 2 : depth >= 4 ? 1 : 0;
}

/**
 * `--color` / `--no-color` as given on the command line (the last one wins; undefined if
 * neither), read by the parser yargs uses, before yargs runs: an error in the command line
 * itself is coloured as asked too.
 */
export function colorFlag(argv: readonly string[]): boolean | undefined {
  const v = (Parser(argv as string[], { boolean: ['color'] }) as { color?: unknown }).color;
  return typeof v === 'boolean' ? v : undefined;
}
