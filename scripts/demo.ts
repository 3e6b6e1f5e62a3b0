/**
 * `npm run demo`: extract the images of fixtures/demo.list from the bundled registry-written
 * fixture into demo-out/, first as a dry run, then for real, with the regfs executable as a
 * user runs it. If docker-registry is installed, serve demo-out/ read-only on loopback for a
 * moment and show that each image comes back with the digest it had in the source.
 */
import { spawnSync } from 'node:child_process';
import { access, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { readImageList } from '../src/image-list.js';
import { RegistryReader } from '../src/registry/read.js';
import { REGISTRY_BIN, startRegistry } from './lib/registry-server.js';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const bin = here('../dist/cli/main.js');
const list = here('../fixtures/demo.list');
const source = here('../fixtures/registry');
const out = here('../demo-out');

const ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

function regfs(...args: string[]): void {
  console.log(`\n$ regfs ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [bin, ...args], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

await rm(out, { recursive: true, force: true });
const rel = (p: string): string => p.slice(process.cwd().length + 1);
regfs('extract', rel(list), rel(source), rel(out), '--dry-run');
regfs('extract', rel(list), rel(source), rel(out));

const installed = await access(REGISTRY_BIN).then(() => true, () => false);
if (!installed) {
  console.log(`\n${rel(out)}/ is a registry root: serve it with docker-registry (apt-get install docker-registry) to see the images.`);
} else {
  console.log(`\nServing ${rel(out)}/ with docker-registry on loopback (read-only):`);
  const reader = await RegistryReader.open(source);
  const { entries } = await readImageList(list);
  const reg = await startRegistry({ root: out, readOnly: true });
  try {
    const catalog = (await (await fetch(`http://${reg.host}/v2/_catalog`)).json()) as { repositories: string[] };
    console.log(`  catalog: ${catalog.repositories.join(', ')}`);
    for (const { ref } of entries) {
      const res = await fetch(`http://${reg.host}/v2/${ref.repo}/manifests/${ref.tag}`, { method: 'HEAD', headers: { Accept: ACCEPT } });
      const served = res.headers.get('docker-content-digest');
      const stored = await reader.tagDigest(ref.repo, ref.tag!);
      console.log(`  ${ref.repo}:${ref.tag}  HTTP ${res.status}  ${served}  ${served === stored ? 'same digest as the source' : `SOURCE HAS ${stored}`}`);
    }
  } finally {
    await reg.stop();
  }
}
