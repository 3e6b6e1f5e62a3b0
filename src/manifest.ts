/**
 * Manifests parsed by media type, never grepped. A parsed manifest keeps its exact bytes
 * (the digest is over them; regfs never re-serialises JSON it stores) next to what regfs
 * needs from it: the blobs it references and, for an index, its children.
 *
 * Detection follows the registry: `schemaVersion` 1 is schema1 (signed if it carries
 * `signatures`); `schemaVersion` 2 goes by `mediaType`, and without one by whether
 * `manifests` (an OCI index) or `config` (an OCI manifest) is present.
 */
import { quote, RegfsError } from './errors.js';
import { digestOf, parseDigest, digestAlgorithm, type Digest } from './digest.js';

export const MediaTypes = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  schema1: 'application/vnd.docker.distribution.manifest.v1+json',
  schema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

/** What kind of manifest a document is. */
export type ManifestKind = 'docker' | 'docker-list' | 'oci' | 'oci-index' | 'schema1' | 'schema1-signed';

/** A platform as an index descriptor gives it. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string | undefined;
}

/** A content descriptor: what a manifest says about a blob or a child manifest. */
export interface Descriptor {
  mediaType: string | undefined;
  digest: Digest;
  size: number;
  /** Foreign or nondistributable content: the blob may be absent from storage. */
  urls: string[] | undefined;
  platform: Platform | undefined;
  artifactType: string | undefined;
}

/** A manifest, its exact bytes and what it references. */
export interface Manifest {
  raw: Buffer;
  digest: Digest;
  kind: ManifestKind;
  /** The media type the document declares, or the one detection gave it. */
  mediaType: string;
  /** Image manifests: the config blob (schema1 has none). */
  config: Descriptor | undefined;
  /** Image manifests: the layers (schema1: `fsLayers[].blobSum`, top layer first, duplicates removed). */
  layers: Descriptor[];
  /** Indexes: the child manifests. */
  manifests: Descriptor[];
  /** OCI 1.1: the manifest this one refers to (a weak reference, not followed). */
  subject: Descriptor | undefined;
  artifactType: string | undefined;
}

/** True for the kinds that hold child manifests. */
export function isIndexKind(kind: ManifestKind): boolean {
  return kind === 'docker-list' || kind === 'oci-index';
}

/**
 * Parse manifest bytes found under `digest`. The bytes must hash to that digest
 * (DIGEST_MISMATCH otherwise); they must be a manifest of a known type (MANIFEST_INVALID).
 * `where` names the file for messages.
 */
export function parseManifest(raw: Buffer, digest: Digest, where: string): Manifest {
  const actual = digestOf(raw, digestAlgorithm(digest));
  if (actual !== digest) {
    throw new RegfsError('DIGEST_MISMATCH', `manifest "${where}" does not match its digest: expected ${digest}, its bytes hash to ${actual}`, {
      path: where,
      digest,
    });
  }
  return parseManifestContent(raw, digest, where);
}

