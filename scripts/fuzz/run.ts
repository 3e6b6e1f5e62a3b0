/**
 * One seed of the differential harness: generate a state through the real registry, damage
 * it, ask a read-only registry on it about every reference (the oracle), then judge regfs:
 *
 * - extract, and to-dir followed by from-dir, of several random lists (`--keep-going`): a
 *   reference regfs writes must get, request by request, exactly the source registry's
 *   answers from a fresh registry on the output; a reference the source serves in full must
 *   be written; a reference regfs refuses must be one the source does not serve in full, and
 *   a problem with a code and a path must name its list line; no reference outside what was
 *   written is served by the output; no stack trace, exit 0 without problems and 3 with;
 * - extract --with-referrers of the same list: every referrer it reports is answered by a
 *   fresh registry on its output exactly as the source registry answers it (a rewritten
 *   fallback index excepted: its digest is new, and every child it lists is served);
 * - gc --apply on a copy: every request the registry answered 200 before gets the same
 *   answer after; gc --delete-untagged --apply on another: the same for every tag; and
 *   neither deletes a blob docker-registry garbage-collect (a dry run, with
 *   --delete-untagged for the second) keeps, where the registry's collector runs;
 * - rm of a random tag, digest or repository on a third copy (on S3: a copy of the source
 *   under its own prefix): a refusal changes nothing; a deletion leaves what it deleted
 *   unserved and every other answer that was 200 as it was (judgeRm);
 * - ls of the source: the repositories in the order of the registry's catalog, each one's tags
 *   as its tag list names them, each tag it serves with the digest it serves it by (judgeLs);
 * - the source tree and the files its symlinks lead to are unchanged at the end.
 */
import { checkJsonDocument } from '../lib/json-schemas.js';
import { digestOf, type Digest } from '../../src/digest.js';
import { parseManifestContent, referencedBlobs } from '../../src/manifest.js';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyTree } from '../../test/helpers/tree.js';
import { prng } from '../../test/helpers/crash.js';
import { registryGarbageCollectDryRun, startRegistry, type RegistryS3Storage, type RegistryServer } from '../lib/registry-server.js';
import { FsStorage } from '../../src/storage/fs.js';
import type { S3Service } from '../../src/storage/s3.js';
import { storageRoot } from '../../src/registry/layout.js';
import { damage, v2Of } from './damage.js';
import { generate, type Generated } from './generate.js';
import { formatKinds, shuffle, type Kinds } from './kinds.js';
import { catalog, diffProbes, manifestStatus, probe, servedDigest, tagsList, type Probe } from './oracle.js';

const REGFS_BIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const REGFS_TIMEOUT_MS = 30_000;

/** One thing regfs got wrong (or the source changed), with what it takes to see it again. */
export interface Discrepancy {
  /** extract, to-dir+from-dir, gc, source */
  check: string;
  /** What kind of discrepancy, without names or digests, for the summary: "written, answers differ: GET blobs 500 -> 200". */
  kind: string;
  detail: string;
}

/** What one seed ran and found. */
export interface SeedReport {
  seed: number;
  /** The steps of the generator and the damages, as lines. */
  state: string[];
  lists: string[][];
  /** Comparisons made (requests compared, references judged, trees compared). */
  checks: number;
  discrepancies: Discrepancy[];
  /** Milliseconds per phase: generate, oracle, ls, each list, gc+rm (on S3: rm). */
  phases: Record<string, number>;
  /** Where the state was left (with --keep), else undefined. */
  kept: string | undefined;
  ms: number;
}

/** Options of {@link runSeed}. */
export interface SeedOptions {
  kinds: Kinds;
  /** Random lists judged per state. */
  lists: number;
  /** A directory for this seed's files (created; removed at the end unless `keep`). */
  dir: string;
  keep: boolean;
  /**
   * Judge regfs on S3 instead: the damaged source is uploaded key for key (symbolic links
   * followed, as the registry's filesystem driver follows them; what is no regular file left
   * out) under `s3://BUCKET/seed-S/src`, the oracle is a registry on that prefix, and each list
   * is extracted S3 to S3 and S3 to disk, each judged by a registry on its output.
   */
  s3?: S3Target;
}

/** Where and how the S3 mode works. */
export interface S3Target {
  bucket: string;
  /** A client for the upload and for the source's keys before and after. */
  service: S3Service;
  /** The registry's storage options for a prefix of the bucket. */
  storage(prefix: string): RegistryS3Storage;
  /** Credentials and endpoint for regfs (AWS_ACCESS_KEY_ID, …, AWS_ENDPOINT_URL). */
  env: Record<string, string>;
}

type Found = (check: string, kind: string, detail: string) => void;

interface Ref {
  /** The key regfs's result names the image by: `repo:tag` or `repo@digest`. */
  key: string;
  repo: string;
  /** Tag or digest. */
  ref: string;
  /** The digest the list line pins (`repo@d`, `repo:tag@d`). */
  expect: string | undefined;
}

interface Line {
  text: string;
  refs: Ref[];
}

