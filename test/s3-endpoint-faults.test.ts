/**
 * Endpoints that are not well-behaved S3 services: one that accepts a connection and never
 * answers must not hold regfs for ever (a request whose connection stays silent fails as
 * S3_UNREACHABLE, naming the key); one that answers a web page is not taken for an empty
 * bucket.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import pLimit from 'p-limit';
import { RegfsError } from '../src/errors.js';
import { S3Service, s3Error } from '../src/storage/s3.js';

test('a silent S3 server: the request times out (S3_UNREACHABLE), it does not hang', { timeout: 20_000 }, async () => {
  let requests = 0;
  const server: Server = createServer(() => void requests++);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  const service = new S3Service({ limit: pLimit(1), endpoint: `http://127.0.0.1:${port}`, maxAttempts: 2, idleTimeout: 300, credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
  try {
    const started = Date.now();
    await assert.rejects(service.root('s3://bkt/reg').stat('reg/docker/registry/v2'), (err) => {
      assert.ok(err instanceof RegfsError, String(err));
      assert.equal(err.code, 'S3_UNREACHABLE');
      assert.match(err.message, /s3:\/\/bkt\/reg\/docker\/registry\/v2/);
      return true;
    });
    assert.equal(requests, 2, 'each attempt reached the server');
    assert.ok(Date.now() - started < 15_000);
  } finally {
    service.destroy();
    server.closeAllConnections();
    server.close();
  }
});

test('a server that answers its headers, then trickles bytes: a metadata request ends at its deadline (S3_UNREACHABLE), the idle timeout never firing', { timeout: 20_000 }, async () => {
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((_, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000000' });
    const t = setInterval(() => res.write('x'), 100);
    timers.add(t);
    res.on('close', () => clearInterval(t));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  const service = new S3Service({ limit: pLimit(1), endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1, idleTimeout: 1000, requestDeadline: 2000, credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
  try {
    const started = Date.now();
    await assert.rejects(service.root('s3://bkt/reg').getContent('reg/docker/registry/v2/repositories/r/_manifests/tags/t/current/link', 200), (err) => {
      assert.ok(err instanceof RegfsError, String(err));
      assert.equal(err.code, 'S3_UNREACHABLE');
      assert.match(err.message, /no whole answer within 2 s/);
      return true;
    });
    assert.ok(Date.now() - started < 10_000, `${Date.now() - started} ms`);
  } finally {
    for (const t of timers) clearInterval(t);
    service.destroy();
    server.closeAllConnections();
    server.close();
  }
});

test('an endpoint that answers HTML: a listing is an error, not an empty bucket', async () => {
  const server: Server = createServer((_, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<html><body>Welcome</body></html>');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  const service = new S3Service({ limit: pLimit(1), endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1, credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
  try {
    await assert.rejects(service.root('s3://bkt/reg').list('reg/docker/registry/v2'), (err) => {
      assert.ok(err instanceof RegfsError, String(err));
      assert.equal(err.code, 'IO_ERROR');
      assert.match(err.message, /s3:\/\/bkt\/reg\/docker\/registry\/v2\/: the endpoint's answer is not an S3 listing/);
      return true;
    });
  } finally {
    service.destroy();
    server.closeAllConnections();
    server.close();
  }
});

/**
 * A fake S3 server for GetObject of one object (`size` bytes of 'x', ETag "e1"): `answer(n,
 * range, ifMatch)` decides each request's fate: served whole, or cut or stalled after the
 * first 400 bytes of a whole answer (none of a ranged one).
 */
