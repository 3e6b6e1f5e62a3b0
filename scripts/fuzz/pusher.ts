/**
 * A small client of the distribution HTTP API for the differential harness: monolithic blob
 * uploads (POST then PUT with `digest=`), cross-repository mounts, manifest PUTs and DELETEs.
 * Faster than one skopeo process per image, and the only way to push names skopeo's parser
 * refuses, such as an upper-case first component (`Team/app`), which the registry accepts.
 */
import type { Digest } from '../../src/digest.js';
import type { Blob, Manifest } from '../lib/images.js';
import { blobsOf, manifestsOf } from '../lib/images.js';

const TIMEOUT_MS = 10_000;

/** Pushes to one registry; remembers which blobs each repository already holds. */
export class Pusher {
  private readonly held = new Map<string, Set<Digest>>();

  constructor(readonly host: string) {}

  /**
   * Push `m` (children first, then blobs, then the manifest) under `ref`: a tag, or the
   * manifest's digest to push it untagged.
   */
  async pushManifest(repo: string, m: Manifest, ref: string, rand: () => number): Promise<void> {
    if (m.kind === 'index') for (const c of m.children) await this.pushManifest(repo, c, c.digest, rand);
    else for (const b of blobsOf(m)) await this.pushBlob(repo, b, rand);
    await this.putManifest(repo, ref, m.mediaType, m.bytes);
  }

  /** Upload `b` into `repo` unless it is there; half the time by mounting it from a repository that holds it. */
  async pushBlob(repo: string, b: Blob, rand: () => number): Promise<void> {
    const mine = this.heldBy(repo);
    if (mine.has(b.digest)) return;
    const from = [...this.held].filter(([r, s]) => r !== repo && s.has(b.digest)).map(([r]) => r);
    if (from.length > 0 && rand() < 0.5) {
      const src = from[Math.floor(rand() * from.length)]!;
      const res = await this.request('POST', `/v2/${repo}/blobs/uploads/?mount=${b.digest}&from=${src}`);
      if (res.status === 201) {
        mine.add(b.digest);
        return;
      }
      if (res.status !== 202) throw new Error(`mount ${b.digest} from ${src} into ${repo}: HTTP ${res.status}`);
      await this.finishUpload(repo, res, b);
    } else {
      const res = await this.request('POST', `/v2/${repo}/blobs/uploads/`);
      if (res.status !== 202) throw new Error(`start upload into ${repo}: HTTP ${res.status}`);
      await this.finishUpload(repo, res, b);
    }
    mine.add(b.digest);
  }

  /** PUT a manifest by tag or digest with its media type as Content-Type. */
  async putManifest(repo: string, ref: string, mediaType: string, bytes: Buffer): Promise<void> {
    const res = await this.request('PUT', `/v2/${repo}/manifests/${ref}`, { body: bytes, headers: { 'content-type': mediaType } });
    if (res.status !== 201) throw new Error(`PUT ${repo}/manifests/${ref}: HTTP ${res.status} ${await res.text()}`);
  }

  /** DELETE a manifest by digest (the registry also removes the tags on it). Returns the status. */
  async deleteManifest(repo: string, digest: Digest): Promise<number> {
    const res = await this.request('DELETE', `/v2/${repo}/manifests/${digest}`);
    if (!res.bodyUsed) await res.arrayBuffer();
    return res.status;
  }

  /** Record that `repo` holds every blob of `m` (after a push by another client). */
  noteHeld(repo: string, m: Manifest): void {
    const mine = this.heldBy(repo);
    for (const x of manifestsOf(m)) if (x.kind === 'image') for (const b of blobsOf(x)) mine.add(b.digest);
  }

  private heldBy(repo: string): Set<Digest> {
    let s = this.held.get(repo);
    if (s === undefined) this.held.set(repo, (s = new Set()));
    return s;
  }

  private async finishUpload(repo: string, started: Response, b: Blob): Promise<void> {
    const location = started.headers.get('location');
    if (location === null) throw new Error(`upload into ${repo}: no Location`);
    const url = new URL(location, `http://${this.host}`);
    url.searchParams.set('digest', b.digest);
    const res = await this.request('PUT', url.pathname + url.search, {
      body: b.bytes,
      headers: { 'content-type': 'application/octet-stream' },
    });
    if (res.status !== 201) throw new Error(`finish upload of ${b.digest} into ${repo}: HTTP ${res.status} ${await res.text()}`);
  }

  private async request(method: string, path: string, init: { body?: Buffer; headers?: Record<string, string> } = {}): Promise<Response> {
    const res = await fetch(`http://${this.host}${path}`, {
      method,
      ...(init.body === undefined ? {} : { body: init.body }),
      headers: init.headers ?? {},
      redirect: 'manual',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (res.status !== 202 && res.status !== 201) return res;
    await res.arrayBuffer();
    return res;
  }
}