interface RegfsRun {
  /** The command run (`extract`, `gc`, ...). */
  command: string;
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

interface WriteResult {
  images?: Array<{ ref?: string; dir?: string; digest?: string }>;
  problems?: Array<{ code?: string; file?: string; line?: number; path?: string; message?: string }>;
}

/** Run one seed; never throws for what regfs does, only for a harness failure (the registry would not start, a push failed). */
export async function runSeed(seed: number, opts: SeedOptions): Promise<SeedReport> {
  const started = Date.now();
  const rand = prng(seed);
  const src = join(opts.dir, 'src');
  const outside = join(opts.dir, 'outside');
  await mkdir(outside, { recursive: true });
  const report: SeedReport = { seed, state: [], lists: [], checks: 0, discrepancies: [], phases: {}, kept: undefined, ms: 0 };
  let mark = Date.now();
  const phase = (name: string): void => {
    report.phases[name] = Date.now() - mark;
    mark = Date.now();
  };
  const found: Found = (check, kind, detail) => void report.discrepancies.push({ check, kind, detail });
  let srcReg: RegistryServer | undefined;
  try {
    const gen = await generate(seed, src, opts.kinds, rand);
    report.state.push(...gen.steps.map((s) => `${s.op} ${s.repo} ${s.ref.startsWith('sha256:') ? `@${s.ref.slice(0, 19)}` : `:${s.ref}`} ${s.what} (${s.via})`));
    report.state.push(...(await damage(src, outside, opts.kinds, rand)).map((d) => `damage ${d}`));
    const before = await snapshot([src, outside]);
    phase('generate');

    // The oracle on the source: one read-only registry for the seed (the source never changes).
    const { refs: cands, tagDirs } = await candidates(src, gen);
    const s3 = opts.s3;
    const s3Src = s3 === undefined ? undefined : await uploadSource(s3, src, `seed-${seed}/src`);
    srcReg = await startRegistry(s3 === undefined ? { root: src, readOnly: true } : { readOnly: true, s3: s3.storage(`seed-${seed}/src`) });
    const host = srcReg.host;
    const srcProbes = new Map<string, Probe>();
    const srcProbe = async (r: Ref): Promise<Probe> => {
      let p = srcProbes.get(probeKey(r));
      if (p === undefined) srcProbes.set(probeKey(r), (p = await probe(host, r.repo, r.ref, r.expect)));
      return p;
    };
    for (const r of cands) await srcProbe(r);
    const tagLists = new Map<string, string[]>();
    for (const repo of new Set(cands.map((r) => r.repo))) {
      tagLists.set(repo, [...new Set([...(tagDirs.get(repo) ?? []), ...(await tagsList(host, repo))])].sort());
    }
    for (const r of cands) {
      const p = srcProbes.get(probeKey(r))!;
      report.state.push(`source ${r.key}${r.expect !== undefined && !r.key.includes('@') ? `@${r.expect.slice(0, 19)}` : ''}: ${p.full ? 'served in full' : `not in full (${p.why})`}`);
    }

    phase('oracle');
    await judgeLs(s3Src?.url ?? src, s3?.env, host, srcProbes, report, found);
    phase('ls');
    /** List `li`: random lines, recorded in the report, written to its run directory. */
    const nextList = async (li: number): Promise<{ lines: Line[]; runDir: string; listFile: string }> => {
      const lines = randomList(cands, tagLists, srcProbes, rand);
      report.lists.push(lines.map((l) => l.text));
      const runDir = join(opts.dir, 'runs', String(li));
      await mkdir(runDir, { recursive: true });
      const listFile = join(runDir, 'images.list');
      await writeFile(listFile, lines.map((l) => `${l.text}\n`).join(''));
      return { lines, runDir, listFile };
    };
    if (s3 !== undefined && s3Src !== undefined) {
      for (let li = 0; li < opts.lists; li++) {
        const { lines, runDir, listFile } = await nextList(li);
        const prefix = `seed-${seed}/out-${li}`;
        const ex = await regfs(['extract', listFile, s3Src.url, `s3://${s3.bucket}/${prefix}`, '--keep-going', '--json'], s3.env);
        await judgeWrite(`extract S3 to S3 list ${li}`, ex, ex, lines, s3.storage(prefix), cands, srcProbe, report, found);
        const disk = join(runDir, 'extract');
        const exd = await regfs(['extract', listFile, s3Src.url, disk, '--keep-going', '--json'], s3.env);
        await judgeWrite(`extract S3 to disk list ${li}`, exd, exd, lines, disk, cands, srcProbe, report, found);
        phase(`list ${li}`);
      }
      report.checks++;
      const keys = await keysOf(s3.service, s3Src.url);
      const changed = [...new Set([...s3Src.keys.keys(), ...keys.keys()])].filter((k) => s3Src.keys.get(k) !== keys.get(k));
      if (changed.length > 0) found('source', 'the source on S3 changed', `the source on S3 changed: ${changed.slice(0, 5).join('; ')}`);
      const target = rmTarget(cands, rand);
      if (target !== undefined) {
        const prefix = `seed-${seed}/rm`;
        const copy = await uploadSource(s3, src, prefix);
        await judgeRm(target, { root: copy.url, env: s3.env, registry: { s3: s3.storage(prefix) }, state: () => keysOf(s3.service, copy.url) }, cands, srcProbes, report, found);
      }
      phase('rm');
    }
    for (let li = 0; li < (s3 === undefined ? opts.lists : 0); li++) {
      const { lines, runDir, listFile } = await nextList(li);

      // extract, and to-dir then from-dir, run side by side; their findings are kept in this order.
      const chains = await Promise.all([
        (async (): Promise<Discrepancy[]> => {
          const mine: Discrepancy[] = [];
          const out = join(runDir, 'extract');
          const ex = await regfs(['extract', listFile, src, out, '--keep-going', '--json']);
          const note: Found = (check, kind, detail) => void mine.push({ check, kind, detail });
          await judgeWrite(`extract list ${li}`, ex, ex, lines, out, cands, srcProbe, report, note);
          // to-oci resolves as extract does: the same images, with the same digests, each complete in the layout.
          const layout = join(runDir, 'oci');
          const to = await regfs(['to-oci', listFile, src, layout, '--keep-going', '--json']);
          await judgeOci(`to-oci list ${li}`, ex, to, layout, report, note);
          // And back: from-oci of that layout must serve what the source serves, as to-dir then from-dir must.
          const back = join(runDir, 'from-oci');
          const fo = exportedNothing(to) ? to : await regfs(['from-oci', layout, back, '--keep-going', '--json']);
          await mkdir(back, { recursive: true });
          await judgeWrite(`to-oci+from-oci list ${li}`, to, fo, lines, back, cands, srcProbe, report, note);
          // An air-gap bundle of the list, applied to an empty root: judged as extract is.
          const bundleTar = join(runDir, 'bundle.tar');
          const bu = await regfs(['bundle', listFile, src, bundleTar, '--keep-going', '--json']);
          const applied = join(runDir, 'apply');
          const ap = exportedNothing(bu) ? bu : await regfs(['apply', bundleTar, applied, '--keep-going', '--json']);
          await mkdir(applied, { recursive: true });
          await judgeWrite(`bundle+apply list ${li}`, bu, ap, lines, applied, cands, srcProbe, report, note);
          if (!exportedNothing(bu)) await judgeDelta(`bundle --have list ${li}`, listFile, src, applied, ap, runDir, report, note);
          const withReferrers = join(runDir, 'referrers');
          await judgeReferrers(`extract --with-referrers list ${li}`, await regfs(['extract', listFile, src, withReferrers, '--keep-going', '--with-referrers', '--json']), withReferrers, host, report, note);
          return mine;
        })(),
        (async (): Promise<Discrepancy[]> => {
          const mine: Discrepancy[] = [];
          const dir = join(runDir, 'dir');
          const dest = join(runDir, 'from-dir');
          const td = await regfs(['to-dir', listFile, src, dir, '--keep-going', '--json']);
          // Nothing exported, nothing to import: from-dir rightly refuses an input without images.
          const fd = exportedNothing(td) ? td : await regfs(['from-dir', dir, dest, '--keep-going', '--json']);
          await mkdir(dest, { recursive: true });
          await judgeWrite(`to-dir+from-dir list ${li}`, td, fd, lines, dest, cands, srcProbe, report, (check, kind, detail) => void mine.push({ check, kind, detail }));
          return mine;
        })(),
      ]);
      report.discrepancies.push(...chains.flat());
      phase(`list ${li}`);
    }

    if (s3 === undefined) {
      // gc twice and rm, each on its own copy, side by side.
      const target = rmTarget(cands, rand);
      const judged = await Promise.all([
        ...[false, true].map(async (untagged) => {
          const mine: Discrepancy[] = [];
          await judgeGc(untagged, opts.dir, src, cands, srcProbes, report, (check, kind, detail) => void mine.push({ check, kind, detail }));
          return mine;
        }),
        (async (): Promise<Discrepancy[]> => {
          const mine: Discrepancy[] = [];
          if (target !== undefined) await judgeRm(target, await diskCopy(opts.dir, src, 'rm'), cands, srcProbes, report, (check, kind, detail) => void mine.push({ check, kind, detail }));
          return mine;
        })(),
      ]);
      report.discrepancies.push(...judged.flat());
      phase('gc+rm');
    }

    const after = await snapshot([src, outside]);
    report.checks++;
    const changed = [...new Set([...before.keys(), ...after.keys()])].filter((k) => before.get(k) !== after.get(k));
    if (changed.length > 0) found('source', 'the source changed', `the source changed: ${changed.slice(0, 5).map((k) => `${relative(opts.dir, k)} (${before.get(k) ?? 'absent'} -> ${after.get(k) ?? 'absent'})`).join('; ')}`);
  } finally {
    await srcReg?.stop();
    if (opts.keep) report.kept = opts.dir;
    else await rm(opts.dir, { recursive: true, force: true });
    report.ms = Date.now() - started;
  }
  return report;
}

/** The command line that runs this seed again, keeping its files. */
export function reproduction(seed: number, kinds: Kinds, lists: number, s3 = false): string {
  return `npm run fuzz -- --seed ${seed} --damage ${formatKinds(kinds)}${lists === 2 ? '' : ` --lists ${lists}`}${s3 ? ' --s3' : ''} --keep`;
}

/** An S3 server with a bucket for the S3 mode, and its client; `stop` stops both. */
export async function startS3Target(): Promise<{ target: S3Target; stop(): Promise<void> }> {
  const { startS3Server } = await import('../lib/s3-server.js');
  const { S3Service } = await import('../../src/storage/s3.js');
  const { default: pLimit } = await import('p-limit');
  const server = await startS3Server({ buckets: ['fuzz'] });
  const service = new S3Service({ limit: pLimit(16), endpoint: server.endpoint, region: server.region, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
  const target: S3Target = {
    bucket: 'fuzz',
    service,
    env: server.env,
    storage: (prefix) => ({ endpoint: server.endpoint, region: server.region, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, bucket: 'fuzz', rootdirectory: `/${prefix}` }),
  };
  return {
    target,
    async stop() {
      service.destroy();
      await server.stop();
    },
  };
}

/**
 * extract --with-referrers: every referrer the result names is answered by a registry on the
 * output exactly as the source answers it, by digest and by its tag; a rewritten fallback
 * index is served under its tag with its new digest, and every child it lists is served.
 */
async function judgeReferrers(check: string, r: RegfsRun, out: string, srcHost: string, report: SeedReport, found: Found): Promise<void> {
  report.checks++;
  if (r.timedOut) return found(check, 'extract --with-referrers hangs', `${check}: still running after ${REGFS_TIMEOUT_MS / 1000} s (killed)`);
  schemaCheck(check, 'extract', r, report, found);
  type Res = { images?: Array<{ repo: string; referrers?: Array<{ digest: string; tag?: string }> }>; referrers?: { rewritten: Array<{ repo: string; tag: string; digest: string }> } };
  let res: Res;
  try {
    res = JSON.parse(r.stdout) as Res;
  } catch {
    return found(check, 'extract --with-referrers exits without a result', `${check}: exit ${r.code}; stderr: ${r.stderr.trim().split('\n').slice(0, 3).join(' / ')}`);
  }
  const rewritten = new Set((res.referrers?.rewritten ?? []).map((x) => x.digest));
  const asked = (res.images ?? []).flatMap((img) => (img.referrers ?? []).map((x) => ({ repo: img.repo, ...x })));
  if (asked.length === 0) return;
  const reg = await startRegistry({ root: out, readOnly: true });
  try {
    for (const x of asked) {
      report.checks++;
      const outAnswer = await probe(reg.host, x.repo, x.digest, x.digest);
      if (x.tag !== undefined && (await manifestStatus(reg.host, x.repo, x.tag)) !== '200') found(check, 'a referrer tag not served', `${x.repo}:${x.tag}`);
      if (rewritten.has(x.digest)) {
        if (!outAnswer.full) found(check, 'a rewritten referrers index not served in full', `${x.repo}@${x.digest}: ${outAnswer.why ?? ''}`);
        continue;
      }
      const diff = diffProbes(await probe(srcHost, x.repo, x.digest, x.digest), outAnswer);
      if (diff.length > 0) found(check, 'a referrer answered otherwise than the source', `${x.repo}@${x.digest}: ${diff.slice(0, 3).join('; ')}`);
    }
  } finally {
    await reg.stop();
  }
}

/** Judge one writing run (extract, or to-dir then from-dir: `first` refuses, `last` writes). */

/** Judge one writing run (extract, or to-dir then from-dir, to-oci then from-oci: `first` refuses, `last` writes). */
async function judgeWrite(
  check: string,
  first: RegfsRun,
  last: RegfsRun,
  lines: Line[],
  out: string | RegistryS3Storage,
  cands: Ref[],
  srcProbe: (r: Ref) => Promise<Probe>,
  report: SeedReport,
  found: Found,
): Promise<void> {
  const runs = first === last ? [first] : [first, last];
  const results: WriteResult[] = [];
  for (const r of runs) {
    const name = runs.length === 1 ? check : `${check} (${r.command})`;
    report.checks++;
    if (r.timedOut) return found(check, `${runName(name)} hangs`, `${name}: still running after ${REGFS_TIMEOUT_MS / 1000} s (killed)`);
    if (/^\s+at /m.test(r.stderr) || /internal error/.test(r.stderr)) found(check, 'a stack trace', `${name}: a stack trace or internal error: ${r.stderr.trim().split('\n').slice(0, 4).join(' / ')}`);
    let res: WriteResult;
    try {
      res = JSON.parse(r.stdout) as WriteResult;
    } catch {
      return found(check, `${runName(name)} exits ${r.code} without a result`, `${name}: exit ${r.code}, no JSON result; stderr: ${r.stderr.trim().split('\n').slice(0, 3).join(' / ')}`);
    }
    schemaCheck(check, name, r, report, found);
    const problems = res.problems ?? [];
    const wantCode = problems.length === 0 ? 0 : 3;
    if (r.code !== wantCode && !(r.code === 1 && (res.images ?? []).length === 0 && problems.length > 0)) {
      found(check, 'exit code', `${name}: exit ${r.code} with ${problems.length} problems`);
    }
    for (const p of problems) {
      report.checks++;
      const located = (typeof p.path === 'string' && p.path !== '') || (typeof p.file === 'string' && typeof p.line === 'number');
      if (typeof p.code !== 'string' || !/^[A-Z][A-Z0-9_]+$/.test(p.code) || !located) {
        found(check, 'a problem without a code and a path', `${name}: a problem without a code and a path (or list line): ${JSON.stringify(p)}`);
      }
    }
    results.push(res);
  }
  const refusedLines = new Set<number>();
  for (const res of results) for (const p of res.problems ?? []) if (typeof p.line === 'number') refusedLines.add(p.line);
  const written = new Set((results.at(-1)!.images ?? []).map((i) => i.ref ?? ''));
  // An image to-dir exported and from-dir refused (to-dir hashes nothing, from-dir hashes
  // every blob) is refused with from-dir's problem, which names its directory.
  const refusedByImport = new Set<string>();
  if (results.length === 2) {
    for (const img of results[0]!.images ?? []) {
      if (img.ref === undefined || written.has(img.ref)) continue;
      // A dir: image by its directory; a layout's entry by its digest.
      const named = (results[1]!.problems ?? []).some(
        (p) =>
          (img.dir !== undefined && p.path !== undefined && (p.path.includes(`/${img.dir}/`) || p.path.endsWith(`/${img.dir}`))) ||
          (img.dir === undefined && img.digest !== undefined && p.message?.includes(img.digest) === true),
      );
      if (named) refusedByImport.add(img.ref);
      else found(check, `${last.command} drops what ${first.command} exported, no problem names it`, `${img.ref}: ${first.command} exported it, ${last.command} did not import it: ${problemText(results.slice(1))}`);
    }
  }

  const reg = await startRegistry(typeof out === 'string' ? { root: out, readOnly: true } : { readOnly: true, s3: out });
  try {
    const servedClosure = new Set<string>();
    for (const [li, line] of lines.entries()) {
      for (const r of line.refs) {
        const s = await srcProbe(r);
        report.checks++;
        if (written.has(r.key)) {
          const o = await probe(reg.host, r.repo, r.ref, r.expect);
          for (const d of s.manifests) servedClosure.add(`${r.repo}@${d}`);
          servedClosure.add(r.key);
          // A config or layer written is served by digest as a manifest too when its bytes are
          // one (2.8's _layers fallback), as the registry serves it after the same push.
          for (const k of s.answers.keys()) {
            const blob = /^(?:HEAD|GET) blobs (.+)\/([a-z0-9]+:[0-9a-f]+)$/.exec(k);
            if (blob !== null) servedClosure.add(`${blob[1]!}@${blob[2]!}`);
          }
          const diff = diffProbes(s, o);
          report.checks += Math.max(s.answers.size, o.answers.size);
          if (diff.length > 0) found(check, `written, answers differ: ${diffKind(diff[0]!)}`, `${r.key} (line ${li + 1} "${line.text}"): written, but ${diff.length} answers differ from the source's (source | output): ${diff.slice(0, 3).join('; ')}`);
        } else if (s.full) {
          found(check, `served in full by the source, not written: ${problemCodes(results, li + 1)}`, `${r.key} (line ${li + 1} "${line.text}"): the source serves it in full, regfs did not write it: ${problemText(results, li + 1)}`);
        } else if (!refusedLines.has(li + 1) && !refusedByImport.has(r.key)) {
          found(check, 'not written, no problem names the line', `${r.key} (line ${li + 1} "${line.text}"): not written and no problem names line ${li + 1} (the source: ${s.why})`);
        }
      }
    }
    for (const r of cands) {
      if (servedClosure.has(r.key)) continue;
      report.checks++;
      const status = await manifestStatus(reg.host, r.repo, r.ref);
      if (status === '200') found(check, 'not written, yet served', `${r.key}: not written, yet the output serves it`);
    }
  } finally {
    await reg.stop();
  }
}

/**
 * gc --apply on a copy of the source and of what its symlinks lead to, laid out as they are
 * (`<copy>/src`, `<copy>/outside`), so the relative symlinks resolve inside the copy and the
 * two gc runs share nothing with each other or with the source: nothing served before stops
 * being served. With `--delete-untagged`, on another copy, the same for every tag (untagged
 * manifests may go; what a tag reaches, index children included, may not).
 */
async function judgeGc(untagged: boolean, dir: string, src: string, cands: Ref[], srcProbes: Map<string, Probe>, report: SeedReport, found: Found): Promise<void> {
  const copy = (await diskCopy(dir, src, untagged ? 'gc-untagged' : 'gc')).root;
  const name = untagged ? 'gc --delete-untagged --apply' : 'gc --apply';
  const check = untagged ? 'gc -m' : 'gc';
  // The registry's own collector, as a dry run on the same copy: the blobs it keeps, where it
  // runs (it stops on some damage: a tag that is a file, a repository name it cannot parse;
  // and it waits forever on a FIFO, so not where there is one).
  const blobsBefore = blobDigests(copy);
  const fifo = report.state.some((l) => l.startsWith('damage fifo '));
  const theirs = fifo ? undefined : await registryGarbageCollectDryRun(copy, { deleteUntagged: untagged }).catch(() => undefined);
  const r = await regfs(['gc', copy, ...(untagged ? ['--delete-untagged'] : []), '--apply', '--json']);
  report.checks++;
  if (r.timedOut) return found(check, 'gc hangs', `${name}: still running after ${REGFS_TIMEOUT_MS / 1000} s (killed)`);
  if (theirs !== undefined) {
    const eligible = new Set(theirs.blobsEligible);
    const after = new Set(blobDigests(copy));
    const lost = blobsBefore.filter((d) => !eligible.has(d) && !after.has(d));
    report.checks++;
    if (lost.length > 0) found(check, "a blob the registry's garbage-collect keeps is deleted", `${name} deleted ${lost.length} blobs docker-registry garbage-collect${untagged ? ' --delete-untagged' : ''} keeps: ${lost.slice(0, 3).join(', ')}`);
  }
  if (/^\s+at /m.test(r.stderr) || /internal error/.test(r.stderr)) found(check, 'a stack trace', `${name}: a stack trace or internal error: ${r.stderr.trim().split('\n').slice(0, 4).join(' / ')}`);
  if (r.code !== 0 && r.code !== 1) found(check, 'exit code', `${name}: exit ${r.code}: ${r.stderr.trim().split('\n').slice(0, 3).join(' / ')}`);
  // What regfs did not write stays: a stray under blobs/ or beside a link is someone's.
  for (const line of report.state.filter((l) => /^damage (blob|link)-stray /.test(l))) {
    report.checks++;
    const stray = join(copy, line.replace(/^damage (blob|link)-stray /, ''));
    if (!existsSync(stray)) found(check, 'a stray file regfs did not write is deleted', `${name} deleted ${stray}, which is no blob and not regfs's`);
  }
  schemaCheck(check, name, r, report, found);
  try {
    for (const p of (JSON.parse(r.stdout) as WriteResult).problems ?? []) {
      report.checks++;
      if (typeof p.code !== 'string' || !/^[A-Z][A-Z0-9_]+$/.test(p.code) || typeof p.path !== 'string' || p.path === '') {
        found(check, 'a problem without a code and a path', `${name}: a problem without a code and a path: ${JSON.stringify(p)}`);
      }
    }
  } catch {
    if (r.code === 0) found(check, 'gc exits 0 without a result', `${name}: exit 0 without a JSON result`);
  }
  const reg = await startRegistry({ root: copy, readOnly: true });
  try {
    for (const c of untagged ? cands.filter((x) => x.expect === undefined) : cands) {
      const s = srcProbes.get(probeKey(c))!;
      if (![...s.answers.values()].some((a) => a.startsWith('200 '))) continue;
      const after = await probe(reg.host, c.repo, c.ref, c.expect);
      const lost: string[] = [];
      for (const [req, a] of s.answers) {
        report.checks++;
        if (a.startsWith('200 ') && after.answers.get(req) !== a) lost.push(`${req}: ${a} | ${after.answers.get(req) ?? 'not asked'}`);
      }
      if (lost.length > 0) found(check, `an answer that was 200 changed: ${diffKind(lost[0]!)}`, `${c.key}: ${name} changed ${lost.length} answers that were 200 (before | after): ${lost.slice(0, 3).join('; ')}`);
    }
  } finally {
    await reg.stop();
  }
}

/**
 * ls of the source, against the registry serving it: the repositories in the order of its
 * catalog, each one's tags as its tag list names them, and each tag the registry serves with
 * the digest it serves it by (docs/ls-inspect.md: ls shows what the registry would serve).
 */
async function judgeLs(root: string, env: Record<string, string> | undefined, host: string, srcProbes: Map<string, Probe>, report: SeedReport, found: Found): Promise<void> {
  const check = 'ls';
  const r = await regfs(['ls', root, '--json'], env);
  report.checks++;
  if (r.timedOut) return found(check, 'ls hangs', `ls: still running after ${REGFS_TIMEOUT_MS / 1000} s (killed)`);
  if (/^\s+at /m.test(r.stderr) || /internal error/.test(r.stderr)) found(check, 'a stack trace', `ls: a stack trace or internal error: ${r.stderr.trim().split('\n').slice(0, 4).join(' / ')}`);
  schemaCheck(check, 'ls', r, report, found);
  let repos: Array<{ name: string; tags: Array<{ tag: string; digest?: string }> }>;
  try {
    repos = (JSON.parse(r.stdout) as { repositories?: typeof repos }).repositories ?? [];
  } catch {
    return found(check, 'ls exits without a result', `ls: exit ${r.code}; stderr: ${r.stderr.trim().split('\n').slice(0, 3).join(' / ')}`);
  }
  const listed = await catalog(host);
  report.checks++;
  const names = repos.map((x) => x.name);
  if (listed !== undefined && listed.join('\n') !== names.join('\n')) found(check, 'repositories other than the catalog', `ls: ${names.join(', ')} | catalog: ${listed.join(', ')}`);
  for (const repo of repos) {
    const tags = (await tagsList(host, repo.name)).sort();
    const mine = repo.tags.map((t) => t.tag).sort();
    report.checks++;
    if (tags.join('\n') !== mine.join('\n')) found(check, 'tags other than the tag list', `${repo.name}: ls ${mine.join(', ')} | tags/list ${tags.join(', ')}`);
    for (const t of repo.tags) {
      // The oracle's answer where it asked already (a FIFO makes every request wait it out).
      const asked = srcProbes.get(probeKey({ key: '', repo: repo.name, ref: t.tag, expect: undefined }));
      let served = asked?.digest;
      if (asked === undefined) {
        const a = await servedDigest(host, repo.name, t.tag);
        if (a.status === '200') served = a.digest ?? undefined;
      }
      report.checks++;
      if (served !== undefined && served !== t.digest) found(check, 'a tag with another digest than the registry serves', `${repo.name}:${t.tag}: ls ${t.digest ?? 'none'} | served ${served}`);
    }
  }
}

/** What rm is asked to remove: a tag, a manifest by digest, or a whole repository. */
interface RmTarget {
  arg: string;
  repo: string;
  tag?: string;
  digest?: string;
}

/** A random reference of the state for rm: a tag or a digest as it is, or now and then its whole repository. */
function rmTarget(cands: Ref[], rand: () => number): RmTarget | undefined {
  if (cands.length === 0) return undefined;
  const c = cands[Math.floor(rand() * cands.length)]!;
  if (rand() < 0.2) return { arg: c.repo, repo: c.repo };
  return c.expect !== undefined ? { arg: `${c.repo}@${c.ref}`, repo: c.repo, digest: c.ref } : { arg: `${c.repo}:${c.ref}`, repo: c.repo, tag: c.ref };
}

/** A copy of the source for a command that changes it (a directory, or a prefix on S3): how to start a registry on it, and what it holds. */
interface StateCopy {
  /** The root regfs is given. */
  root: string;
  env?: Record<string, string>;
  registry: { root: string } | { s3: RegistryS3Storage };
  /** Every file (or key) of the copy and what it holds; compared before and after a refusal. */
  state(): Promise<Map<string, string>>;
}

/**
 * A copy of the source and of what its symbolic links lead to in `dir/<name>` (relative links
 * resolve to the copy's own `outside/`). Its state leaves out the times of directories: a
 * writing run's lock comes and goes in the root.
 */
async function diskCopy(dir: string, src: string, name: string): Promise<StateCopy> {
  const base = join(dir, name);
  const copy = join(base, 'src');
  await mkdir(base, { recursive: true });
  await copyTree(src, copy);
  await copyTree(join(dir, 'outside'), join(base, 'outside'));
  const roots = [copy, join(base, 'outside')];
  return {
    root: copy,
    registry: { root: copy },
    state: async () => new Map([...(await snapshot(roots))].map(([k, v]) => [relative(base, k), v.startsWith('dir ') ? 'dir' : v])),
  };
}

/**
 * rm on a copy of the state (on disk, or on S3). Where it refuses, the copy is unchanged.
 * Where it deletes, what it deleted is no longer served and no tag list names a removed tag:
 * the tag; for a digest, the manifest and every tag that resolved to it (as the registry's
 * manifest DELETE untags them); for a repository, all of it. Every other request the registry
 * answered 200 gets the same answer: a manifest that an index of the repository names, or
 * that a damaged repository may name, is not deleted without --force, and a second name of a
 * directory (a linked repository) is not deleted through either name.
 */
async function judgeRm(target: RmTarget, place: StateCopy, cands: Ref[], srcProbes: Map<string, Probe>, report: SeedReport, found: Found): Promise<void> {
  const name = `rm ${target.arg}`;
  const check = 'rm';
  const before = await place.state();
  const r = await regfs(['rm', place.root, target.arg, '--json'], place.env);
  report.checks++;
  if (r.timedOut) return found(check, 'rm hangs', `${name}: still running after ${REGFS_TIMEOUT_MS / 1000} s (killed)`);
  if (/^\s+at /m.test(r.stderr) || /internal error/.test(r.stderr)) found(check, 'a stack trace', `${name}: a stack trace or internal error: ${r.stderr.trim().split('\n').slice(0, 4).join(' / ')}`);
  if (r.code !== 0 && r.code !== 1 && r.code !== 2) found(check, 'exit code', `${name}: exit ${r.code}: ${r.stderr.trim().split('\n').slice(0, 3).join(' / ')}`);
  schemaCheck(check, name, r, report, found);
  if (r.code !== 0) {
    const after = await place.state();
    const changed = [...new Set([...before.keys(), ...after.keys()])].filter((k) => before.get(k) !== after.get(k));
    report.checks++;
    if (changed.length > 0) found(check, 'a refused rm changed the tree', `${name} exited ${r.code} but changed ${changed.slice(0, 3).join(', ')}`);
    // A tag the registry serves can be removed, unless its directory has a second name (then
    // deleting it would delete the other name's tag too).
    const served = target.tag !== undefined && cands.some((c) => c.repo === target.repo && c.ref === target.tag && c.expect === undefined && srcProbes.get(probeKey(c))?.digest !== undefined);
    let code: string | undefined;
    try {
      code = (JSON.parse(r.stdout) as { error?: { code?: string } }).error?.code;
    } catch {
      // judged by the schema check
    }
    report.checks++;
    if (served && code !== 'SYMLINK_ALIAS') found(check, `a tag the registry serves refused: ${code ?? `exit ${r.code}`}`, `${name} exited ${r.code} (${code ?? 'no code'}): ${r.stderr.trim().split('\n')[0]}`);
    return;
  }
  const removed = (c: Ref): boolean =>
    c.repo === target.repo &&
    (target.tag !== undefined ? c.expect === undefined && c.ref === target.tag : target.digest !== undefined ? c.ref === target.digest || srcProbes.get(probeKey(c))?.digest === target.digest : true);
  const reg = await startRegistry({ ...place.registry, readOnly: true });
  try {
    for (const c of cands) {
      const s = srcProbes.get(probeKey(c))!;
      report.checks++;
      if (removed(c)) {
        const a = await manifestStatus(reg.host, c.repo, c.ref);
        if (a === '200') found(check, 'a removed reference is still served', `${c.key}: ${name} exited 0, and the registry still serves it`);
        continue;
      }
      if (![...s.answers.values()].some((a) => a.startsWith('200 '))) continue;
      const after = await probe(reg.host, c.repo, c.ref, c.expect);
      const lost: string[] = [];
      for (const [req, a] of s.answers) if (a.startsWith('200 ') && after.answers.get(req) !== a) lost.push(`${req}: ${a} | ${after.answers.get(req) ?? 'not asked'}`);
      if (lost.length > 0) found(check, `an answer that was 200 changed: ${diffKind(lost[0]!)}`, `${c.key}: ${name} changed ${lost.length} answers that were 200 (before | after): ${lost.slice(0, 3).join('; ')}`);
    }
    report.checks++;
    const listed = await tagsList(reg.host, target.repo);
    const stale = cands.filter((c) => removed(c) && c.expect === undefined && listed.includes(c.ref));
    if (stale.length > 0) found(check, 'a removed tag is still listed', `${name}: tags/list of ${target.repo} still names ${stale.map((c) => c.ref).join(', ')}`);
  } finally {
    await reg.stop();
  }
}

/** The digests of the blobs under a root whose `data` exists (symbolic links followed), sorted. */
function blobDigests(root: string): string[] {
  const base = join(v2Of(root), 'blobs', 'sha256');
  const out: string[] = [];
  const names = (d: string): string[] => {
    try {
      return readdirSync(d);
    } catch {
      return [];
    }
  };
  for (const fan of names(base)) for (const hex of names(join(base, fan))) if (existsSync(join(base, fan, hex, 'data'))) out.push(`sha256:${hex}`);
  return out.sort();
}

/**
 * Every reference worth asking about: each repository directory's tags and revisions, and
 * every generator step's (deleted ones too); and the tag directories of each repository.
 */
async function candidates(root: string, gen: Generated): Promise<{ refs: Ref[]; tagDirs: Map<string, string[]> }> {
  const out = new Map<string, Ref>();
  const tagDirs = new Map<string, string[]>();
  const add = (repo: string, ref: string): void => {
    const digest = ref.startsWith('sha256:');
    const key = `${repo}${digest ? '@' : ':'}${ref}`;
    if (!out.has(key)) out.set(key, { key, repo, ref, expect: digest ? ref : undefined });
  };
  const repos = join(v2Of(root), 'repositories');
  const walk = async (d: string, depth: number): Promise<void> => {
    if (depth > 6) return;
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      // The registry follows symbolic links (a second name for a repository is a repository).
      if (!e.isDirectory() && !(e.isSymbolicLink() && (await stat(p).catch(() => undefined))?.isDirectory() === true)) continue;
      if (e.name === '_manifests') {
        const repo = relative(repos, d);
        const tags = (await readdir(join(p, 'tags')).catch(() => [])).sort();
        tagDirs.set(repo, tags);
        for (const t of tags) add(repo, t);
        for (const h of await readdir(join(p, 'revisions', 'sha256')).catch(() => [])) add(repo, `sha256:${h}`);
      } else if (!e.name.startsWith('_')) {
        await walk(p, depth + 1);
      }
    }
  };
  await walk(repos, 0);
  for (const s of gen.steps) {
    add(s.repo, s.ref);
    add(s.repo, s.digest);
  }
  return { refs: [...out.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)), tagDirs };
}

/**
 * 1 to 4 lines: tags, digests, `repo:tag@digest` (the right digest or another of the
 * repository's), now and then a whole repository (standing for every tag directory and every
 * tag the registry lists) or a tag that does not exist. A reference
 * appears in one line only, so each line's fate can be read from the result.
 */
function randomList(cands: Ref[], tagLists: Map<string, string[]>, probes: Map<string, Probe>, rand: () => number): Line[] {
  const lines: Line[] = [];
  const used = new Set<string>();
  const wholeRepos = new Set<string>();
  const n = 1 + Math.floor(rand() * 4);
  for (const c of shuffle(cands, rand)) {
    if (lines.length >= n) break;
    if (used.has(c.key) || wholeRepos.has(c.repo)) continue;
    const roll = rand();
    if (roll < 0.12 && !lines.some((l) => l.refs.some((r) => r.repo === c.repo))) {
      const tags = tagLists.get(c.repo) ?? [];
      wholeRepos.add(c.repo);
      lines.push({ text: c.repo, refs: tags.map((t) => ({ key: `${c.repo}:${t}`, repo: c.repo, ref: t, expect: undefined })) });
      continue;
    }
    if (roll < 0.2 && c.expect === undefined) {
      const digests = [...new Set(cands.filter((x) => x.repo === c.repo && x.expect !== undefined).map((x) => x.expect!))];
      const right = probes.get(probeKey(c))?.digest;
      const d = right !== undefined && rand() < 0.7 ? right : digests[Math.floor(rand() * digests.length)];
      if (d !== undefined) {
        used.add(c.key);
        lines.push({ text: `${c.key}@${d}`, refs: [{ ...c, expect: d }] });
        continue;
      }
    }
    if (roll < 0.25) {
      const key = `${c.repo}:absent`;
      if (!used.has(key)) {
        used.add(key);
        lines.push({ text: key, refs: [{ key, repo: c.repo, ref: 'absent', expect: undefined }] });
        continue;
      }
    }
    used.add(c.key);
    lines.push({ text: c.key, refs: [c] });
  }
  return lines;
}

/**
 * to-oci against extract on the same list (extract is judged by the registry): the same
 * images (references and digests), exit code and problem codes; then the layout itself: every
 * index.json entry's manifests, children, configs and layers present in blobs/, each file
 * hashing to its name, and one named entry per tagged image.
 */
async function judgeOci(check: string, ex: RegfsRun, oci: RegfsRun, layout: string, report: SeedReport, found: Found): Promise<void> {
  report.checks++;
  if (oci.timedOut) return found(check, 'to-oci hangs', `${check}: still running after ${REGFS_TIMEOUT_MS / 1000} s (killed)`);
  if (/^\s+at /m.test(oci.stderr) || /internal error/.test(oci.stderr)) found(check, 'a stack trace', `${check}: ${oci.stderr.trim().split('\n').slice(0, 4).join(' / ')}`);
  schemaCheck(check, 'to-oci', oci, report, found);
  let a: { images?: Array<{ ref: string; digest: string }>; problems?: Array<{ code: string }> };
  let b: typeof a;
  try {
    a = JSON.parse(ex.stdout) as typeof a;
    b = JSON.parse(oci.stdout) as typeof a;
  } catch {
    return found(check, 'to-oci exits without a result', `${check}: exit ${oci.code}; stderr: ${oci.stderr.trim().split('\n').slice(0, 3).join(' / ')}`);
  }
  report.checks++;
  const imgs = (r: typeof a): string[] => (r.images ?? []).map((i) => `${i.ref} ${i.digest}`).sort();
  const codes = (r: typeof a): string[] => (r.problems ?? []).map((p) => p.code).sort();
  if (oci.code !== ex.code || JSON.stringify(imgs(a)) !== JSON.stringify(imgs(b)) || JSON.stringify(codes(a)) !== JSON.stringify(codes(b))) {
    found(check, 'to-oci disagrees with extract', `${check}: exit ${oci.code} (extract ${ex.code}); images ${imgs(b).length} (extract ${imgs(a).length}); problems ${codes(b).join(',')} (extract ${codes(a).join(',')})`);
  }
  if ((b.images ?? []).length === 0) return;
  report.checks++;
  const blob = (d: string): string => join(layout, 'blobs', d.replace(':', '/'));
  const missing: string[] = [];
  try {
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: Digest; size: number; annotations?: Record<string, string> }> };
    const named = new Set(index.manifests.flatMap((e) => (e.annotations?.['org.opencontainers.image.ref.name'] === undefined ? [] : [`${e.annotations['org.opencontainers.image.ref.name']} ${e.digest}`])));
    for (const i of b.images ?? []) if (!i.ref.includes('@') && !named.has(`${i.ref} ${i.digest}`)) missing.push(`no entry ${i.ref}`);
    const work: Array<{ digest: Digest; size: number }> = index.manifests.map((e) => ({ digest: e.digest, size: e.size }));
    const seen = new Set<string>();
    while (work.length > 0) {
      const d = work.pop()!;
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      const raw = await readFile(blob(d.digest)).catch(() => undefined);
      if (raw === undefined || digestOf(raw) !== d.digest || raw.length !== d.size) {
        missing.push(`manifest ${d.digest}`);
        continue;
      }
      const m = parseManifestContent(raw, d.digest, blob(d.digest));
      for (const c of m.manifests) work.push({ digest: c.digest, size: c.size });
      for (const r of referencedBlobs(m)) {
        if (r.urls !== undefined || seen.has(r.digest)) continue;
        seen.add(r.digest);
        const data = await readFile(blob(r.digest)).catch(() => undefined);
        if (data === undefined || digestOf(data) !== r.digest) missing.push(`blob ${r.digest}`);
      }
    }
  } catch (err) {
    missing.push(`unreadable layout: ${(err as Error).message}`);
  }
  if (missing.length > 0) found(check, 'to-oci layout incomplete', `${check}: ${missing.length} missing or wrong: ${missing.slice(0, 4).join('; ')}`);
}

