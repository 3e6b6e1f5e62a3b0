/**
 * A throw-away S3 server for tests: Ceph's RADOS Gateway (Debian `radosgw` 16.2) on a one-node
 * cluster (one mon, one memstore OSD, cephx off, no mgr) on 127.0.0.1, every byte of its state
 * in a temp directory. It is the S3 server the real registry's `s3` driver can push to
 * (docs/s3.md); starting it takes about 5 s on two cores.
 *
 * The recipe: the mon on a free port (msgr2 only), the OSD on ports of a random range (Ceph
 * takes free ones in it), radosgw on a free port with `tcp_nodelay=1` (without it every GET
 * with a body waits ~45 ms: Nagle and delayed ACK). radosgw then needs
 * `ms_mon_client_mode = crc secure` (its mon session is cephx-secured by default; with cephx
 * off every mon connection fails with -13). The seven rgw pools are created up front, by one
 * `ceph` process reading the commands from stdin, with `paxos_propose_interval` short (a pool
 * created on first use stalls the first bucket, object or multipart upload 1.5-2.5 s, and
 * each `ceph` process costs ~0.4 s). Then a user, and the buckets asked for.
 *
 * Every daemon runs in the foreground (`-f`) as a child of this process, so it is stopped by
 * its own PID and reaped here: SIGTERM, SIGKILL after STOP_GRACE_MS; one that has already
 * exited counts as stopped. A start that fails stops what it started and says which step
 * failed, with the tail of that daemon's log.
 *
 *   const s3 = await startS3Server({ buckets: ['src', 'dst'] });
 *   ... s3.endpoint, s3.accessKeyId, s3.secretAccessKey, s3.region ...
 *   await s3.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { freePort } from './registry-server.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/storage/s3.js';

/** A running S3 server on 127.0.0.1. */
export interface S3Server {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  port: number;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** The temp directory that holds the cluster's state (removed by stop). */
  dir: string;
  /** The environment a client (regfs, the registry's AWS SDK) takes credentials and endpoint from. */
  env: Record<string, string>;
  /** The PIDs of the daemons (mon, OSD, radosgw), for tests that check they are gone after stop. */
  pids: number[];
  stop(): Promise<void>;
}

export interface S3ServerOptions {
  /** Buckets to create. */
  buckets?: readonly string[];
  /** How long the whole start may take before it is given up (default START_TIMEOUT_MS). */
  timeoutMs?: number;
}

const START_TIMEOUT_MS = 60_000;
/**
 * SIGKILL this long after SIGTERM. radosgw drains its HTTP connections on SIGTERM, so a
 * client's idle keep-alive connection holds it for seconds; the cluster's state is thrown
 * away, so nothing is lost by not waiting.
 */
const STOP_GRACE_MS = 1_000;
const REGION = 'us-east-1';
const RGW_POOLS = ['.rgw.root', 'default.rgw.log', 'default.rgw.control', 'default.rgw.meta', 'default.rgw.buckets.index', 'default.rgw.buckets.data', 'default.rgw.buckets.non-ec'];

