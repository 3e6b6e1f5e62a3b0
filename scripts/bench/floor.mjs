// The floor: the bare filesystem work an output needs, in the tightest loop Node allows
// (synchronous calls, no temp files, no checks). Reads the operations from a JSON file:
// { dirs: [path, ...] (parents first), links: [[existing, new], ...], files: [[path, content], ...] }
// and prints {"seconds": …} for the work alone.
import { linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const ops = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const started = performance.now();
for (const d of ops.dirs) mkdirSync(d);
for (const [from, to] of ops.links) linkSync(from, to);
for (const [path, content] of ops.files) writeFileSync(path, content);
console.log(JSON.stringify({ seconds: (performance.now() - started) / 1000 }));
