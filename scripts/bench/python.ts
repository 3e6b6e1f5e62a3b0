import { execFileSync } from 'node:child_process';

/**
 * The Python interpreter itself, as `sys.executable` names it, for `python3` found on PATH
 * (`env`'s); undefined when there is none. A version manager's shim (pyenv puts a shell
 * script named `python3` first on PATH) costs hundreds of milliseconds a start, which would
 * be timed as the plain script's work: the bench runs the interpreter, never the shim.
 */
export function pythonInterpreter(env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    const path = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return path === '' ? undefined : path;
  } catch {
    return undefined;
  }
}