/** The run's --json output is one document of its command's schema (schemas/), with its exit code. */
/**
 * The same list bundled again against the inventory of what apply wrote: the far side holds
 * every blob of every image apply wrote, so the delta carries none of theirs (only the
 * blobs of images apply refused), and applying it changes nothing of what was there.
 */
async function judgeDelta(check: string, listFile: string, src: string, applied: string, ap: RegfsRun, runDir: string, report: SeedReport, found: Found): Promise<void> {
  const inv = join(runDir, 'have.inv');
  const iv = await regfs(['inventory', applied, '-o', inv, '--json']);
  report.checks++;
  schemaCheck(check, 'inventory', iv, report, found);
  if (iv.code !== 0) return found(check, 'inventory of an applied root fails', `${check}: inventory exit ${iv.code}: ${iv.stderr.trim().split('\n').slice(0, 2).join(' / ')}`);
  const delta = join(runDir, 'delta.tar');
  const de = await regfs(['bundle', listFile, src, delta, '--have', inv, '--keep-going', '--json']);
  report.checks++;
  schemaCheck(check, 'bundle', de, report, found);
  let carried: number;
  try {
    carried = (JSON.parse(de.stdout) as { plan: { blobsCarried: number } }).plan.blobsCarried;
  } catch {
    return found(check, 'bundle --have exits without a result', `${check}: exit ${de.code}; stderr: ${de.stderr.trim().split('\n').slice(0, 3).join(' / ')}`);
  }
  let appliedAll = false;
  try {
    appliedAll = ap.code === 0 && (JSON.parse(ap.stdout) as WriteResult).problems?.length === 0;
  } catch {
    appliedAll = false;
  }
  if (appliedAll && carried !== 0) found(check, 'a delta against the applied root carries blobs', `${check}: apply wrote every image, yet the delta against its inventory carries ${carried} blobs`);
  const before = await snapshot([applied]);
  const again = await regfs(['apply', delta, applied, '--keep-going', '--json']);
  report.checks++;
  schemaCheck(check, 'apply', again, report, found);
  if (again.timedOut) return found(check, 'apply hangs', `${check}: still running after ${REGFS_TIMEOUT_MS / 1000} s (killed)`);
  if (appliedAll && again.code !== 0) found(check, 'the delta does not apply', `${check}: exit ${again.code}: ${again.stderr.trim().split('\n').slice(0, 2).join(' / ')}`);
  const after = await snapshot([applied]);
  // The lock's directory and the staging directory's parent get new mtimes; every file stays as it was.
  const changed = [...new Set([...before.keys(), ...after.keys()])].filter((k) => before.get(k) !== after.get(k) && !(before.get(k)?.startsWith('dir ') === true && after.get(k)?.startsWith('dir ') === true));
  if (appliedAll && changed.length > 0) found(check, 'a delta of nothing new changes the root', `${check}: ${changed.slice(0, 4).map((k) => relative(runDir, k)).join('; ')}`);
}

