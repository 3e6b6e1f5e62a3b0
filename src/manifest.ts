/**
 * Manifests parsed by media type, never grepped. A parsed manifest keeps its exact bytes
 * (the digest is over them; regfs never re-serialises JSON it stores) next to what regfs
 * needs from it: the blobs it references and, for an index, its children.
 *
 * Detection follows the registry: `schemaVersion` 1 is schema1 (signed if it carries
 * `signatures`); `schemaVersion` 2 goes by `mediaType`, and without one it is an OCI index
 * if it decodes as one with a `manifests` array, else an OCI image manifest.
 */
import { quote, RegfsError } from './errors.js';
import { digestOf, parseDigest, digestAlgorithm, type Digest } from './digest.js';
import { foldKey, goDecode, parseJson, sliceItems, type GoType, type JsonValue } from './gojson.js';

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

/**
 * How deep indexes may nest: the top manifest is at depth 0 and an index's children one
 * deeper, so an image manifest may sit at most MAX_INDEX_DEPTH levels below the top (a chain
 * of MAX_INDEX_DEPTH indexes above it). Real images nest one level, rarely two; regfs walks
 * indexes with a worklist, never by recursion, and refuses a deeper chain (or a longer path
 * through shared children) as INDEX_TOO_DEEP, so no input can make a walk run without end.
 */
export const MAX_INDEX_DEPTH = 16;

