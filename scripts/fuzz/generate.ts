/**
 * The seeded generator of the differential harness: a small registry storage state built
 * through the real registry (docker-registry 2.8.2 on loopback, schema1 compatibility on).
 * A few repositories (nested names, blobs shared and mounted across them), a handful of pushes
 * (Docker schema2, OCI with and without `mediaType`, manifest lists, OCI indexes, nested
 * indexes, OCI artifacts with a subject, untagged pushes by digest, tags moved by later
 * pushes), about a quarter of them by skopeo (schema1 always by skopeo, `--format v2s1`), the
 * rest by {@link Pusher}; then, where enabled, manifests and index children deleted through
 * the API, an image whose layer is a pushed manifest's bytes, and pushes to a name with an
 * upper-case first component. The same seed and the same
 * switches give the same pushes in the same order.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Digest } from '../../src/digest.js';
import { blobOf, makeArtifact, makeImage, makeIndex, makeLayer, type Image, type Layer, type Manifest, type Platform } from '../lib/images.js';
import { startRegistry } from '../lib/registry-server.js';
import { skopeoCopy, withRetry } from '../lib/skopeo.js';
import { writeDirImage } from '../lib/write-dir.js';
import { Pusher } from './pusher.js';
import { shuffle, type Kinds } from './kinds.js';

/** One push or API delete, as the reproduction log shows it. */
export interface Step {
  op: 'push' | 'delete';
  repo: string;
  /** The tag pushed, or the digest pushed untagged or deleted. */
  ref: string;
  /** The manifest's digest as the registry stored it (known after the push, schema1 included). */
  digest: Digest;
  what: string;
  via: 'http' | 'skopeo';
}

/** What the generator did: every repository it pushed to and every step. */
export interface Generated {
  repos: string[];
  steps: Step[];
}

const REPO_POOL = ['app', 'team/web', 'team/web/cache', 'lib/base', 'mirror.example.com/lib/tool'];
const UPPER_REPO = 'Team/tools';
const TAGS = ['v1', 'v2', 'latest'];
const PLATFORMS: Platform[] = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
  { os: 'linux', architecture: 'arm', variant: 'v7' },
];
const SHAPES = ['docker', 'oci', 'oci-no-mediatype', 'docker-list', 'oci-index', 'nested-index', 'artifact', 'schema1'] as const;
type Shape = (typeof SHAPES)[number];

/** Build the state for `seed` in a fresh registry rooted at `root` (absent or empty). */
export async function generate(seed: number, root: string, kinds: Kinds, rand: () => number): Promise<Generated> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const pool = shuffle(REPO_POOL, rand);
  const repos = pool.slice(0, 2 + Math.floor(rand() * 2));
  if (kinds.has('upper-push')) repos.push(UPPER_REPO);
  const layers: Layer[] = Array.from({ length: 5 }, (_, i) => makeLayer(`fuzz-${seed}-${i}`, 200 + 37 * i));
  const pushed: Array<{ repo: string; m: Manifest }> = [];
  const steps: Step[] = [];
  const work = await mkdtemp(join(tmpdir(), 'regfs-fuzz-push-'));
  const registry = await startRegistry({ root, schema1: true });
  try {
    const pusher = new Pusher(registry.host);
    let n = 0;
    const image = (format: 'docker' | 'oci' | 'oci-no-mediatype', platform?: Platform): Image => {
      const own = shuffle(layers, rand).slice(0, 1 + Math.floor(rand() * 2));
      return makeImage({ format, layers: own, ...(platform === undefined ? {} : { platform }), labels: { fuzz: `${seed}.${n++}` } });
    };
    const pushes = 4 + Math.floor(rand() * 4);
    for (let i = 0; i < pushes; i++) {
      let repo = pick(repos);
      const shape: Shape = pick(SHAPES);
      const again = pushed.length > 0 && rand() < 0.2 ? pick(pushed).m : undefined;
      // A referrer as producers push one: into its subject's repository, tagged as cosign tags a
      // signature (`sha256-<hex>.sig`), or by digest alone (found only by its subject).
      const subject = again === undefined && shape === 'artifact' && pushed.length > 0 && rand() < 0.8 ? pick(pushed) : undefined;
      if (subject !== undefined) repo = subject.repo;
      const m = again ?? build(shape, image, subject === undefined ? pushed : [subject], rand);
      const tagged = rand() < 0.8;
      const lower = repo === repo.toLowerCase();
      const schema1 = again === undefined && shape === 'schema1';
      const bySkopeo = lower && (schema1 || (rand() < 0.25 && !(m.kind === 'index' && m.children.some((c) => c.kind === 'index'))));
      if (schema1 && !lower) continue;
      const cosignTag = subject !== undefined && rand() < 0.5 ? `sha256-${subject.m.digest.slice('sha256:'.length)}.sig` : undefined;
      const ref = cosignTag ?? (tagged ? pick(TAGS) : m.digest);
      const byTag = cosignTag !== undefined || tagged;
      if (schema1 && !byTag) continue; // the digest of a schema1 push is the registry's, not known before
      if (bySkopeo) {
        const dir = join(work, String(i));
        await writeDirImage(dir, m);
        const target = `docker://${registry.host}/${repo}${byTag ? `:${ref}` : `@${ref}`}`;
        await withRetry(() => skopeoCopy(`dir:${dir}`, target, schema1 ? { format: 'v2s1' } : { all: m.kind === 'index' }));
        pusher.noteHeld(repo, m);
      } else {
        await pusher.pushManifest(repo, m, ref, rand);
      }
      const digest = schema1 ? await storedDigest(registry.host, repo, ref) : m.digest;
      steps.push({ op: 'push', repo, ref, digest, what: schema1 ? 'schema1' : again !== undefined ? `again ${describe(m)}` : describe(m), via: bySkopeo ? 'skopeo' : 'http' });
      if (!schema1) pushed.push({ repo, m });
    }
    if (kinds.has('delete-manifest') && pushed.length > 0 && rand() < 0.7) {
      const victim = pick(pushed);
      await apiDelete(pusher, steps, victim.repo, victim.m.digest, 'manifest');
    }
    if (kinds.has('layer-manifest') && pushed.length > 0 && rand() < 0.6) {
      // A manifest's bytes pushed as a layer of a new image: y/_layers links the manifest again,
      // and 2.8 serves it by digest through that link, deleted or not.
      const inner = pick(pushed);
      if (rand() < 0.6) await apiDelete(pusher, steps, inner.repo, inner.m.digest, 'manifest');
      const outer = makeImage({ format: 'oci', layers: [{ ...blobOf(inner.m.bytes), diffId: inner.m.digest }], labels: { fuzz: `${seed}.${n++}` } });
      const tag = pick(TAGS);
      await pusher.pushManifest(inner.repo, outer, tag, rand);
      steps.push({ op: 'push', repo: inner.repo, ref: tag, digest: outer.digest, what: `oci(layer: manifest ${inner.m.digest.slice(0, 19)})`, via: 'http' });
      pushed.push({ repo: inner.repo, m: outer });
    }
    const indexes = pushed.filter((p) => p.m.kind === 'index');
    if (kinds.has('delete-child') && indexes.length > 0 && rand() < 0.7) {
      const parent = pick(indexes);
      if (parent.m.kind === 'index') await apiDelete(pusher, steps, parent.repo, pick(parent.m.children).digest, `child of ${parent.m.digest.slice(0, 19)}`);
    }
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
  return { repos, steps };
}