/** Parse manifest bytes without checking them against a digest (the caller did, or computes it). */
export function parseManifestContent(raw: Buffer, digest: Digest, where: string): Manifest {
  const invalid = (why: string): RegfsError =>
    new RegfsError('MANIFEST_INVALID', `manifest "${where}" (${digest}) ${why}`, { path: where, digest });
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw invalid(`is not JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw invalid('is not a JSON object');
  const base = { raw, digest, config: undefined, layers: [], manifests: [], subject: undefined, artifactType: undefined };
  const mediaType = optionalString(doc, 'mediaType', invalid);

  if (doc['schemaVersion'] === 1) {
    if (mediaType !== undefined && mediaType !== '' && mediaType !== 'application/json' && mediaType !== MediaTypes.schema1 && mediaType !== MediaTypes.schema1Signed) {
      throw invalid(`has schemaVersion 1 and unsupported media type ${quote(String(mediaType))}`);
    }
    const signed = 'signatures' in doc;
    const fsLayers = doc['fsLayers'];
    if (!Array.isArray(fsLayers) || fsLayers.length === 0) throw invalid('is schema1 without fsLayers');
    const seen = new Set<string>();
    const layers: Descriptor[] = [];
    for (const [i, l] of fsLayers.entries()) {
      if (!isObject(l) || typeof l['blobSum'] !== 'string') throw invalid(`has a bad fsLayers[${i}]`);
      const d = descriptorDigest(l['blobSum'], `fsLayers[${i}].blobSum`, invalid);
      if (seen.has(d)) continue;
      seen.add(d);
      // schema1 does not give sizes; -1 says "unknown".
      layers.push({ mediaType: undefined, digest: d, size: -1, urls: undefined, platform: undefined, artifactType: undefined });
    }
    return {
      ...base,
      kind: signed ? 'schema1-signed' : 'schema1',
      mediaType: signed ? MediaTypes.schema1Signed : MediaTypes.schema1,
      layers,
    };
  }
  if (doc['schemaVersion'] !== 2) throw invalid(`has unsupported schemaVersion ${quote(JSON.stringify(doc['schemaVersion']) ?? 'none')}`);

  let kind: ManifestKind;
  switch (mediaType) {
    case MediaTypes.dockerManifest:
      kind = 'docker';
      break;
    case MediaTypes.dockerManifestList:
      kind = 'docker-list';
      break;
    case MediaTypes.ociManifest:
      kind = 'oci';
      break;
    case MediaTypes.ociIndex:
      kind = 'oci-index';
      break;
    case undefined:
    case '':
      if ('manifests' in doc) kind = 'oci-index';
      else if ('config' in doc) kind = 'oci';
      else throw invalid('has no mediaType and neither config nor manifests');
      break;
    default:
      throw invalid(`has unsupported media type ${quote(String(mediaType))}`);
  }
  // subject and artifactType are never followed; the 2.8 registry stores and serves a
  // manifest whatever they hold, so an odd one is ignored rather than refused.
  const subject = lenient(() => parseDescriptor(doc['subject'], 'subject', invalid));
  const artifactType = typeof doc['artifactType'] === 'string' ? doc['artifactType'] : undefined;
  const declared = mediaType === undefined || mediaType === '' ? (kind === 'oci' ? MediaTypes.ociManifest : MediaTypes.ociIndex) : mediaType;

  if (isIndexKind(kind)) {
    const list = doc['manifests'];
    if (!Array.isArray(list)) throw invalid('is an index without a manifests array');
    return {
      ...base,
      kind,
      mediaType: declared,
      manifests: list.map((m, i) => parseDescriptor(m, `manifests[${i}]`, invalid)),
      subject,
      artifactType,
    };
  }
  // No layers is an empty list, as Go's nil slice is to the registry.
  const layers = doc['layers'] ?? [];
  if (!Array.isArray(layers)) throw invalid('has a layers field that is not an array');
  return {
    ...base,
    kind,
    mediaType: declared,
    config: parseDescriptor(doc['config'], 'config', invalid),
    layers: layers.map((l, i) => parseDescriptor(l, `layers[${i}]`, invalid)),
    subject,
    artifactType,
  };
}

/**
 * The blobs an image manifest references, config first, each once. Index children are not
 * blobs of the index: follow them with `Manifest.manifests`.
 */
export function referencedBlobs(m: Manifest): Descriptor[] {
  const out: Descriptor[] = [];
  const seen = new Set<string>();
  for (const d of m.config === undefined ? m.layers : [m.config, ...m.layers]) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    out.push(d);
  }
  return out;
}

/** `os/architecture[/variant]` */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant === undefined ? '' : `/${p.variant}`}`;
}

type Invalid = (why: string) => RegfsError;

function lenient<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalString(doc: Record<string, unknown>, key: string, invalid: Invalid): string | undefined {
  const v = doc[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalid(`has a non-string ${key}`);
  return v;
}

function descriptorDigest(v: unknown, field: string, invalid: Invalid): Digest {
  if (typeof v !== 'string') throw invalid(`has no digest in ${field}`);
  try {
    return parseDigest(v);
  } catch (err) {
    throw invalid(`has a bad digest in ${field}: ${(err as Error).message}`);
  }
}

function parseDescriptor(v: unknown, field: string, invalid: Invalid): Descriptor {
  if (!isObject(v)) throw invalid(`has a bad ${field}: not an object`);
  const size = v['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`has a bad size in ${field}`);
  const urls = v['urls'];
  if (urls !== undefined && (!Array.isArray(urls) || !urls.every((u) => typeof u === 'string'))) throw invalid(`has bad urls in ${field}`);
  let platform: Platform | undefined;
  const p = v['platform'];
  if (isObject(p) && typeof p['os'] === 'string' && typeof p['architecture'] === 'string') {
    platform = { os: p['os'], architecture: p['architecture'], variant: typeof p['variant'] === 'string' ? p['variant'] : undefined };
  }
  return {
    mediaType: optionalString(v, 'mediaType', invalid),
    digest: descriptorDigest(v['digest'], field, invalid),
    size,
    urls: urls === undefined || urls.length === 0 ? undefined : (urls as string[]),
    platform,
    artifactType: optionalString(v, 'artifactType', invalid),
  };
}
