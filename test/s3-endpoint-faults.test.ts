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
import { S3Service } from '../src/storage/s3.js';

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
