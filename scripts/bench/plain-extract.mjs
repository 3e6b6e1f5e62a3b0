// The plain script an extract is measured against, in Node: `plain-extract.mjs LIST SRC OUT`.
//
// plain-extract.py line for line, with Node's synchronous calls: the floor of a correct
// extract in a plain Node script (no yargs, no damage handling, no locks, no messages), to
// tell Node's own cost for this work from regfs's. Prints {"seconds": ...} of its work.
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const V2 = ['docker', 'registry', 'v2'];
const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];

const readLink = (path) => readFileSync(path, 'latin1');
const split = (digest) => [digest.slice(0, digest.indexOf(':')), digest.slice(digest.indexOf(':') + 1)];
const blobData = (v2, digest) => {
  const [alg, hex] = split(digest);
  return join(v2, 'blobs', alg, hex.slice(0, 2), hex, 'data');
};
const linkPath = (v2, repo, kind, digest) => join(v2, 'repositories', repo, kind, ...split(digest), 'link');
const fail = (message) => {
  console.error(message);
  process.exit(1);
};

const started = performance.now();
const [listFile, src, out] = process.argv.slice(2);
const sv2 = join(src, ...V2);
const ov2 = join(out, ...V2);
const blobs = new Map();
const links = new Set();
const tags = [];
const refs = readFileSync(listFile, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
for (const ref of refs) {
  const at = ref.lastIndexOf(':');
  const repo = ref.slice(0, at);
  const tag = ref.slice(at + 1);
  const top = readLink(join(sv2, 'repositories', repo, '_manifests', 'tags', tag, 'current', 'link'));
  const work = [top];
  while (work.length > 0) {
    const d = work.pop();
    if (readLink(linkPath(sv2, repo, '_manifests/revisions', d)) !== d) fail(`${ref}: revision link of ${d} is wrong`);
    const path = blobData(sv2, d);
    const raw = readFileSync(path);
    if (`sha256:${createHash('sha256').update(raw).digest('hex')}` !== d) fail(`${ref}: manifest ${d} does not match its digest`);
    const m = JSON.parse(raw.toString('utf8'));
    blobs.set(d, path);
    links.add(`${linkPath(ov2, repo, '_manifests/revisions', d)}\0${d}`);
    if (INDEX_TYPES.includes(m.mediaType)) {
      work.push(...m.manifests.map((c) => c.digest));
      continue;
    }
    for (const desc of [m.config, ...m.layers]) {
      const b = desc.digest;
      if (readLink(linkPath(sv2, repo, '_layers', b)) !== b) fail(`${ref}: _layers link of ${b} is wrong`);
      const bpath = blobData(sv2, b);
      if (statSync(bpath).size !== desc.size) fail(`${ref}: blob ${b} has the wrong size`);
      blobs.set(b, bpath);
      links.add(`${linkPath(ov2, repo, '_layers', b)}\0${b}`);
    }
  }
  tags.push([repo, tag, top]);
}

const write = (path, content) => {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
};
for (const [d, path] of blobs) {
  const dest = blobData(ov2, d);
  mkdirSync(dirname(dest), { recursive: true });
  try {
    linkSync(path, dest);
  } catch (err) {
    if (err.code !== 'EEXIST') throw err;
  }
}
for (const entry of links) {
  const [path, d] = entry.split('\0');
  write(path, d);
}
for (const [repo, tag, d] of tags) {
  const base = join(ov2, 'repositories', repo, '_manifests', 'tags', tag);
  write(join(base, 'index', ...split(d), 'link'), d);
  write(join(base, 'current', 'link'), d);
}
console.log(JSON.stringify({ seconds: (performance.now() - started) / 1000 }));
