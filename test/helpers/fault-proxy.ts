// A small HTTP proxy on 127.0.0.1 that the test controls (tests only): it forwards to a real
// server, or injects one fault: an HTTP 500, a stall (the request is held and never answered), or
// a connection cut after a number of SSE events have been passed on. `refusedUrl()` gives a URL
// where nothing listens (connection refused).

import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';

export type Fault = { kind: 'pass' } | { kind: 'status'; status: number } | { kind: 'stall' } | { kind: 'cut'; afterEvents: number };

export interface FaultProxy {
  url: string;
  /** The fault for the next requests. */
  set(fault: Fault): void;
  /** Requests seen, by fault kind applied. */
  readonly seen: Record<Fault['kind'], number>;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const to = new URL(target);
  let fault: Fault = { kind: 'pass' };
  const seen = { pass: 0, status: 0, stall: 0, cut: 0 };
  const held = new Set<ServerResponse>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const f = fault;
    seen[f.kind]++;
    if (f.kind === 'status') {
      req.resume();
      res.writeHead(f.status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `injected ${f.status}`, type: 'server_error', param: null, code: null } }));
      return;
    }
    if (f.kind === 'stall') {
      req.resume();
      held.add(res);
      res.on('close', () => held.delete(res));
      return;
    }
    const up = httpRequest({ host: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      if (f.kind === 'pass') {
        upRes.pipe(res);
        return;
      }
      // Pass `afterEvents` SSE events on, then cut both connections.
      let events = 0;
      let buffer = '';
      upRes.setEncoding('utf8');
      upRes.on('data', (chunk: string) => {
        buffer += chunk;
        let at: number;
        while ((at = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, at + 2);
          buffer = buffer.slice(at + 2);
          if (events >= f.afterEvents) {
            upRes.destroy();
            res.socket?.destroy();
            return;
          }
          res.write(event);
          events++;
        }
      });
      upRes.on('end', () => res.end());
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    set: (f) => (fault = f),
    seen,
    close: async () => {
      for (const res of held) res.socket?.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A URL on 127.0.0.1 where nothing listens (a port taken and released). */
export async function refusedUrl(): Promise<string> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