async function objectServer(size: number, answer: (n: number, range: string | undefined, ifMatch: string | undefined) => 'cut' | 'stall' | 'serve'): Promise<{ endpoint: string; requests: Array<{ range?: string; ifMatch?: string }>; stop(): Promise<void> }> {
  const requests: Array<{ range?: string; ifMatch?: string }> = [];
  const server: Server = createServer((req, res) => {
    const range = req.headers.range;
    const ifMatch = req.headers['if-match'];
    requests.push({ ...(range === undefined ? {} : { range }), ...(ifMatch === undefined ? {} : { ifMatch }) });
    const fate = answer(requests.length, range, ifMatch);
    const from = range === undefined ? 0 : Number(/^bytes=(\d+)-$/.exec(range)![1]);
    const body = Buffer.alloc(size - from, 'x');
    res.writeHead(range === undefined ? 200 : 206, { 'content-length': String(body.length), etag: '"e1"', 'content-type': 'application/octet-stream' });
    if (fate === 'serve') res.end(body);
    else {
      // A whole answer's first 400 bytes; a resumed one's none (it makes no progress).
      res.write(body.subarray(0, range === undefined ? 400 : 0));
      if (fate === 'cut') setTimeout(() => res.socket?.destroy(), 50);
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

async function readAll(r: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

const KEY = 'reg/docker/registry/v2/blobs/sha256/aa/aa00/data';

test('blob data whose connection is cut mid-body: the read resumes where it stopped (a ranged GET of the same ETag), the bytes whole', { timeout: 20_000 }, async () => {
  const s = await objectServer(1000, (n) => (n === 1 ? 'cut' : 'serve'));
  const service = new S3Service({ limit: pLimit(2), endpoint: s.endpoint, maxAttempts: 1, credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
  try {
    const body = await service.root('s3://bkt/reg').reader(KEY);
    const bytes = await readAll(body!);
    assert.equal(bytes.length, 1000);
    assert.ok(bytes.every((b) => b === 0x78));
    assert.deepEqual(s.requests, [{}, { range: 'bytes=400-', ifMatch: '"e1"' }]);
  } finally {
    service.destroy();
    await s.stop();
  }
});

test('blob data whose connection is cut, or stalls, every time: S3_UNREACHABLE naming the s3:// key, after a few resumed reads, never the SDK message', { timeout: 30_000 }, async () => {
  for (const fate of ['cut', 'stall'] as const) {
    const s = await objectServer(1000, () => fate);
    const service = new S3Service({ limit: pLimit(2), endpoint: s.endpoint, maxAttempts: 1, idleTimeout: 500, credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
    try {
      const body = await service.root('s3://bkt/reg').reader(KEY);
      await assert.rejects(readAll(body!), (err) => {
        assert.ok(err instanceof RegfsError, `${fate}: ${String(err)}`);
        assert.equal(err.code, 'S3_UNREACHABLE', `${fate}: ${err.message}`);
        assert.match(err.message, new RegExp(`^reading s3://bkt/${KEY}: `));
        assert.doesNotMatch(err.message, /smithy|TimeoutError:/);
        return true;
      });
      assert.equal(s.requests.length, 3, `${fate}: the first read and two resumed ones`);
      assert.deepEqual(s.requests.slice(1).map((r) => r.range), ['bytes=400-', 'bytes=400-'], fate);
    } finally {
      service.destroy();
      await s.stop();
    }
  }
});

test('a TLS failure names itself: an https endpoint that speaks plain HTTP, and a certificate not trusted (with the cure)', async () => {
  const server: Server = createServer((_, res) => res.end('x'));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  const service = new S3Service({ limit: pLimit(1), endpoint: `https://127.0.0.1:${port}`, maxAttempts: 1, credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
  try {
    await assert.rejects(service.root('s3://bkt/reg').list('reg/docker/registry/v2'), (err) => {
      assert.ok(err instanceof RegfsError, String(err));
      assert.equal(err.code, 'S3_UNREACHABLE');
      assert.match(err.message, /: TLS failed \(EPROTO\)/);
      return true;
    });
  } finally {
    service.destroy();
    server.closeAllConnections();
    server.close();
  }
  const untrusted = s3Error(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 'listing', 'bkt', 'reg/');
  assert.equal(untrusted.code, 'S3_UNREACHABLE');
  assert.equal(untrusted.message, 'listing s3://bkt/reg/: the endpoint\'s TLS certificate is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT); for a private CA, set NODE_EXTRA_CA_CERTS to its certificate file');
});

test('a request waiting for its turn (--jobs) is not timed: its deadline starts when it is sent', { timeout: 20_000 }, async () => {
  const server: Server = createServer((_, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '5' });
      res.end('hello');
    }, 1000);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  // One request at a time, each answered in 1 s, a deadline of 1.5 s: the second waits 1 s for its turn.
  const service = new S3Service({ limit: pLimit(1), endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1, requestDeadline: 1500, credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
  try {
    const d = service.root('s3://bkt/reg');
    const got = await Promise.all([d.getContent('reg/a', 100), d.getContent('reg/b', 100)]);
    assert.deepEqual(got.map(String), ['hello', 'hello']);
  } finally {
    service.destroy();
    server.closeAllConnections();
    server.close();
  }
});
