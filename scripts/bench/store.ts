/**
 * The benchmark's synthetic registry store: by default 3,000 repositories, 15,000 tags and
 * about 40,000 blobs (shared base layers, 5% multi-platform indexes), written without a
 * registry by the pure writer that test/fixtures.test.ts proves equal to docker-registry's
 * own output (and test/bench.test.ts serves a small one through the real registry).
 *
 * Per repository: 4 images on tags v1..v4 (each a config, one of 40 shared base layers and
 * one layer of its own) and `latest` on v4; every 20th repository also gets an OCI index
 * `multi` of two platform images. Deterministic: the same scale gives the same digests.
 * Written in batches, so the 10x store does not have to fit in memory at once.
 */
import { makeArtifact, makeImage, makeIndex, makeLayer, type Layer, type Manifest } from '../lib/images.js';
import { writeStorage, type StoragePush } from '../lib/write-storage.js';

export interface StoreShape {
  repositories: number;
  /** Tags per repository, before indexes: v1..v(n-1) and latest (= the last). */
  tagsPerRepo: number;
  baseLayers: number;
  /** Every n-th repository gets a two-platform index. */
  indexEvery: number;
}

/** 3,000 repositories, 15,000 tags, about 40,000 blobs. */
export const DEFAULT_SHAPE: StoreShape = { repositories: 3000, tagsPerRepo: 5, baseLayers: 40, indexEvery: 20 };

/** The shape times `scale` repositories. */
export function scaled(scale: number): StoreShape {
  return { ...DEFAULT_SHAPE, repositories: Math.round(DEFAULT_SHAPE.repositories * scale) };
}

/** A repository's name: spread over nested namespaces like a real registry. */
export function repoName(i: number): string {
  return `team${i % 37}/svc${Math.floor(i / 37) % 50}/app${i}`;
}

/** Every push of repository `i`. */
export function repoPushes(i: number, shape: StoreShape, bases: Layer[]): StoragePush[] {
  const repo = repoName(i);
  const pushes: StoragePush[] = [];
  let last: Manifest | undefined;
  for (let t = 1; t < shape.tagsPerRepo; t++) {
    const image = makeImage({ format: t % 2 === 0 ? 'oci' : 'docker', layers: [bases[(i + t) % bases.length]!, makeLayer(`${repo}:v${t}`)], labels: { repo, tag: `v${t}` } });
    pushes.push({ repo, tag: `v${t}`, image });
    last = image;
  }
  pushes.push({ repo, tag: 'latest', image: last! });
  if (i % shape.indexEvery === 0) {
    const children = (['amd64', 'arm64'] as const).map((architecture) =>
      makeImage({ format: 'oci', layers: [bases[i % bases.length]!, makeLayer(`${repo}:multi:${architecture}`)], platform: { os: 'linux', architecture } }),
    );
    pushes.push({ repo, tag: 'multi', image: makeIndex({ format: 'oci', children }) });
  }
  return pushes;
}

/** Write the store under `<root>/docker/registry/v2`; returns every `repo:tag`. */
export async function writeStore(root: string, shape: StoreShape, onBatch?: (done: number) => void): Promise<string[]> {
  const bases = Array.from({ length: shape.baseLayers }, (_, i) => makeLayer(`base-${i}`));
  const refs: string[] = [];
  const batch = 500;
  for (let start = 0; start < shape.repositories; start += batch) {
    const pushes: StoragePush[] = [];
    for (let i = start; i < Math.min(start + batch, shape.repositories); i++) pushes.push(...repoPushes(i, shape, bases));
    await writeStorage(root, pushes);
    for (const p of pushes) refs.push(`${p.repo}:${p.tag}`);
    onBatch?.(Math.min(start + batch, shape.repositories));
  }
  return refs;
}

/**
 * A store of `images` images with one layer of `layerBytes` each (pseudo-random, so it does
 * not compress): for measuring hashing, where the blob bytes matter, not their number.
 */