/** The error for an index nested deeper than MAX_INDEX_DEPTH (or with a longer path below it). */
export function indexTooDeep(d: Digest, path?: string): RegfsError {
  return new RegfsError('INDEX_TOO_DEEP', `index ${d} nests indexes more than ${MAX_INDEX_DEPTH} levels deep, regfs's limit (MAX_INDEX_DEPTH)`, { path, digest: d });
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

// The structs docker-registry 2.8.2 decodes a stored manifest into (manifest/versioned.go,
// blobs.go Descriptor, schema2, ocischema, manifestlist, schema1), as Go types.
const S: GoType = { k: 'string' };
const INT: GoType = { k: 'int' };
const strings: GoType = { k: 'slice', elem: S };
const struct = (fields: Record<string, GoType>): Extract<GoType, { k: 'struct' }> => ({ k: 'struct', fields });
const VERSIONED = { schemaVersion: INT, mediaType: S };
const PLATFORM = struct({ architecture: S, os: S, 'os.version': S, 'os.features': strings, variant: S });
const DESCRIPTOR = struct({ mediaType: S, size: INT, digest: S, urls: strings, annotations: { k: 'map', elem: S }, platform: { k: 'ptr', elem: PLATFORM } });
const MANIFEST_DESCRIPTOR = struct({ ...DESCRIPTOR.fields, platform: struct({ ...PLATFORM.fields, features: strings }) });
const GO_TYPES = {
  versioned: struct(VERSIONED),
  schema2: struct({ ...VERSIONED, config: DESCRIPTOR, layers: { k: 'slice', elem: DESCRIPTOR } }),
  oci: struct({ ...VERSIONED, config: DESCRIPTOR, layers: { k: 'slice', elem: DESCRIPTOR }, annotations: { k: 'map', elem: S } }),
  list: struct({ ...VERSIONED, manifests: { k: 'slice', elem: MANIFEST_DESCRIPTOR } }),
  schema1: struct({ ...VERSIONED, name: S, tag: S, architecture: S, fsLayers: { k: 'slice', elem: struct({ blobSum: S }) }, history: { k: 'slice', elem: struct({ v1Compatibility: S }) } }),
};

type GoStruct = Record<string, unknown>;

/**
 * Parse manifest bytes without checking them against a digest (the caller did, or computes
 * it). The document is read as docker-registry 2.8.2 reads a stored manifest to serve it
 * (manifeststore.go Get), with Go's encoding/json (./gojson.ts): `schemaVersion` and
 * `mediaType` pick the struct, keys match fields case-insensitively, duplicate keys are
 * decoded in order into the same field (the last scalar wins, objects and arrays merge), and
 * a value of the wrong type anywhere in those structs makes the manifest one the registry
 * cannot serve (MANIFEST_INVALID), as does a byte order mark or trailing bytes.
 */
export function parseManifestContent(raw: Buffer, digest: Digest, where: string): Manifest {
  const invalid = (why: string): RegfsError =>
    new RegfsError('MANIFEST_INVALID', `manifest "${where}" (${digest}) ${why}`, { path: where, digest });
  let doc: JsonValue;
  try {
    doc = parseJson(raw.toString('utf8'));
  } catch (err) {
    throw invalid(`is not JSON: ${(err as Error).message}`);
  }
  if (doc.t !== 'object') throw invalid('is not a JSON object');
  const as = (type: Extract<GoType, { k: 'struct' }>, what: string): GoStruct => {
    const { value: v, errors } = goDecode(doc, type) as { value: GoStruct; errors: string[] };
    if (errors.length > 0) throw invalid(`cannot be decoded as ${what} (the registry cannot serve it): ${errors[0]}`);
    return v;
  };
  const versioned = as(GO_TYPES.versioned, 'a manifest');
  const mediaType = versioned['mediaType'] as string;
  const base = { raw, digest, config: undefined, layers: [], manifests: [], subject: undefined, artifactType: undefined };

  if (versioned['schemaVersion'] === 1n) {
    if (mediaType !== '' && mediaType !== 'application/json' && mediaType !== MediaTypes.schema1 && mediaType !== MediaTypes.schema1Signed) {
      throw invalid(`has schemaVersion 1 and unsupported media type ${quote(String(mediaType))}`);
    }
    const signed = lookup(doc, 'signatures') !== undefined;
    const fsLayers = sliceItems(as(GO_TYPES.schema1, 'a schema1 manifest')['fsLayers']) as GoStruct[];
    if (fsLayers.length === 0) throw invalid('is schema1 without fsLayers');
    const seen = new Set<string>();
    const layers: Descriptor[] = [];
    for (const [i, l] of fsLayers.entries()) {
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
  if (versioned['schemaVersion'] !== 2n) throw invalid(`has unsupported schemaVersion ${quote(String(versioned['schemaVersion']))}`);

  let kind: ManifestKind;
  let m: GoStruct;
  switch (mediaType) {
    case MediaTypes.dockerManifest:
      [kind, m] = ['docker', as(GO_TYPES.schema2, 'a Docker image manifest')];
      break;
    case MediaTypes.dockerManifestList:
      [kind, m] = ['docker-list', as(GO_TYPES.list, 'a manifest list')];
      break;
    case MediaTypes.ociManifest:
      [kind, m] = ['oci', as(GO_TYPES.oci, 'an OCI image manifest')];
      break;
    case MediaTypes.ociIndex:
      [kind, m] = ['oci-index', as(GO_TYPES.list, 'an OCI index')];
      break;
    case '': {
      // As the registry does: an index if it decodes as one with a manifests array, else an
      // OCI image manifest.
      const { value, errors } = goDecode(doc, GO_TYPES.list);
      const list = value as GoStruct;
      if (errors.length === 0 && list['manifests'] !== null) [kind, m] = ['oci-index', list];
      else [kind, m] = ['oci', as(GO_TYPES.oci, 'an OCI image manifest (it has no mediaType and no manifests array)')];
      break;
    }
    default:
      throw invalid(`has unsupported media type ${quote(String(mediaType))}`);
  }
  // subject and artifactType are not in 2.8's structs: the registry stores and serves a
  // manifest whatever they hold, so they are read leniently and never followed.
  const subjectValue = lookup(doc, 'subject');
  const subject = subjectValue === undefined ? undefined : lenient(() => toDescriptor(decodeLenient(subjectValue, DESCRIPTOR), 'subject', invalid));
  const artifactValue = lookup(doc, 'artifactType');
  const artifactType = artifactValue?.t === 'string' ? artifactValue.v : undefined;
  const declared = mediaType === '' ? (kind === 'oci' ? MediaTypes.ociManifest : MediaTypes.ociIndex) : mediaType;

  if (isIndexKind(kind)) {
    return {
      ...base,
      kind,
      mediaType: declared,
      manifests: (sliceItems(m['manifests']) as GoStruct[]).map((c, i) => toDescriptor(c, `manifests[${i}]`, invalid, childArtifactType(doc, i))),
      subject,
      artifactType,
    };
  }
  return {
    ...base,
    kind,
    mediaType: declared,
    config: toDescriptor(m['config'] as GoStruct, 'config', invalid),
    // No layers is an empty list, as Go's nil slice is to the registry.
    layers: (sliceItems(m['layers']) as GoStruct[]).map((l, i) => toDescriptor(l, `layers[${i}]`, invalid)),
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

export { formatPlatform } from './platform.js';

type Invalid = (why: string) => RegfsError;

function lenient<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

/** The value of the last key of an object that Go would match to a field `name` (undefined if none). */
function lookup(doc: JsonValue, name: string): JsonValue | undefined {
  if (doc.t !== 'object') return undefined;
  let last: JsonValue | undefined;
  for (const [k, v] of doc.entries) if (foldKey(k) === foldKey(name)) last = v;
  return last;
}

/** Decode a value into a Go type, undefined if Go would refuse it. */
function decodeLenient(v: JsonValue, type: Extract<GoType, { k: 'struct' }>): GoStruct {
  const { value, errors } = goDecode(v, type);
  if (errors.length > 0) throw new Error(errors[0]);
  return value as GoStruct;
}

/** An index child's artifactType (not in 2.8's structs): read leniently from the last manifests array. */
function childArtifactType(doc: JsonValue, i: number): string | undefined {
  const list = lookup(doc, 'manifests');
  const child = list?.t === 'array' ? list.items[i] : undefined;
  const v = child === undefined ? undefined : lookup(child, 'artifactType');
  return v?.t === 'string' ? v.v : undefined;
}

function descriptorDigest(v: unknown, field: string, invalid: Invalid): Digest {
  if (typeof v !== 'string' || v === '') throw invalid(`has no digest in ${field}`);
  try {
    return parseDigest(v);
  } catch (err) {
    throw invalid(`has a bad digest in ${field}: ${(err as Error).message}`);
  }
}

/** A descriptor from its decoded Go struct (a v1.Platform pointer, or an index child's PlatformSpec). */
function toDescriptor(v: GoStruct, field: string, invalid: Invalid, artifactType?: string): Descriptor {
  const size = v['size'] as bigint;
  // Go holds any int64; regfs refuses sizes it cannot check (no real blob is near 2^53 bytes).
  if (size < 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`has a bad size in ${field}: ${size}`);
  const urls = sliceItems(v['urls']) as string[];
  const p = v['platform'] as GoStruct | null;
  const platform =
    p === null || (p['os'] === '' && p['architecture'] === '' && p['variant'] === '')
      ? undefined
      : { os: p['os'] as string, architecture: p['architecture'] as string, variant: p['variant'] === '' ? undefined : (p['variant'] as string) };
  return {
    mediaType: v['mediaType'] === '' ? undefined : (v['mediaType'] as string),
    digest: descriptorDigest(v['digest'], field, invalid),
    size: Number(size),
    urls: urls.length === 0 ? undefined : urls,
    platform,
    artifactType,
  };
}
