/**
 * The oracle of the differential harness: what a running registry answers for one reference
 * and everything below it. For the reference, and for every child manifest of an index (by
 * digest, in the same repository), GET with the OCI+Docker Accept header and with the
 * Docker-only one, and HEAD; for every config and layer (schema1: every blobSum), HEAD and
 * GET of the blob. Each answer is recorded as status, Docker-Content-Digest, Content-Type,
 * Content-Length and the sha256 of the body, so two registries give "the same answer" exactly
 * when these strings are equal, request by request.
 */
import { createHash } from 'node:crypto';

/** Accept headers the oracle sends for manifests. */
export const ACCEPTS = {
  all: [
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.docker.distribution.manifest.v1+prettyjws',
    'application/vnd.docker.distribution.manifest.v1+json',
  ].join(', '),
  docker: ['application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json'].join(', '),
};

/** Long enough for a loaded machine; a registry blocked on a FIFO never answers. */
const TIMEOUT_MS = 2_000;

/** The answers for one reference and its closure, and whether the registry serves it in full. */
export interface Probe {
  /** request ("GET manifests repo/ref [all]") -> answer ("200 sha256:… type len sha256:…"). */
  answers: Map<string, string>;
  /**
   * Every GET with the `all` header answered 200; every manifest fetched by digest and every
   * blob carries that digest in Docker-Content-Digest; every blob's and every non-schema1
   * manifest's body hashes to its digest; HEAD and GET of a blob agree.
   */
  full: boolean;
  /** Why it is not full (first reason). */
  why: string | undefined;
  /** The digest the reference resolved to (200 with the `all` header). */
  digest: string | undefined;
  /** Every manifest digest reached: the reference's and its children's. */
  manifests: Set<string>;
}

interface Answer {
  status: number | 'timeout' | 'error';
  digest: string | null;
  type: string | null;
  length: string | null;
  body: Buffer | undefined;
}

/** Ask `host` about `repo` + `ref` (a tag or a digest), `expect` the digest it must resolve to if known. */
export async function probe(host: string, repo: string, ref: string, expect?: string): Promise<Probe> {
  const p: Probe = { answers: new Map(), full: true, why: undefined, digest: undefined, manifests: new Set() };
  const fail = (why: string): void => {
    if (p.full) p.why = why;
    p.full = false;
  };
  const seenBlobs = new Set<string>();
  const visit = async (r: string, want: string | undefined, depth: number): Promise<void> => {
    const path = `/v2/${repo}/manifests/${r}`;
    const head = await ask(host, 'HEAD', path, ACCEPTS.all);
    p.answers.set(`HEAD manifests ${repo}/${r} [all]`, format(head));
    const docker = await ask(host, 'GET', path, ACCEPTS.docker);
    p.answers.set(`GET manifests ${repo}/${r} [docker]`, format(docker));
    const got = await ask(host, 'GET', path, ACCEPTS.all);
    p.answers.set(`GET manifests ${repo}/${r} [all]`, format(got));
    if (got.status !== 200 || got.body === undefined) return fail(`GET manifests ${repo}/${r}: ${got.status}`);
    if (got.digest === null) return fail(`GET manifests ${repo}/${r}: no Docker-Content-Digest`);
    if (depth === 0) p.digest = got.digest;
    p.manifests.add(got.digest);
    if (want !== undefined && got.digest !== want) fail(`GET manifests ${repo}/${r}: digest ${got.digest}, not ${want}`);
    const schema1 = got.type?.includes('distribution.manifest.v1') === true;
    if (!schema1 && sha256(got.body) !== got.digest) fail(`GET manifests ${repo}/${r}: body does not hash to ${got.digest}`);
    if (head.status !== 200 || head.digest !== got.digest) fail(`HEAD manifests ${repo}/${r}: ${head.status} ${head.digest}`);
    let doc: { manifests?: Array<{ digest?: unknown }>; config?: { digest?: unknown }; layers?: Array<{ digest?: unknown }>; fsLayers?: Array<{ blobSum?: unknown }> };
    try {
      doc = JSON.parse(got.body.toString('utf8')) as typeof doc;
    } catch {
      return fail(`GET manifests ${repo}/${r}: not JSON`);
    }
    if (depth > 8) return fail(`${repo}/${r}: indexes nested deeper than 8`);
    if (Array.isArray(doc.manifests)) {
      for (const c of doc.manifests) {
        if (typeof c.digest !== 'string') return fail(`${repo}/${r}: a child without digest`);
        if (!p.manifests.has(c.digest)) await visit(c.digest, c.digest, depth + 1);
      }
      return;
    }
    const blobs = [doc.config?.digest, ...(doc.layers ?? []).map((l) => l.digest), ...(doc.fsLayers ?? []).map((l) => l.blobSum)];
    for (const d of blobs) {
      if (d === undefined) continue;
      if (typeof d !== 'string') return fail(`${repo}/${r}: a blob without digest`);
      if (seenBlobs.has(d)) continue;
      seenBlobs.add(d);
      const bpath = `/v2/${repo}/blobs/${d}`;
      const bh = await ask(host, 'HEAD', bpath);
      p.answers.set(`HEAD blobs ${repo}/${d}`, format(bh));
      const bg = await ask(host, 'GET', bpath);
      p.answers.set(`GET blobs ${repo}/${d}`, format(bg));
      if (bg.status !== 200 || bg.body === undefined) fail(`GET blobs ${repo}/${d}: ${bg.status}`);
      else if (bg.digest !== d || sha256(bg.body) !== d) fail(`GET blobs ${repo}/${d}: body or header is not ${d}`);
      else if (bh.status !== 200 || bh.length !== String(bg.body.length)) fail(`HEAD blobs ${repo}/${d}: ${bh.status} length ${bh.length}`);
    }
  };
  await visit(ref, expect, 0);
  return p;
}

