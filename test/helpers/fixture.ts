/** The committed registry-written fixture, and ways to reach its parts from tests. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { FIXTURE_PUSHES, type FixtureManifest, type FixturePush } from '../../scripts/lib/fixture-spec.js';

/** `fixtures/registry`: storage written by docker-registry 2.8.2 from skopeo pushes. */
export const FIXTURE_ROOT = fileURLToPath(new URL('../../fixtures/registry', import.meta.url));

/** The push that left `repo:tag` where it is now (the last push to it). */
export function currentPush(repo: string, tag: string): FixturePush {
  const p = FIXTURE_PUSHES.filter((x) => x.repo === repo && x.tag === tag).at(-1);
  if (p === undefined) throw new Error(`no fixture push for ${repo}:${tag}`);
  return p;
}

/** Pushes whose tag was not overwritten later and that the pure writer can reproduce (not schema1). */
export function currentPurePushes(): FixturePush[] {
  return FIXTURE_PUSHES.filter((p, i) => p.schema1 !== true && !FIXTURE_PUSHES.slice(i + 1).some((q) => q.repo === p.repo && q.tag === p.tag));
}

/** `fixtures/registry.json`: every pushed ref, its digest, kind and blobs. */
export async function readFixtureManifest(): Promise<FixtureManifest> {
  return JSON.parse(await readFile(fileURLToPath(new URL('../../fixtures/registry.json', import.meta.url)), 'utf8')) as FixtureManifest;
}