function schemaCheck(check: string, name: string, r: RegfsRun, report: SeedReport, found: Found): void {
  report.checks++;
  try {
    checkJsonDocument(r.command, r.stdout, r.code ?? -1);
  } catch (err) {
    found(check, 'JSON output not as its schema says', `${name}: ${(err as Error).message.slice(0, 600)}`);
  }
}

function exportedNothing(r: RegfsRun): boolean {
  try {
    return ((JSON.parse(r.stdout) as WriteResult).images ?? []).length === 0;
  } catch {
    return false;
  }
}

function probeKey(r: Ref): string {
  return `${r.repo} ${r.ref} ${r.expect ?? ''}`;
}

/** "GET blobs 500 -> 200" from a line of diffProbes ("GET blobs repo/sha256:…: 500 … | 200 …"). */
function diffKind(line: string): string {
  const m = /^(HEAD|GET) (manifests|blobs) \S+(?: \[(\w+)\])?: (\S+).* \| (\S+)/.exec(line);
  return m === null ? line.slice(0, 40) : `${m[1]} ${m[2]}${m[3] === undefined ? '' : ` [${m[3]}]`} ${m[4]} -> ${m[5]}`;
}

/** "extract", "to-dir", "from-dir", "to-oci", "from-oci", "bundle", "apply" from a run's name. */
function runName(name: string): string {
  return /\(((?:to|from)-(?:dir|oci)|bundle|apply)\)$/.exec(name)?.[1] ?? name.split(' ')[0]!;
}

