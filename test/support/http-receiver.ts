/** A local HTTP receiver for alert sinks in tests: records every request, answers as told. */
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface Received {
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: unknown;
  /** performance.now() when it arrived. */
  readonly at: number;
}

export interface Receiver {
  readonly url: string;
  readonly received: Received[];
  /** Requests to `path` whose body satisfies `match`. */
  find(path: string, match?: (body: never) => boolean): Received[];
  /** Resolves once a request to `path` satisfying `match` has arrived (rejects after `timeoutMs`). */
  waitFor(path: string, match: (body: never) => boolean, timeoutMs?: number): Promise<Received>;
  close(): Promise<void>;
}

export async function startReceiver(answer: (path: string) => number = () => 202): Promise<Receiver> {
  const received: Received[] = [];
  const waiters = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // kept as text
      }
      received.push({ path: req.url ?? '/', headers: req.headers, body, at: performance.now() });
      for (const w of waiters) w();
      res.writeHead(answer(req.url ?? '/'), { 'content-type': 'application/json' });
      res.end('{"status":"success"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const find = (path: string, match: (body: never) => boolean = () => true) =>
    received.filter((r) => r.path === path && match(r.body as never));
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    find,
    waitFor(path, match, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const hit = find(path, match)[0];
          if (hit === undefined) return false;
          waiters.delete(check as () => void);
          clearTimeout(timer);
          resolve(hit);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check as () => void);
          reject(new Error(`no request to ${path} matched in ${timeoutMs} ms; got ${JSON.stringify(received)}`));
        }, timeoutMs);
        if (!check()) waiters.add(check as () => void);
      });
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
