/**
 * Build the fixture registry: genuine docker-registry 2.8 storage, made by starting the
 * registry on an empty root and pushing every image of scripts/lib/fixture-spec.ts with skopeo
 * from `dir:` directories, one push at a time. Deterministic: every run gives the same files.
 *
 *   node --import tsx scripts/make-fixtures.ts [OUT_ROOT]     (default fixtures/registry)
 *
 * writes OUT_ROOT/docker/registry/v2/… and OUT_ROOT.json (a FixtureManifest).
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { storageRoot } from '../src/registry/layout.js';
import { errnoCode } from '../src/errors.js';
import { FIXTURE_PUSHES, fixtureKind, type FixtureManifest, type FixturePush, type FixtureRef } from './lib/fixture-spec.js';
import { requiredDigests, type Manifest } from './lib/images.js';
import { startRegistry } from './lib/registry-server.js';
import { skopeoCopy, skopeoInspectRaw, skopeoManifestDigestOf, withRetry } from './lib/skopeo.js';
import { writeDirImage } from './lib/write-dir.js';

/** Where `npm run fixtures` writes by default. */
export const DEFAULT_FIXTURE_ROOT = fileURLToPath(new URL('../fixtures/registry', import.meta.url));

/** Push the fixture into a fresh registry rooted at `outRoot` (absent or empty) and describe what was pushed. */
export async function buildFixture(outRoot: string): Promise<FixtureManifest> {
  if ((await listDir(outRoot)).length > 0) throw new Error(`${outRoot} is not empty`);
  await mkdir(outRoot, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'regfs-fixture-'));
  const refs: FixtureRef[] = [];
  try {
    const registry = await startRegistry({ root: outRoot, schema1: true });
    try {
      let dirs = 0;
      const nextDir = (): string => join(work, String(dirs++));
      for (const push of FIXTURE_PUSHES) refs.push(await pushOne(registry.host, push, nextDir));
    } finally {
      await registry.stop();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  await removeUploads(join(storageRoot(outRoot), 'repositories'));
  for (const [i, r] of refs.entries()) r.overwritten = refs.slice(i + 1).some((later) => later.ref === r.ref);
  return { refs };
}

/** Push one fixture entry (retrying the 2.8 race) and check the registry stored the expected digest. */
async function pushOne(host: string, push: FixturePush, nextDir: () => string): Promise<FixtureRef> {
  const ref = `${push.repo}:${push.tag}`;
  const target = `docker://${host}/${ref}`;
  if (push.schema1 === true) {
    const dir = nextDir();
    await writeDirImage(dir, push.image);
    await withRetry(() => skopeoCopy(`dir:${dir}`, target, { format: 'v2s1' }));
  } else {
    await pushManifest(`docker://${host}/${push.repo}`, `:${push.tag}`, push.image, nextDir);
  }
  const digest = await skopeoManifestDigestOf(target);
  if (push.schema1 !== true && digest !== push.image.digest) {
    throw new Error(`pushed ${ref} as ${push.image.digest} but the registry serves ${digest}`);
  }
  const blobs = push.schema1 === true ? schema1Blobs(await skopeoInspectRaw(target)) : requiredDigests(push.image);
  return { ref, repo: push.repo, tag: push.tag, digest, kind: fixtureKind(push), blobs, overwritten: false };
}

/**
 * `skopeo copy --all` from a `dir:` image. skopeo 1.9.3 refuses an index that holds an index
 * ("Unexpectedly received a manifest list instead of a manifest for a single image"), so
 * such an index's children are pushed first, by digest, and then the index alone.
 */
async function pushManifest(repoUrl: string, suffix: string, m: Manifest, nextDir: () => string): Promise<void> {
  const nested = m.kind === 'index' && m.children.some((c) => c.kind === 'index');
  if (nested) for (const c of m.children) await pushManifest(repoUrl, `@${c.digest}`, c, nextDir);
  const dir = nextDir();
  await writeDirImage(dir, m);
  await withRetry(() => skopeoCopy(`dir:${dir}`, `${repoUrl}${suffix}`, nested ? { indexOnly: true } : { all: m.kind === 'index' }));
}

/** The distinct `fsLayers[].blobSum` of a schema1 manifest, top layer first. */
function schema1Blobs(raw: Buffer): string[] {
  const m = JSON.parse(raw.toString('utf8')) as { fsLayers: Array<{ blobSum: string }> };
  return [...new Set(m.fsLayers.map((l) => l.blobSum))];
}

/** Remove every `_uploads` directory under `dir` (a push may leave empty ones). */
async function removeUploads(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name === '_layers' || e.name === '_manifests') continue;
    const path = join(dir, e.name);
    await (e.name === '_uploads' ? rm(path, { recursive: true }) : removeUploads(path));
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
}

async function main(): Promise<void> {
  const out = resolve(process.argv[2] ?? DEFAULT_FIXTURE_ROOT);
  const existing = await listDir(out);
  if (existing.length > 0) {
    if (existing.join() !== 'docker') throw new Error(`refusing to replace ${out}: it holds more than a registry's docker/`);
    await rm(out, { recursive: true });
  }
  const started = Date.now();
  const manifest = await buildFixture(out);
  await writeFile(`${out}.json`, `${JSON.stringify(manifest, null, 2)}\n`);
  console.log(`${basename(out)}: ${manifest.refs.length} refs pushed in ${Date.now() - started} ms; wrote ${out}.json`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