export async function writeBigStore(root: string, images: number, layerBytes: number): Promise<string[]> {
  const pushes: StoragePush[] = [];
  for (let i = 0; i < images; i++) {
    const repo = `big/app${i}`;
    pushes.push({ repo, tag: 'v1', image: makeImage({ format: 'docker', layers: [makeLayer(`${repo}:v1`, layerBytes)] }) });
  }
  await writeStorage(root, pushes);
  return pushes.map((p) => `${p.repo}:${p.tag}`);
}

/**
 * As writeBigStore, one image at a time, so that a store of several GiB never has more than
 * one layer in memory; repositories `huge/app<i>`.
 */
export async function writeHugeStore(root: string, images: number, layerBytes: number): Promise<string[]> {
  const refs: string[] = [];
  for (let i = 0; i < images; i++) {
    const repo = `huge/app${i}`;
    await writeStorage(root, [{ repo, tag: 'v1', image: makeImage({ format: 'docker', layers: [makeLayer(`${repo}:v1`, layerBytes)] }) }]);
    refs.push(`${repo}:v1`);
  }
  return refs;
}

/** The repository of the many-tags store. */
export const MANY_TAGS_REPO = 'many/tags';

/**
 * One repository, `many/tags`, with `tags` tags (`t000000` …) over `images` distinct images
 * (tag i points at image i mod `images`): for `ls` and a whole-repository extract, whose
 * per-tag cost and sorting it measures.
 */
export async function writeManyTagsStore(root: string, tags: number, images: number): Promise<void> {
  const base = makeLayer('many-tags-base');
  const made = Array.from({ length: images }, (_, i) => makeImage({ format: 'oci', layers: [base], labels: { image: String(i) } }));
  const batch = 20_000;
  for (let start = 0; start < tags; start += batch) {
    const pushes: StoragePush[] = [];
    for (let i = start; i < Math.min(tags, start + batch); i++) pushes.push({ repo: MANY_TAGS_REPO, tag: `t${String(i).padStart(6, '0')}`, image: made[i % images]! });
    await writeStorage(root, pushes);
  }
}

/** The reference of the wide-index store's index. */
export const WIDE_INDEX_REF = 'wide/index:v1';

/**
 * One repository, `wide/index`, whose tag `v1` is an OCI index of `children` images (each its
 * own config, one shared layer; platforms linux/<n>): for an index far wider than real ones.
 */
export async function writeWideIndexStore(root: string, children: number): Promise<void> {
  const base = makeLayer('wide-index-base');
  const images = Array.from({ length: children }, (_, i) =>
    makeImage({ format: 'oci', layers: [base], platform: { os: 'linux', architecture: `arch${i}` }, labels: { child: String(i) } }),
  );
  await writeStorage(root, [{ repo: 'wide/index', tag: 'v1', image: makeIndex({ format: 'oci', children: images }) }]);
}

/** The signed store's `repo:tag` of image `i`: ten images a repository. */
export function signedRef(i: number): string {
  return `signed/app${Math.floor(i / 10)}:v${i % 10}`;
}

/**
 * `images` images, ten a repository, every one signed: a `sha256-<hex>.sig` tag on a
 * signature that names the image as its `subject`, so both the tag rule and the subject scan
 * find it: for extract --with-referrers beside the same extract without.
 */
export async function writeSignedStore(root: string, images: number): Promise<void> {
  const base = makeLayer('signed-base');
  const pushes: StoragePush[] = [];
  for (let i = 0; i < images; i++) {
    const [repo, tag] = signedRef(i).split(':') as [string, string];
    const image = makeImage({ format: 'oci', layers: [base, makeLayer(signedRef(i))] });
    pushes.push({ repo, tag, image });
    const sig = makeArtifact({ subject: image, artifactType: 'application/vnd.dev.cosign.simplesigning.v1+json', layerMediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', payload: `{"critical":{"image":{"docker-manifest-digest":"${image.digest}"}}}` });
    pushes.push({ repo, tag: `${image.digest.replace(':', '-')}.sig`, image: sig });
  }
  await writeStorage(root, pushes);
}
