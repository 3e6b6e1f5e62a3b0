/**
 * A deterministic, in-memory generator of synthetic images: gzip'd tar layers, image configs,
 * Docker schema2 and OCI manifests, manifest lists, OCI indexes and OCI artifacts. The same
 * input gives the same bytes, so the same digests, on every run and every machine.
 *
 * Layers are gzip streams at compression level 0 (stored deflate blocks): a gzip compressor's
 * output depends on the zlib build (Node's bundled Chromium zlib picks its hash by CPU
 * features), stored blocks do not. They are still genuine `tar+gzip` blobs.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { digestOf, type Digest } from '../../src/digest.js';
import { MediaTypes } from '../../src/manifest.js';


/** Content-addressed bytes. */
export interface Blob {
  bytes: Buffer;
  digest: Digest;
  size: number;
}

/** A gzip'd tar layer and the digest of its uncompressed tar. */
export interface Layer extends Blob {
  diffId: Digest;
}

/** An OS/architecture pair as manifests and configs spell it. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** How an image manifest is written: Docker schema2, OCI, or OCI without the `mediaType` field. */
export type ImageFormat = 'docker' | 'oci' | 'oci-no-mediatype';

/** An image manifest (or an OCI artifact) with its config and layer blobs. */
export interface Image extends Blob {
  kind: 'image';
  mediaType: string;
  platform?: Platform;
  /** Set for an OCI artifact made by {@link makeArtifact}. */
  artifactType?: string;
  config: Blob;
  layers: Blob[];
}

/** A Docker manifest list or an OCI index with its children. */
export interface Index extends Blob {
  kind: 'index';
  mediaType: string;
  children: Manifest[];
}

/** Anything a tag can point at. */
export type Manifest = Image | Index;

/** The fixed creation time used unless a caller gives one. */
export const DEFAULT_CREATED = '2024-01-01T00:00:00Z';

/** Wrap bytes as a content-addressed blob. */
export function blobOf(bytes: Buffer | string): Blob {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return { bytes: buf, digest: digestOf(buf), size: buf.length };
}

/** A gzip'd tar with two small files whose names and content derive from `seed`. */
export function makeLayer(seed: string, payloadBytes = 768): Layer {
  const dir = `regfs/${seed.replace(/[^A-Za-z0-9._-]/g, '_')}`;
  const tar = Buffer.concat([
    tarFile(`${dir}/README`, Buffer.from(`synthetic layer ${seed}\n`)),
    tarFile(`${dir}/data.bin`, payloadBytes === 768 ? seededBytes(seed, 768) : keystream(seed, payloadBytes)),
    Buffer.alloc(1024),
  ]);
  const gz = gzipSync(tar, { level: 0 });
  gz[9] = 3; // gzip OS byte: Unix, whatever platform zlib was built for (mtime bytes are already 0)
  return { ...blobOf(gz), diffId: digestOf(tar) };
}

/** An image manifest plus its config, in the given format. */
export function makeImage(opts: {
  format: ImageFormat;
  layers: Layer[];
  platform?: Platform;
  created?: string;
  labels?: Record<string, string>;
}): Image {
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const created = opts.created ?? DEFAULT_CREATED;
  const docker = opts.format === 'docker';
  const config = blobOf(
    JSON.stringify({
      architecture: platform.architecture,
      ...(platform.variant === undefined ? {} : { variant: platform.variant }),
      os: platform.os,
      created,
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Cmd: ['/bin/sh'],
        ...(opts.labels === undefined ? {} : { Labels: opts.labels }),
      },
      rootfs: { type: 'layers', diff_ids: opts.layers.map((l) => l.diffId) },
      history: opts.layers.map((l) => ({ created, created_by: `/bin/sh -c #(nop) ADD file:${l.diffId.slice(7, 19)} in /` })),
    }),
  );
  const mediaType = docker ? MediaTypes.dockerManifest : MediaTypes.ociManifest;
  const layerType = docker ? MediaTypes.dockerLayer : MediaTypes.ociLayer;
  const manifest = {
    schemaVersion: 2,
    ...(opts.format === 'oci-no-mediatype' ? {} : { mediaType }),
    config: descriptor(docker ? MediaTypes.dockerConfig : MediaTypes.ociConfig, config),
    layers: opts.layers.map((l) => descriptor(layerType, l)),
  };
  // Docker writes manifests indented by three spaces; OCI tools usually write compact JSON.
  const bytes = docker ? JSON.stringify(manifest, null, 3) : JSON.stringify(manifest);
  return { kind: 'image', mediaType, platform, config, layers: [...opts.layers], ...blobOf(bytes) };
}

