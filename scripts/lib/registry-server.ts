/**
 * Run Debian's `docker-registry` (Distribution 2.8.2) on loopback for tests and fixtures, with
 * the config of storage-formats.md §3.1: no auth, no upload purging, `REGISTRY_*` variables
 * cleared. Its storage is a directory, or (option `s3`) a bucket prefix through its `s3`
 * driver (docs/s3.md). Every server is stopped by its PID.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

/** The registry binary the tests run. */
export const REGISTRY_BIN = '/usr/bin/docker-registry';

/** A running registry on 127.0.0.1. */
export interface RegistryServer {
  port: number;
  /** `127.0.0.1:PORT`, for `docker://HOST/name:tag` references. */
  host: string;
  stop(): Promise<void>;
}

/**
 * S3 storage for the registry (`storage.s3` of 2.8.2): a bucket that exists, and a
 * rootdirectory in it. Path-style addressing is what 2.8.2 does whenever `regionendpoint` is
 * set (it has no `forcepathstyle` key).
 */
export interface RegistryS3Storage {
  /** `http://HOST:PORT` of the S3 server. */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  /** The registry's `rootdirectory` (the key prefix), such as `/reg`; '' for none. */
  rootdirectory: string;
  /**
   * Blob GETs answer 307 to a presigned URL on the S3 server (the registry's default); false
   * (the default here): the registry streams blobs itself (`storage.redirect.disable`).
   */
  redirect?: boolean;
}

/** Options for one registry instance: `root` (a directory) or `s3`. */
export interface RegistryOptions {
  /** The `rootdirectory`; the registry adds `docker/registry/v2` itself. */
  root?: string;
  /** Storage on S3 instead of a directory. */
  s3?: RegistryS3Storage;
  /** `storage.maintenance.readonly`: PUT/POST/DELETE answer 405. */
  readOnly?: boolean;
  /** `compatibility.schema1.enabled`, needed to push schema1. */
  schema1?: boolean;
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const PORT_ATTEMPTS = 5;

/** Start a registry on a free loopback port and wait until `GET /v2/` answers. */
export async function startRegistry(opts: RegistryOptions): Promise<RegistryServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freePort();
    const configDir = await mkdtemp(join(tmpdir(), 'regfs-registry-'));
    const config = join(configDir, 'config.yml');
    await writeFile(config, registryConfig({ ...opts, addr: `127.0.0.1:${port}` }));
    const child = spawn(REGISTRY_BIN, ['serve', config], { env: registryEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const exited = new Promise<void>((res) => {
      child.once('exit', () => res());
      child.once('error', (err) => {
        stderr += String(err);
        res();
      });
    });
    const stop = async (): Promise<void> => {
      await killAndWait(child, exited);
      await rm(configDir, { recursive: true, force: true });
    };
    try {
      await waitUntilServing(`127.0.0.1:${port}`, child, exited, () => stderr);
      return { port, host: `127.0.0.1:${port}`, stop };
    } catch (err) {
      await stop();
      lastError = err;
      if (!/address already in use/.test(stderr)) break;
    }
  }
  throw lastError;
}

/** Parse result of `docker-registry garbage-collect --dry-run`. */
export interface GcDryRun {
  output: string;
  /** The digests of every line `blob eligible for deletion: <digest>`, in output order. */
  blobsEligible: string[];
  /** The digests of every line `manifest eligible for deletion: <digest>` (only with `deleteUntagged`). */
  manifestsEligible: string[];
}

/** Run `docker-registry garbage-collect --dry-run [-m]` on a registry root, or on S3 storage (binds no port). */
export async function registryGarbageCollectDryRun(root: string | { s3: RegistryS3Storage }, opts: { deleteUntagged?: boolean } = {}): Promise<GcDryRun> {
  const configDir = await mkdtemp(join(tmpdir(), 'regfs-gc-'));
  try {
    const config = join(configDir, 'config.yml');
    await writeFile(config, registryConfig({ ...(typeof root === 'string' ? { root } : root), addr: '127.0.0.1:0' }));
    const args = ['garbage-collect', '--dry-run', ...(opts.deleteUntagged === true ? ['--delete-untagged'] : []), config];
    let output: string;
    try {
      // A bound: the registry's collector waits forever on a link file that is a FIFO.
      const r = await promisify(execFile)(REGISTRY_BIN, args, { env: registryEnv(), maxBuffer: 64 << 20, timeout: 60_000, killSignal: 'SIGKILL' });
      output = r.stdout + r.stderr;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`docker-registry ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    const eligible = (what: string): string[] =>
      [...output.matchAll(new RegExp(`^${what} eligible for deletion: (\\S+)$`, 'gm'))].map((m) => m[1]!);
    return { output, blobsEligible: eligible('blob'), manifestsEligible: eligible('manifest') };
  } finally {
    await rm(configDir, { recursive: true, force: true });
  }
}

/**
 * The config YAML of §3.1 (JSON is valid YAML, so no quoting problems with paths). With S3 it
 * holds the secret key: it is written into a directory only its owner reads (mkdtemp, 0700).
 */
function registryConfig(o: RegistryOptions & { addr: string }): string {
  if ((o.root === undefined) === (o.s3 === undefined)) throw new Error('startRegistry: give root or s3, not both or neither');
  const s3 = o.s3;
  const driver =
    s3 === undefined
      ? { filesystem: { rootdirectory: resolve(o.root!) } }
      : {
          s3: {
            region: s3.region,
            regionendpoint: s3.endpoint,
            bucket: s3.bucket,
            accesskey: s3.accessKeyId,
            secretkey: s3.secretAccessKey,
            secure: s3.endpoint.startsWith('https:'),
            v4auth: true,
            rootdirectory: s3.rootdirectory,
          },
          redirect: { disable: s3.redirect !== true },
        };
  const config = {
    version: '0.1',
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      ...driver,
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false }, readonly: { enabled: o.readOnly === true } },
    },
    http: { addr: o.addr },
    ...(o.schema1 === true ? { compatibility: { schema1: { enabled: true } } } : {}),
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/**
 * This process's environment without `REGISTRY_*`, which would override the config file, and
 * without `AWS_CA_BUNDLE`: with it set, 2.8.2's AWS SDK (Go, v1) panics at start
 * (`LoadCustomCABundleError: ... HTTPClient's transport unsupported type`).
 */
function registryEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_') && k !== 'AWS_CA_BUNDLE'));
}

/** A port the kernel just handed out on 127.0.0.1 (it may be taken again before use: callers retry). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((res, rej) => srv.once('error', rej).listen(0, '127.0.0.1', res));
  const addr = srv.address();
  await new Promise<void>((res) => srv.close(() => res()));
  if (addr === null || typeof addr === 'string') throw new Error('no port from listen(0)');
  return addr.port;
}

async function waitUntilServing(host: string, child: ChildProcess, exited: Promise<void>, stderr: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let gone = false;
  void exited.then(() => (gone = true));
  while (!gone && Date.now() < deadline) {
    try {
      const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const why = gone ? `exited with code ${child.exitCode ?? child.signalCode}` : `did not answer GET /v2/ within ${START_TIMEOUT_MS} ms`;
  throw new Error(`docker-registry on ${host} ${why}; stderr:\n${stderr()}`);
}

async function killAndWait(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
