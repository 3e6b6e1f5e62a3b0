/** Platforms as text, in a module that loads nothing else (the command line renders them). */
import type { Platform } from './manifest.js';
import type { ImageConfigSummary } from './ops/inspect.js';

/** `os/architecture[/variant]` */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant === undefined ? '' : `/${p.variant}`}`;
}

/** `os/arch[/variant]` of a summary, or undefined without both os and architecture. */
export function summaryPlatform(s: ImageConfigSummary): string | undefined {
  if (s.os === undefined || s.architecture === undefined) return undefined;
  return formatPlatform({ os: s.os, architecture: s.architecture, variant: s.variant });
}