/** A Docker manifest list (Docker image children only) or an OCI index (may nest). */
export function makeIndex(opts: { format: 'docker' | 'oci'; children: Manifest[] }): Index {
  const docker = opts.format === 'docker';
  if (docker && opts.children.some((c) => c.mediaType !== MediaTypes.dockerManifest)) {
    throw new Error('a Docker manifest list holds Docker schema2 manifests only');
  }
  const mediaType = docker ? MediaTypes.dockerManifestList : MediaTypes.ociIndex;
  const index = {
    schemaVersion: 2,
    mediaType,
    manifests: opts.children.map((c) => ({
      ...descriptor(c.mediaType, c),
      ...(c.kind === 'image' && c.platform !== undefined ? { platform: platformField(c.platform) } : {}),
    })),
  };
  const bytes = docker ? JSON.stringify(index, null, 3) : JSON.stringify(index);
  return { kind: 'index', mediaType, children: [...opts.children], ...blobOf(bytes) };
}

/** An OCI 1.1 artifact: empty config, one layer holding `payload`, and a `subject`. */
export function makeArtifact(opts: {
  subject: Manifest;
  artifactType: string;
  layerMediaType: string;
  payload: string;
  created?: string;
}): Image {
  const config = blobOf('{}');
  const layer = blobOf(opts.payload);
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaTypes.ociManifest,
    artifactType: opts.artifactType,
    config: descriptor(MediaTypes.ociEmpty, config),
    layers: [descriptor(opts.layerMediaType, layer)],
    subject: descriptor(opts.subject.mediaType, opts.subject),
    annotations: { 'org.opencontainers.image.created': opts.created ?? DEFAULT_CREATED },
  };
  const bytes = JSON.stringify(manifest);
  return { kind: 'image', mediaType: MediaTypes.ociManifest, artifactType: opts.artifactType, config, layers: [layer], ...blobOf(bytes) };
}

/** The manifest and every manifest below it (index children, recursively), each once, parents first. */
export function manifestsOf(m: Manifest): Manifest[] {
  const seen = new Map<Digest, Manifest>();
  const visit = (x: Manifest): void => {
    if (seen.has(x.digest)) return;
    seen.set(x.digest, x);
    if (x.kind === 'index') x.children.forEach(visit);
  };
  visit(m);
  return [...seen.values()];
}

/** The config and layer blobs of every image manifest in `m`, each once. */
export function blobsOf(m: Manifest): Blob[] {
  const seen = new Map<Digest, Blob>();
  for (const x of manifestsOf(m)) {
    if (x.kind === 'image') for (const b of [x.config, ...x.layers]) seen.set(b.digest, b);
  }
  return [...seen.values()];
}

/** Every blob digest `m` needs besides its own manifest: child manifests, configs and layers. */
export function requiredDigests(m: Manifest): Digest[] {
  return [...manifestsOf(m).slice(1), ...blobsOf(m)].map((b) => b.digest);
}

function descriptor(mediaType: string, b: Blob): { mediaType: string; digest: Digest; size: number } {
  return { mediaType, digest: b.digest, size: b.size };
}

function platformField(p: Platform): Platform {
  return { architecture: p.architecture, os: p.os, ...(p.variant === undefined ? {} : { variant: p.variant }) };
}

/** `n` bytes of a sha256 counter stream seeded by `seed`. */
function seededBytes(seed: string, n: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 32 < n; i++) out.push(createHash('sha256').update(`${seed}\0${i}`).digest());
  return Buffer.concat(out).subarray(0, n);
}

/** One ustar entry for a regular file: mode 0644, uid/gid 0, mtime 0, padded to 512 bytes. */
/** `n` pseudo-random bytes from the seed, fast (AES-128-CTR keystream), for large layers. */
function keystream(seed: string, n: number): Buffer {
  const key = createHash('sha256').update(`key:${seed}`).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return Buffer.concat([cipher.update(Buffer.alloc(n)), cipher.final()]);
}

function tarFile(name: string, content: Buffer): Buffer {
  if (Buffer.byteLength(name) > 99) throw new Error(`tar name too long: ${name}`);
  const h = Buffer.alloc(512);
  h.write(name, 0, 'utf8');
  const octal = (off: number, len: number, v: number): void => {
    h.write(`${v.toString(8).padStart(len - 1, '0')}\0`, off, len, 'latin1');
  };
  octal(100, 8, 0o644); // mode
  octal(108, 8, 0); // uid
  octal(116, 8, 0); // gid
  octal(124, 12, content.length); // size
  octal(136, 12, 0); // mtime
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  h.write('0', 156, 'latin1'); // typeflag: regular file
  h.write('ustar\u000000', 257, 'latin1'); // magic + version
  h.write('root', 265, 'latin1'); // uname
  h.write('root', 297, 'latin1'); // gname
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([h, content, pad]);
}
