/** `regfs ls ROOT [PATTERN]` */
import type { Argv } from 'yargs';
import { escapeControl } from '../../errors.js';
import type { ListResult, TagListing } from '../../ops/ls.js';
import { DEFAULT_JOBS } from '../../defaults.js';
import { ExitCode, formatBytes, printWarning, type Io, type RunOutput } from '../output.js';
import { examples } from './shared.js';

interface LsArgs {
  root: string;
  pattern: string | undefined;
  jobs: number;
  json: boolean;
}

export const command = 'ls <root> [pattern]';
export const describe = 'List repositories (as the registry catalog finds them) and their tags: digest, kind, platforms, total size';

export function builder(y: Argv): Argv<LsArgs> {
  return y
    .positional('root', { type: 'string', demandOption: true, describe: 'registry root (holds docker/registry/v2), that v2 directory, or s3://BUCKET/PREFIX' })
    .positional('pattern', {
      type: 'string',
      describe: 'glob over repository names (* and ? within a component, ** across), optionally :TAGGLOB',
    })
    .option('jobs', { alias: 'j', type: 'number', default: DEFAULT_JOBS, describe: 'tags read at once' })
    .option('json', { type: 'boolean', default: false, describe: 'print the listing as one JSON document on stdout (docs/json.md)' })
    .example(
      examples([
        ['$0 ls /var/lib/registry', 'every repository and tag'],
        ["$0 ls /var/lib/registry 'team/**:v1*'", 'tags starting with v1 of every repository under team/'],
        ["$0 ls /var/lib/registry '**/busybox' --json", 'busybox at any depth, as JSON'],
      ]),
    ) as unknown as Argv<LsArgs>;
}

export async function handler(args: LsArgs, io: Io, run: RunOutput): Promise<number> {
  const { listImages } = await import('../../ops/ls.js');
  const result = await listImages({ root: args.root, pattern: args.pattern, jobs: args.jobs });
  if (args.json) run.finishJson(ExitCode.ok, listJson(result));
  else io.stdout.write(renderList(result));
  if (result.repositories.length === 0 && args.pattern !== undefined) {
    printWarning(io, `no repository matches ${JSON.stringify(args.pattern)}`);
  }
  const errors = result.repositories.flatMap((r) => r.tags.flatMap((t) => (t.error === undefined ? [] : [t.error.code])));
  // The registry serves an index of any depth: only regfs's own limit stops it there.
  const deep = errors.filter((c) => c === 'INDEX_TOO_DEEP').length;
  const broken = errors.length - deep;
  if (broken > 0) {
    printWarning(io, `${broken} tag${broken === 1 ? '' : 's'} could not be read (listed with the error); the registry cannot serve ${broken === 1 ? 'it' : 'them'} either`);
  }
  if (deep > 0) {
    const { MAX_INDEX_DEPTH } = await import('../../manifest.js');
    printWarning(
      io,
      `${deep} tag${deep === 1 ? '' : 's'} nest${deep === 1 ? 's' : ''} indexes deeper than regfs's limit of ${MAX_INDEX_DEPTH} (listed with the error); the registry serves ${deep === 1 ? 'it' : 'them'}, but regfs does not walk ${deep === 1 ? 'it' : 'them'}`,
    );
  }
  return ExitCode.ok;
}

/** The listing as --json gives it; a tag's error as `{code, message, path, digest}`. */
function listJson(r: ListResult): object {
  const repositories = r.repositories.map((repo) => ({
    name: repo.name,
    tags: repo.tags.map(({ error, ...t }) => ({
      ...t,
      ...(error === undefined ? {} : { error: { code: error.code, message: error.message, path: error.path, digest: error.digest } }),
    })),
  }));
  return { storage: r.storage, repositories };
}

/**
 * One line per tag, `repo:tag  digest  kind  platforms  size`, columns aligned; an
 * artifact shows its type where an image shows platforms; `repo  (no tags)` for a repository
 * without tags; a tag that cannot be read shows `error` and the message with its code.
 */
export function renderList(r: ListResult): string {
  type Row = { name: string; digest: string; kind: string; what: string; size: string } | { name: string; digest: string; error: string } | { name: string; empty: true };
  const rows: Row[] = [];
  for (const repo of r.repositories) {
    if (repo.tags.length === 0) rows.push({ name: repo.name, empty: true });
    for (const t of repo.tags) {
      const name = `${repo.name}:${t.tag}`;
      if (t.error !== undefined) rows.push({ name, digest: t.digest ?? '-', error: `${t.error.message} [${t.error.code}]` });
      else rows.push({ name, digest: t.digest!, kind: t.kind!, what: describeContent(t), size: describeSize(t) });
    }
  }
  const w = { name: 0, digest: 0, kind: 0, what: 0, size: 0 };
  for (const row of rows) {
    w.name = Math.max(w.name, row.name.length);
    if ('digest' in row) w.digest = Math.max(w.digest, row.digest.length);
    if ('kind' in row) {
      w.kind = Math.max(w.kind, row.kind.length);
      w.what = Math.max(w.what, row.what.length);
      w.size = Math.max(w.size, row.size.length);
    }
  }
  const lines = rows.map((row) => {
    if ('empty' in row) return `${row.name.padEnd(w.name)}  (no tags)`;
    const head = `${row.name.padEnd(w.name)}  ${row.digest.padEnd(w.digest)}  `;
    if ('error' in row) return `${head}${'error'.padEnd(w.kind)}  ${row.error}`;
    return `${head}${row.kind.padEnd(w.kind)}  ${row.what.padEnd(w.what)}  ${row.size.padStart(w.size)}`.trimEnd();
  });
  return lines.length === 0 ? '' : `${lines.map(escapeControl).join('\n')}\n`;
}

function describeContent(t: TagListing): string {
  if (t.platforms.length > 0) return t.platforms.join(',');
  return t.artifactType ?? '-';
}

function describeSize(t: TagListing): string {
  const size = formatBytes(t.size ?? 0);
  const missing = t.missing !== undefined && t.missing > 0 ? ` (${t.missing} missing)` : '';
  const referrers = t.referrerTags === undefined ? '' : `  +${t.referrerTags} referrer tag${t.referrerTags === 1 ? '' : 's'}`;
  return `${size}${missing}${referrers}`;
}
