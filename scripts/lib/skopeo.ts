/**
 * Thin async wrappers over the `skopeo` CLI (1.9.3) for tests and fixtures. TLS verification is
 * turned off for every `docker://` side (the test registries speak plain HTTP on loopback), and
 * a failure's message carries skopeo's stderr.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseDigest, type Digest } from '../../src/digest.js';

/** Manifest formats `skopeo copy --format` converts to. */
export type SkopeoFormat = 'v2s2' | 'oci' | 'v2s1';

/** Options of {@link skopeoCopy}. */
export interface SkopeoCopyOptions {
  /** `--all`: copy every instance of a list or index. */
  all?: boolean;
  /** `--multi-arch index-only`: copy a list or index without its instances (they must already be there). */
  indexOnly?: boolean;
  /** `--format`: convert the manifest. Without it skopeo keeps the source's manifest (and `--preserve-digests` is set). */
  format?: SkopeoFormat;
}

/** `skopeo copy SRC DEST`; refs carry their transport (`dir:/x`, `docker://127.0.0.1:5000/a:b`). */
export async function skopeoCopy(src: string, dest: string, opts: SkopeoCopyOptions = {}): Promise<void> {
  await skopeo([
    'copy',
    '--quiet',
    ...(opts.all === true ? ['--all'] : []),
    ...(opts.indexOnly === true ? ['--multi-arch', 'index-only'] : []),
    ...(opts.format === undefined ? ['--preserve-digests'] : ['--format', opts.format]),
    ...(isDocker(src) ? ['--src-tls-verify=false'] : []),
    ...(isDocker(dest) ? ['--dest-tls-verify=false'] : []),
    src,
    dest,
  ]);
}

/** The manifest `ref` resolves to, byte for byte as served (an index stays an index). */
export async function skopeoInspectRaw(ref: string): Promise<Buffer> {
  return skopeo(['inspect', '--raw', ...(isDocker(ref) ? ['--tls-verify=false'] : []), ref]);
}

/**
 * The digest of the manifest `ref` resolves to, by `skopeo manifest-digest` over the raw bytes:
 * for an index that is the index's own digest, for schema1 the digest of the unsigned payload.
 */
export async function skopeoManifestDigestOf(ref: string): Promise<Digest> {
  const raw = await skopeoInspectRaw(ref);
  const dir = await mkdtemp(join(tmpdir(), 'regfs-skopeo-'));
  try {
    const file = join(dir, 'manifest.json');
    await writeFile(file, raw);
    return parseDigest((await skopeo(['manifest-digest', file])).toString('utf8').trim());
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Run `fn` up to `attempts` times, pausing `delayMs` between tries. For pushes to registry 2.8,
 * which now and then fails concurrent or repeated uploads of one blob (storage-formats.md §3.1).
 */
export async function withRetry<T>(fn: () => Promise<T>, opts: { attempts?: number; delayMs?: number } = {}): Promise<T> {
  const attempts = opts.attempts ?? 4;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, (opts.delayMs ?? 250) * i));
    }
  }
}

function isDocker(ref: string): boolean {
  return ref.startsWith('docker://');
}

async function skopeo(args: string[]): Promise<Buffer> {
  try {
    const { stdout } = await promisify(execFile)('skopeo', args, { encoding: 'buffer', maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    const stderr = e.stderr?.toString('utf8').trim() ?? '';
    throw new Error(`skopeo ${args.join(' ')} failed: ${stderr || e.message}`);
  }
}