/** The codes of the problems naming list line `line`, or "no problem". */
function problemCodes(results: WriteResult[], line: number): string {
  const codes = [...new Set(results.flatMap((r) => r.problems ?? []).filter((p) => p.line === line).map((p) => p.code ?? '?'))].sort();
  return codes.length === 0 ? 'no problem' : codes.join(', ');
}

/** The problems of the runs, those naming list line `line` (if given) only. */
function problemText(results: WriteResult[], line?: number): string {
  const ps = results.flatMap((r) => r.problems ?? []).filter((p) => line === undefined || p.line === line);
  return ps.length === 0 ? 'no problem names it' : ps.slice(0, 2).map((p) => `[${p.code}] ${p.message}`).join(' / ');
}

/** Run the built CLI with a time limit; a run still going then is killed and marked. */
function regfs(args: string[], env: Record<string, string> = {}): Promise<RegfsRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [REGFS_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0', ...env } });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, REGFS_TIMEOUT_MS);
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ command: args[0]!, code, stdout, stderr, timedOut });
    });
  });
}

/** The source tree uploaded key for key under `prefix`; its URL and its keys (size and ETag). */
async function uploadSource(s3: S3Target, src: string, prefix: string): Promise<{ url: string; keys: Map<string, string> }> {
  const disk = new FsStorage(storageRoot(src));
  const url = `s3://${s3.bucket}/${prefix}`;
  const root = s3.service.root(url);
  for await (const page of disk.walk(disk.v2)) {
    await Promise.all(page.map((f) => root.placeBlob(disk, f.path, `${root.v2}/${relative(disk.v2, f.path)}`, f.size, { absent: true })));
  }
  return { url, keys: await keysOf(s3.service, url) };
}

/** Every key below a root's storage with its size and content hash. */
async function keysOf(service: S3Service, url: string): Promise<Map<string, string>> {
  const root = service.root(url);
  const out = new Map<string, string>();
  for await (const page of root.walk(root.v2)) {
    for (const f of page) {
      const h = createHash('sha256');
      for await (const c of (await root.reader(f.path)) as AsyncIterable<Buffer>) h.update(c);
      out.set(f.path, `${f.size} ${h.digest('hex')}`);
    }
  }
  return out;
}

/** Type, mode, mtime, size and content hash of every entry under the roots; FIFOs are never opened. */
async function snapshot(roots: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    const meta = `${st.mode.toString(8)} ${st.mtimeMs}`;
    if (st.isDirectory()) {
      out.set(p, `dir ${meta}`);
      for (const name of (await readdir(p)).sort()) await walk(join(p, name));
    } else if (st.isSymbolicLink()) {
      out.set(p, `symlink ${await readlink(p)}`);
    } else if (st.isFile()) {
      out.set(p, `file ${meta} ${st.size} ${createHash('sha256').update(await readFile(p)).digest('hex')}`);
    } else {
      out.set(p, `other ${meta}`);
    }
  };
  for (const r of roots) await walk(r);
  return out;
}
