/**
 * `regfs-bundle.json`, the entry of a bundle (docs/bundle.md) that says what `apply` checks
 * before it writes anything: the inventory the bundle was made against (null for a complete
 * bundle), the blobs it carries, and the blobs it leaves out because the far side holds them.
 *
 *   {"regfsBundle":1,"inventory":"sha256:<hex>","carried":{"blobs":12,"bytes":73400320},
 *    "assumed":[{"digest":"sha256:<hex>","size":1234}]}
 *
 * Other readers of OCI layouts ignore the entry; regfs reads it strictly: a field missing or
 * of the wrong type, an unknown version, an `assumed` list not sorted by digest or holding a
 * digest twice, or assumed blobs in a complete bundle make the bundle ARCHIVE_INVALID.
 */
import { isDigest, type Digest } from '../digest.js';
import { RegfsError } from '../errors.js';

/** The entry's name in the tar, after `oci-layout` and before `index.json` and the blobs. */
export const BUNDLE_FILE = 'regfs-bundle.json';

/** The version of the entry this regfs reads and writes. */
export const BUNDLE_VERSION = 1;

export interface BundleFile {
  /** The identity of the inventory the bundle was made against; null for a complete bundle. */
  inventory: Digest | null;
  carried: { blobs: number; bytes: number };
  /** Blobs the images reference that the bundle leaves out, sorted by digest. */
  assumed: Array<{ digest: Digest; size: number }>;
}

/** The entry's bytes as `regfs bundle` writes them: compact JSON, its keys in this order, one line. */
export function bundleFileBytes(b: BundleFile): Buffer {
  return Buffer.from(`${JSON.stringify({ regfsBundle: BUNDLE_VERSION, inventory: b.inventory, carried: b.carried, assumed: b.assumed })}\n`);
}

/** Parse the entry's bytes; `where` names it in messages (`<tar>:regfs-bundle.json`). */
export function parseBundleFile(raw: Buffer, where: string): BundleFile {
  const bad = (why: string): RegfsError => new RegfsError('ARCHIVE_INVALID', `"${where}" ${why}`, { path: where });
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch {
    throw bad('is not JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('is not a JSON object');
  const o = doc as Record<string, unknown>;
  if (o['regfsBundle'] !== BUNDLE_VERSION) throw bad(`says regfsBundle ${JSON.stringify(o['regfsBundle'])}; this regfs reads bundles of version ${BUNDLE_VERSION}`);
  const count = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  const inventory = o['inventory'];
  if (inventory !== null && !(typeof inventory === 'string' && isDigest(inventory))) throw bad('has an "inventory" that is neither null nor a digest');
  const carried = o['carried'] as Record<string, unknown> | undefined;
  if (typeof carried !== 'object' || carried === null || !count(carried['blobs']) || !count(carried['bytes'])) throw bad('has no "carried" with whole numbers "blobs" and "bytes"');
  const list = o['assumed'];
  if (!Array.isArray(list)) throw bad('has no "assumed" list');
  const assumed: BundleFile['assumed'] = [];
  for (const [i, a] of list.entries()) {
    const e = a as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null || typeof e['digest'] !== 'string' || !isDigest(e['digest']) || !count(e['size'])) throw bad(`"assumed" entry ${i} is not a {"digest", "size"} pair`);
    const prev = assumed.at(-1);
    if (prev !== undefined && prev.digest >= e['digest']) throw bad(`"assumed" is not sorted by digest, each once (entry ${i}, ${e['digest']})`);
    assumed.push({ digest: e['digest'], size: e['size'] });
  }
  if (inventory === null && assumed.length > 0) throw bad('assumes blobs the far side holds, but names no inventory');
  return { inventory: inventory as Digest | null, carried: { blobs: carried['blobs'] as number, bytes: carried['bytes'] as number }, assumed };
}
