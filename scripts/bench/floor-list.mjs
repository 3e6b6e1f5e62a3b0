// The floor of reading an image list: the list read and split into lines, and for each
// `repo:tag` line its tag's current/link read (or found missing), in the tightest loop Node
// allows. Arguments: the storage root (…/docker/registry/v2) and the list file. Prints
// {"seconds": …, "present": n, "missing": n} for the work alone.
import { readFileSync, statSync } from 'node:fs';

const [v2, list] = process.argv.slice(2);
const started = performance.now();
let present = 0;
let missing = 0;
for (const line of readFileSync(list, 'utf8').split('\n')) {
  if (line === '') continue;
  const colon = line.lastIndexOf(':');
  const link = `${v2}/repositories/${line.slice(0, colon)}/_manifests/tags/${line.slice(colon + 1)}/current/link`;
  if (statSync(link, { throwIfNoEntry: false }) === undefined) missing++;
  else {
    readFileSync(link);
    present++;
  }
}
console.log(JSON.stringify({ seconds: (performance.now() - started) / 1000, present, missing }));
