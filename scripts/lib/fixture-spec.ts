/**
 * What the committed fixture registry (`fixtures/registry`) holds, as a list of pushes in
 * order. scripts/make-fixtures.ts pushes them to a real docker-registry with skopeo;
 * write-storage.ts writes the same storage directly. Everything is derived from fixed seeds.
 *
 * Coverage: nested names (4 levels), several tags per repository, two tags on one manifest,
 * one image in two repositories, base layers shared across images and formats, Docker schema2,
 * OCI, OCI without `mediaType`, a Docker manifest list and an OCI index (3 and 2 platforms),
 * an OCI index nesting another index, an overwritten tag, schema1 (converted by skopeo, stored
 * by the registry), an OCI artifact with `subject` under a cosign-style `.sig` tag, a repository
 * named after a registry host, and a repository nested inside another repository's directory.
 */
import { digestHex } from '../../src/digest.js';
import { MediaTypes } from '../../src/manifest.js';
import { makeArtifact, makeImage, makeIndex, makeLayer, type Manifest, type Platform } from './images.js';

/** One push of the fixture. */
export interface FixturePush {
  repo: string;
  tag: string;
  image: Manifest;
  /** Push with `skopeo copy --format v2s1`: the registry stores a schema1 manifest of its own making. */
  schema1?: boolean;
}

/** What a fixture ref points at. */
export type FixtureKind = 'docker' | 'oci' | 'docker-list' | 'oci-index' | 'schema1' | 'artifact';

/** One pushed ref as `fixtures/registry.json` records it. */
export interface FixtureRef {
  /** `repo:tag` */
  ref: string;
  repo: string;
  tag: string;
  /** The manifest digest the push stored (for schema1, the registry's digest of its own payload). */
  digest: string;
  kind: FixtureKind;
  /** Every blob the ref needs besides its own manifest: child manifests, configs, layers. */
  blobs: string[];
  /** A later push moved the tag away; the manifest is still there by digest. */
  overwritten: boolean;
}

/** The description of a built fixture registry, written to `fixtures/registry.json`. */
export interface FixtureManifest {
  refs: FixtureRef[];
}

const amd64: Platform = { os: 'linux', architecture: 'amd64' };
const arm64: Platform = { os: 'linux', architecture: 'arm64' };
const armv7: Platform = { os: 'linux', architecture: 'arm', variant: 'v7' };
const ppc64le: Platform = { os: 'linux', architecture: 'ppc64le' };

const alpine319Layer = makeLayer('alpine-3.19-rootfs');
const alpine320Layer = makeLayer('alpine-3.20-rootfs');
const busyboxLayer = makeLayer('busybox-1.36-rootfs');
const toolLayers = { amd64: makeLayer('tool-amd64'), arm64: makeLayer('tool-arm64'), armv7: makeLayer('tool-arm-v7') };

const alpine319 = makeImage({ format: 'docker', layers: [alpine319Layer], labels: { version: '3.19' } });
const alpine320 = makeImage({ format: 'docker', layers: [alpine320Layer], labels: { version: '3.20' } });
const appV1 = makeImage({ format: 'docker', layers: [alpine320Layer, makeLayer('app-v1')] });
const appV2 = makeImage({ format: 'docker', layers: [alpine320Layer, makeLayer('app-v2')] });
const appEdgeOld = makeImage({ format: 'docker', layers: [alpine320Layer, makeLayer('app-edge-1')] });
const appEdgeNew = makeImage({ format: 'docker', layers: [alpine320Layer, makeLayer('app-edge-2')] });
const appV1Signature = makeArtifact({
  subject: appV1,
  artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
  layerMediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
  payload: JSON.stringify({
    critical: {
      identity: { 'docker-reference': 'team/app' },
      image: { 'docker-manifest-digest': appV1.digest },
      type: 'cosign container image signature',
    },
    optional: null,
  }),
});
const workerLayer = makeLayer('worker-1.0');
const worker10 = makeImage({ format: 'oci', layers: [alpine320Layer, workerLayer] });
const worker11 = makeImage({ format: 'oci', layers: [alpine320Layer, workerLayer, makeLayer('worker-1.1')] });
const busybox = makeImage({ format: 'oci', layers: [busyboxLayer] });
const noMediaType = makeImage({ format: 'oci-no-mediatype', layers: [busyboxLayer, makeLayer('nomediatype-tool')] });
const toolList = makeIndex({
  format: 'docker',
  children: [
    makeImage({ format: 'docker', layers: [toolLayers.amd64], platform: amd64 }),
    makeImage({ format: 'docker', layers: [toolLayers.arm64], platform: arm64 }),
    makeImage({ format: 'docker', layers: [toolLayers.armv7], platform: armv7 }),
  ],
});
const toolIndex = makeIndex({
  format: 'oci',
  children: [
    makeImage({ format: 'oci', layers: [toolLayers.amd64], platform: amd64 }),
    makeImage({ format: 'oci', layers: [toolLayers.arm64], platform: arm64 }),
  ],
});
const toolNested = makeIndex({
  format: 'oci',
  children: [toolIndex, makeImage({ format: 'oci', layers: [makeLayer('tool-ppc64le')], platform: ppc64le })],
});
const legacy = makeImage({ format: 'docker', layers: [alpine319Layer, makeLayer('legacy-app')] });

/** Every push of the fixture, in push order (grouped by repository). */
export const FIXTURE_PUSHES: readonly FixturePush[] = [
  { repo: 'team/platform/base/alpine', tag: '3.19', image: alpine319 },
  { repo: 'team/platform/base/alpine', tag: '3.20', image: alpine320 },
  { repo: 'team/platform/base/alpine', tag: 'latest', image: alpine320 },
  { repo: 'team/app', tag: 'v1', image: appV1 },
  { repo: 'team/app', tag: 'v2', image: appV2 },
  { repo: 'team/app', tag: 'edge', image: appEdgeOld },
  { repo: 'team/app', tag: 'edge', image: appEdgeNew },
  { repo: 'team/app', tag: `sha256-${digestHex(appV1.digest)}.sig`, image: appV1Signature },
  { repo: 'team/app/worker', tag: '1.0', image: worker10 },
  { repo: 'team/app/worker', tag: '1.1', image: worker11 },
  { repo: 'library/busybox', tag: '1.36', image: busybox },
  { repo: 'library/busybox', tag: 'latest', image: busybox },
  { repo: 'mirror.example.com/library/busybox', tag: '1.36', image: busybox },
  { repo: 'tools/nomediatype', tag: '1.0', image: noMediaType },
  { repo: 'multiarch/tool', tag: '1.0', image: toolList },
  { repo: 'multiarch/tool', tag: '1.0-oci', image: toolIndex },
  { repo: 'multiarch/tool', tag: 'nested', image: toolNested },
  { repo: 'legacy/app', tag: '1.0', image: legacy, schema1: true },
];

/** The kind of manifest a push leaves in the registry. */
export function fixtureKind(push: FixturePush): FixtureKind {
  const m = push.image;
  if (push.schema1 === true) return 'schema1';
  if (m.kind === 'index') return m.mediaType === MediaTypes.dockerManifestList ? 'docker-list' : 'oci-index';
  if (m.artifactType !== undefined) return 'artifact';
  return m.mediaType === MediaTypes.dockerManifest ? 'docker' : 'oci';
}