/** Start a one-node Ceph cluster and radosgw; see the module comment. */
export async function startS3Server(opts: S3ServerOptions = {}): Promise<S3Server> {
  const deadline = Date.now() + (opts.timeoutMs ?? START_TIMEOUT_MS);
  const dir = await mkdtemp(join(tmpdir(), 'regfs-s3-'));
  const daemons: Daemon[] = [];
  // A test process that exits without stopping the server (an uncaught error, a runner's
  // SIGTERM handled as an exit) takes its daemons with it, each by its PID (they are then
  // zombies until whoever adopts them reaps them: stopped all the same), and their state.
  const killAll = (): void => {
    for (const d of daemons) if (!d.exited()) d.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killAll);
  const stop = async (): Promise<void> => {
    // All at once: nothing of a throw-away cluster needs to reach a disk.
    await Promise.all(daemons.map((d) => d.stop()));
    process.off('exit', killAll);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const sub of ['run', 'log', 'mon.a', 'osd.0', 'rgw.a']) await mkdir(join(dir, sub));
    const monPort = await freePort();
    const rgwPort = await freePort();
    // Ceph binds its OSD's messengers to free ports of this range itself.
    const osdMin = randomInt(20_000, 30_000);
    const fsid = randomUUID();
    const conf = join(dir, 'ceph.conf');
    await writeFile(conf, cephConf({ dir, fsid, monPort, rgwPort, osdMin, osdMax: osdMin + 59 }));
    const c = ['-c', conf];
    await run('ceph-authtool', ['--create-keyring', join(dir, 'keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'], deadline);
    await run('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, join(dir, 'monmap')], deadline);
    await run('ceph-mon', [...c, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'), '--keyring', join(dir, 'keyring')], deadline);
    daemons.push(startDaemon('ceph-mon', [...c, '-f', '-i', 'a'], join(dir, 'log', 'mon.a.log')));
    // One ceph process for the OSD's id and every pool: each process costs ~0.4 s. The pools
    // need no OSD to be created; their placement groups become active when it comes up.
    const osdUuid = randomUUID();
    const commands = [`osd new ${osdUuid} 0`, ...RGW_POOLS.flatMap((p) => [`osd pool create ${p} 8 8`, `osd pool application enable ${p} rgw`])];
    await run('ceph', [...c, '--connect-timeout', '20'], deadline, `${commands.join('\n')}\n`, daemons);
    await run('ceph-osd', [...c, '-i', '0', '--mkfs', '--osd-uuid', osdUuid], deadline);
    daemons.push(startDaemon('ceph-osd', [...c, '-f', '-i', '0'], join(dir, 'log', 'osd.0.log')));
    // radosgw waits for the cluster itself: it answers HTTP once its pools are usable.
    daemons.push(startDaemon('radosgw', [...c, '-f', '-n', 'client.rgw.a'], join(dir, 'log', 'client.rgw.a.log')));
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitForHttp(endpoint, deadline, daemons);
    const accessKeyId = `regfs${randomBytes(6).toString('hex')}`;
    const secretAccessKey = randomBytes(20).toString('hex');
    await run('radosgw-admin', [...c, 'user', 'create', '--uid=regfs', '--display-name=regfs', `--access-key=${accessKeyId}`, `--secret=${secretAccessKey}`], deadline, undefined, daemons);
    const server: S3Server = {
      endpoint,
      port: rgwPort,
      accessKeyId,
      secretAccessKey,
      region: REGION,
      dir,
      env: { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_REGION: REGION, AWS_ENDPOINT_URL: endpoint },
      pids: daemons.map((d) => d.child.pid!),
      stop,
    };
    if ((opts.buckets ?? []).length > 0) {
      const client = createS3Client({ endpoint, region: REGION, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });
      try {
        for (const b of opts.buckets ?? []) await client.send(new CreateBucketCommand({ Bucket: b }));
      } finally {
        client.destroy();
      }
    }
    return server;
  } catch (err) {
    await stop();
    throw new Error(`S3 test server in ${dir} (removed): ${err instanceof Error ? err.message : String(err)}`);
  }
}

function cephConf(o: { dir: string; fsid: string; monPort: number; rgwPort: number; osdMin: number; osdMax: number }): string {
  return `[global]
fsid = ${o.fsid}
mon_host = v2:127.0.0.1:${o.monPort}
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_msgr1 = false
ms_bind_port_min = ${o.osdMin}
ms_bind_port_max = ${o.osdMax}
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_max_pg_per_osd = 1000
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
run_dir = ${o.dir}/run
admin_socket = ${o.dir}/run/$name.asok
pid_file = ${o.dir}/run/$name.pid
log_file = ${o.dir}/log/$name.log
keyring = ${o.dir}/keyring
[mon.a]
mon_data = ${o.dir}/mon.a
# a test cluster: commit map changes at once (the default waits 1 s per pool)
paxos_propose_interval = 0.05
paxos_min_wait = 0.01
[osd.0]
osd_data = ${o.dir}/osd.0
osd_objectstore = memstore
memstore_device_bytes = 4294967296
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:${o.rgwPort} tcp_nodelay=1
rgw_data = ${o.dir}/rgw.a
rgw_enable_usage_log = false
rgw_thread_pool_size = 64
ms_mon_client_mode = crc secure
`;
}

/** A daemon started in the foreground, as a child of this process. */
interface Daemon {
  name: string;
  child: ChildProcess;
  log: string;
  /** True once it has exited (and been reaped). */
  exited(): boolean;
  stop(): Promise<void>;
}

function startDaemon(program: string, args: string[], log: string): Daemon {
  const out = openSync(`${log}.out`, 'a');
  const child = spawn(program, args, { stdio: ['ignore', out, out], env: cephEnv() });
  closeSync(out);
  let gone = false;
  const exited = new Promise<void>((res) => {
    child.once('exit', () => {
      gone = true;
      res();
    });
    child.once('error', () => {
      gone = true;
      res();
    });
  });
  return {
    name: program,
    child,
    log,
    exited: () => gone,
    async stop() {
      if (gone || child.pid === undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** This process's environment without what would point Ceph's tools at another cluster or add arguments. */
function cephEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'CEPH_ARGS' && k !== 'CEPH_CONF' && k !== 'CEPH_KEYRING'));
}

/** Run a setup command to its end; an error names it and shows its output, or why a daemon it needed died. */
async function run(program: string, args: string[], deadline: number, input?: string, daemons: readonly Daemon[] = []): Promise<string> {
  const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], env: cephEnv() });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stdin.end(input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), Math.max(0, deadline - Date.now()));
  const status = await new Promise<number | string>((res) => {
    child.once('error', (err) => res(err.message));
    child.once('close', (code, signal) => res(code ?? signal ?? 'unknown'));
  });
  clearTimeout(timer);
  if (status !== 0) {
    const why = Date.now() >= deadline ? 'did not finish before the start timeout' : typeof status === 'number' ? `exited with status ${status}` : `failed (${status})`;
    throw new Error(`${program} ${why}${deadDaemons(daemons)}\n${output.slice(-2000)}`);
  }
  return output;
}

/** Which daemons have died, with the end of their logs, for an error message. */
function deadDaemons(daemons: readonly Daemon[]): string {
  const dead = daemons.filter((d) => d.exited());
  return dead.map((d) => `; ${d.name} exited (code ${d.child.exitCode ?? d.child.signalCode}):\n${tail(d.log)}${tail(`${d.log}.out`)}`).join('');
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

async function waitForHttp(endpoint: string, deadline: number, daemons: readonly Daemon[]): Promise<void> {
  while (Date.now() < deadline) {
    if (daemons.some((d) => d.exited())) throw new Error(`radosgw did not come up${deadDaemons(daemons)}`);
    try {
      const res = await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const rgw = daemons.find((d) => d.name === 'radosgw');
  throw new Error(`radosgw did not answer on ${endpoint} before the start timeout${rgw === undefined ? '' : `; its log ends:\n${tail(rgw.log)}`}`);
}

