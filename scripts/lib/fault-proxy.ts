/**
 * A small HTTP proxy in front of an S3 server, for fault tests: it forwards every request as
 * it came (Host header included, so signatures still match), and on demand answers some with
 * 503 SlowDown (throttling, as S3 does under load) or goes down (every connection, open or new,
 * cut: the server gone, from the client's side). Listens on 127.0.0.1; stopped by `stop`.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface FaultProxy {
  /** `http://127.0.0.1:PORT`: give it to the client as its endpoint. */
  endpoint: string;
  /** Requests seen (answered, refused or cut). */
  readonly requests: number;
  /** Requests answered 503. */
  readonly throttled: number;
  /** Answer every Nth request 503 SlowDown (0: none). */
  throttleEvery: number;
  /** Go down once this many requests have been seen (Infinity: never). */
  downAfter: number;
  /** Down now: every connection is cut. */
  down: boolean;
  stop(): Promise<void>;
}

const SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const to = new URL(target);
  const sockets = new Set<Socket>();
  let requests = 0;
  let throttled = 0;
  const state = { throttleEvery: 0, downAfter: Infinity, down: false };
  const cutAll = (): void => {
    for (const s of sockets) s.destroy();
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests++;
    if (requests > state.downAfter) state.down = true;
    if (state.down) {
      cutAll();
      return;
    }
    if (state.throttleEvery > 0 && requests % state.throttleEvery === 0) {
      throttled++;
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(SLOW_DOWN) });
        res.end(SLOW_DOWN);
      });
      return;
    }
    const up = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.on('connection', (s: Socket) => {
    if (state.down) {
      s.destroy();
      return;
    }
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    get throttled() {
      return throttled;
    },
    get throttleEvery() {
      return state.throttleEvery;
    },
    set throttleEvery(n: number) {
      state.throttleEvery = n;
    },
    get downAfter() {
      return state.downAfter;
    },
    set downAfter(n: number) {
      state.downAfter = n;
    },
    get down() {
      return state.down;
    },
    set down(d: boolean) {
      state.down = d;
      if (d) cutAll();
    },
    async stop() {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
