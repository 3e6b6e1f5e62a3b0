/** `regfs inspect ROOT REF` */
import type { Argv } from 'yargs';
import { escapeControl, RegfsError } from '../../errors.js';
import type { InspectedBlob, InspectResult, InspectedManifest } from '../../ops/inspect.js';
import { summaryPlatform } from '../../platform.js';
import { ExitCode, formatBytes, type Io, type RunOutput } from '../output.js';
import { examples } from './shared.js';

interface InspectArgs {
  root: string;
  ref: string;
  raw: boolean;
  json: boolean;
}

export const command = 'inspect <root> <ref>';
export const describe = 'Show one image: manifest, config summary, layers, or an index and its platforms';

export function builder(y: Argv): Argv<InspectArgs> {
  return y
    .positional('root', { type: 'string', demandOption: true, describe: 'registry root (holds docker/registry/v2), that v2 directory, or s3://BUCKET/PREFIX' })
    .positional('ref', { type: 'string', demandOption: true, describe: 'repo:tag, repo@sha256:<hex>, or repo:tag@sha256:<hex> (the tag must point there)' })
    .option('raw', { type: 'boolean', default: false, describe: 'write the manifest exactly as stored (the bytes its digest is over) to stdout' })
    .option('json', { type: 'boolean', default: false, describe: 'print everything as one JSON document on stdout, the manifest included (docs/json.md)' })
    .example(
      examples([
        ['$0 inspect /var/lib/registry team/app:v1', 'config, layers and sizes'],
        ['$0 inspect /var/lib/registry multiarch/tool:1.0', 'an index: each child with its platform'],
        ['$0 inspect /var/lib/registry team/app:v1 --raw | sha256sum', 'the stored manifest bytes'],
      ]),
    ) as unknown as Argv<InspectArgs>;
}

export async function handler(args: InspectArgs, io: Io, run: RunOutput): Promise<number> {
  const { inspectImage } = await import('../../ops/inspect.js');
  if (args.raw && args.json) throw new RegfsError('USAGE', '--raw and --json exclude each other');
  const r = await inspectImage({ root: args.root, ref: args.ref });
  if (args.raw) io.stdout.write(r.raw);
  else if (args.json) run.finishJson(ExitCode.ok, inspectJson(r));
  else io.stdout.write(renderInspect(r));
  return ExitCode.ok;
}

/**
 * The result as --json gives it: everything but the raw bytes, plus the parsed manifest as
 * `manifest`. Every key is always there: what does not apply is `null`.
 */
function inspectJson(r: InspectResult): object {
  const { raw, ...rest } = r;
  const doc = { ...rest, manifest: JSON.parse(raw.toString('utf8')) as unknown };
  return JSON.parse(JSON.stringify(doc, (_k, v: unknown) => (v === undefined ? null : v))) as object;
}

const W = 14;

/** The result as labelled lines. */
export function renderInspect(r: InspectResult): string {
  const out: string[] = [];
  const kv = (label: string, value: string, indent = ''): void => {
    out.push(`${indent}${label.padEnd(W - indent.length)} ${value}`.trimEnd());
  };
  kv('ref', r.ref);
  kv('media type', `${r.mediaType} (${r.kind})`);
  if (r.artifactType !== undefined) kv('artifact type', r.artifactType);
  const missing = r.missing > 0 ? `; ${r.missing} referenced blob${r.missing === 1 ? '' : 's'} or manifest${r.missing === 1 ? '' : 's'} missing` : '';
  kv('size', `${formatBytes(r.size)} manifest; ${formatBytes(r.totalSize)} in all (${r.blobs} blob${r.blobs === 1 ? '' : 's'})${missing}`);
  if (r.platforms.length > 0) kv(r.platforms.length === 1 ? 'platform' : 'platforms', r.platforms.join(', '));
  if (r.subject !== undefined) kv('subject', manifestLine(r.subject));
  for (const [k, v] of Object.entries(r.annotations ?? {})) kv('annotation', `${k}=${v}`);
  if (r.referrers.length > 0 || r.referrersMissing > 0) {
    const missing = r.referrersMissing > 0 ? ` (${r.referrersMissing} that the repository cannot serve whole)` : '';
    kv('referrers', `${r.referrers.length}${missing}`);
    for (const x of r.referrers) {
      const parts = [x.digest, x.artifactType];
      if (x.tag !== undefined) parts.push(`tag ${x.tag}`);
      if (x.subject !== r.digest) parts.push(`of ${x.subject}`);
      out.push(`  ${parts.join('  ')}`);
    }
  }

  if (r.manifests.length > 0 || r.kind === 'docker-list' || r.kind === 'oci-index') {
    kv('manifests', String(r.manifests.length));
    for (const c of r.manifests) out.push(`  ${manifestLine(c)}`);
    return lines(out);
  }

  if (r.config !== undefined) kv('config', blobLine(r.config));
  else kv('config', 'none (schema1: summary from the top v1Compatibility)');
  const s = r.image;
  if (s === undefined) {
    if (r.imageNote !== undefined) kv('summary', `none: ${r.imageNote}`, '  ');
  } else {
    const platform = summaryPlatform(s);
    if (platform !== undefined) kv('platform', platform, '  ');
    else if (s.architecture !== undefined) kv('architecture', s.architecture, '  ');
    if (s.created !== undefined) kv('created', s.created, '  ');
    if (s.author !== undefined) kv('author', s.author, '  ');
    if (s.user !== undefined) kv('user', s.user, '  ');
    if (s.workingDir !== undefined) kv('workdir', s.workingDir, '  ');
    if (s.entrypoint !== undefined) kv('entrypoint', JSON.stringify(s.entrypoint), '  ');
    if (s.cmd !== undefined) kv('cmd', JSON.stringify(s.cmd), '  ');
    kv('env', `${s.env} variable${s.env === 1 ? '' : 's'}`, '  ');
    if (s.exposedPorts.length > 0) kv('ports', s.exposedPorts.join(', '), '  ');
    const labels = Object.entries(s.labels);
    kv('labels', String(labels.length), '  ');
    for (const [k, v] of labels) out.push(`    ${k}=${v}`);
    if (s.diffIds !== undefined) kv('diff_ids', String(s.diffIds), '  ');
    if (s.history !== undefined) kv('history', String(s.history), '  ');
  }
  kv('layers', `${r.layers.length}${r.kind.startsWith('schema1') ? ' (fsLayers, top layer first)' : ''}`);
  for (const l of r.layers) out.push(`  ${blobLine(l)}`);
  return lines(out);
}

/** The lines as text; a label, annotation or name holding a newline or escape sequence stays on its line. */
function lines(out: string[]): string {
  return `${out.map(escapeControl).join('\n')}\n`;
}

function blobLine(b: InspectedBlob): string {
  const parts = [b.digest, b.mediaType ?? '-', b.size === undefined ? '?' : formatBytes(b.size)];
  if (b.urls !== undefined) parts.push(`foreign (${b.urls.join(' ')})`);
  if (!b.present) parts.push(b.urls === undefined ? 'MISSING from storage' : 'not in storage');
  else if (!b.linked) parts.push('NOT LINKED in this repository (the registry answers 404)');
  return parts.join('  ');
}

function manifestLine(m: InspectedManifest): string {
  const parts = [m.digest, m.mediaType ?? '-'];
  if (m.platform !== undefined) parts.push(m.platform);
  if (m.artifactType !== undefined) parts.push(m.artifactType);
  parts.push(formatBytes(m.size));
  if (!m.present) parts.push('MISSING from storage');
  else if (!m.linked) parts.push('not linked in this repository');
  return parts.join('  ');
}