/** The tags `GET /v2/<repo>/tags/list` gives (none unless 200). */
export async function tagsList(host: string, repo: string): Promise<string[]> {
  const a = await ask(host, 'GET', `/v2/${repo}/tags/list`);
  if (a.status !== 200 || a.body === undefined) return [];
  try {
    const tags = (JSON.parse(a.body.toString('utf8')) as { tags?: unknown }).tags;
    return Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}

/** The repositories `GET /v2/_catalog` lists, in its order; undefined if it does not answer 200 with a list. */
export async function catalog(host: string): Promise<string[] | undefined> {
  const a = await ask(host, 'GET', '/v2/_catalog?n=10000');
  if (a.status !== 200 || a.body === undefined) return undefined;
  try {
    const repos = (JSON.parse(a.body.toString('utf8')) as { repositories?: unknown }).repositories;
    return Array.isArray(repos) ? repos.filter((r): r is string => typeof r === 'string') : undefined;
  } catch {
    return undefined;
  }
}

/** The status of a GET of a manifest with every media type accepted, and the digest it answers with. */
export async function servedDigest(host: string, repo: string, ref: string): Promise<{ status: string; digest: string | null }> {
  const a = await ask(host, 'GET', `/v2/${repo}/manifests/${ref}`, ACCEPTS.all);
  return { status: String(a.status), digest: a.digest };
}

/** The status of a plain GET of a manifest (for "unlisted references are not served"). */
export async function manifestStatus(host: string, repo: string, ref: string): Promise<string> {
  return String((await ask(host, 'GET', `/v2/${repo}/manifests/${ref}`, ACCEPTS.all)).status);
}

/** The requests on which two probes differ, as lines "request: src-answer | out-answer". */
export function diffProbes(src: Probe, out: Probe): string[] {
  const lines: string[] = [];
  for (const key of new Set([...src.answers.keys(), ...out.answers.keys()])) {
    const a = src.answers.get(key) ?? 'not asked';
    const b = out.answers.get(key) ?? 'not asked';
    if (a !== b) lines.push(`${key}: ${a} | ${b}`);
  }
  return lines;
}

async function ask(host: string, method: 'GET' | 'HEAD', path: string, accept?: string): Promise<Answer> {
  try {
    const res = await fetch(`http://${host}${path}`, {
      method,
      headers: accept === undefined ? {} : { accept },
      redirect: 'manual',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const body = method === 'GET' ? Buffer.from(await res.arrayBuffer()) : undefined;
    return { status: res.status, digest: res.headers.get('docker-content-digest'), type: res.headers.get('content-type'), length: res.headers.get('content-length'), body };
  } catch (err) {
    const timeout = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    return { status: timeout ? 'timeout' : 'error', digest: null, type: null, length: null, body: undefined };
  }
}

function format(a: Answer): string {
  if (typeof a.status !== 'number') return a.status;
  // Error bodies carry only the registry's message; 200 bodies are compared by hash, except a
  // signed schema1 manifest's, which the registry signs anew with its own key on every GET.
  const signed = a.type?.includes('prettyjws') === true;
  const body = a.body === undefined ? '-' : a.status !== 200 ? a.body.toString('utf8').trim().replace(/"detail":.*$/, '') : signed ? 'signed' : sha256(a.body);
  return `${a.status} ${a.digest ?? '-'} ${a.type ?? '-'} ${a.length ?? '-'} ${body}`;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}