function build(shape: Shape, image: (f: 'docker' | 'oci' | 'oci-no-mediatype', p?: Platform) => Image, pushed: Array<{ m: Manifest }>, rand: () => number): Manifest {
  const two = (f: 'docker' | 'oci'): Image[] => [PLATFORMS[0]!, PLATFORMS[1 + Math.floor(rand() * 2)]!].map((p) => image(f, p));
  switch (shape) {
    case 'docker':
    case 'schema1':
      return image('docker');
    case 'oci':
    case 'oci-no-mediatype':
      return image(shape);
    case 'docker-list':
      return makeIndex({ format: 'docker', children: two('docker') });
    case 'oci-index':
      return makeIndex({ format: 'oci', children: two('oci') });
    case 'nested-index':
      return makeIndex({ format: 'oci', children: [makeIndex({ format: 'oci', children: two('oci') }), image('oci', PLATFORMS[2])] });
    case 'artifact': {
      const subject = pushed.length > 0 ? pushed[Math.floor(rand() * pushed.length)]!.m : image('oci');
      return makeArtifact({ subject, artifactType: 'application/vnd.example.sbom', layerMediaType: 'application/vnd.example.sbom+json', payload: `{"n":${Math.floor(rand() * 1e6)}}` });
    }
  }
}

function describe(m: Manifest): string {
  if (m.kind === 'index') return `${m.mediaType.includes('docker') ? 'docker-list' : 'oci-index'}(${m.children.map(describe).join(',')})`;
  if (m.artifactType !== undefined) return 'artifact';
  return m.mediaType.includes('docker') ? 'docker' : 'oci';
}

async function apiDelete(pusher: Pusher, steps: Step[], repo: string, digest: Digest, what: string): Promise<void> {
  const status = await pusher.deleteManifest(repo, digest);
  if (status !== 202 && status !== 404) throw new Error(`DELETE ${repo}@${digest}: HTTP ${status}`);
  if (status === 202) steps.push({ op: 'delete', repo, ref: digest, digest, what, via: 'http' });
}

/** The Docker-Content-Digest the registry gives for `repo:ref` (the way to learn a schema1 push's digest). */
async function storedDigest(host: string, repo: string, ref: string): Promise<Digest> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.docker.distribution.manifest.v1+prettyjws' },
    signal: AbortSignal.timeout(10_000),
  });
  const d = res.headers.get('docker-content-digest');
  if (res.status !== 200 || d === null) throw new Error(`HEAD ${repo}:${ref}: HTTP ${res.status}`);
  return d as Digest;
}
