/**
 * A local HTTP receiver for tests of alert sinks: records every request (JSON bodies parsed),
 * answers as told — or leaves a request unanswered — and lets a test wait for what it expects.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

export interface Received<B = unknown> {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** Parsed JSON, or the text when it is not JSON. */
  readonly body: B;
  /** The status it was answered with; null: left unanswered. */
  readonly status: number | null;
  /** performance.now() when it arrived. */
  readonly at: number;
}

export interface Answer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Default `{"status":"success"}`. */
  readonly body?: string;
}

export interface Receiver<B = unknown> {
  readonly url: string;
  readonly requests: Received<B>[];
  /** Requests to `path` whose body satisfies `match`. */
  find(path: string, match?: (body: B) => boolean): Received<B>[];
  /** Resolves once a request to `path` satisfying `match` has arrived (rejects after `timeoutMs`). */
  waitFor(path: string, match: (body: B) => boolean, timeoutMs?: number): Promise<Received<B>>;
  /** Resolves once `count` requests arrived (rejects after 20 s, with what did arrive). */
  requestCount(count: number): Promise<void>;
  /** Resolves once the connection of request `index` closed (the client gave up or finished). */
  connectionClosed(index: number): Promise<void>;
  close(): Promise<void>;
}

/** `answer` returning null leaves the request unanswered. */
export async function startHttpReceiver<B = unknown>(
  answer: (request: Omit<Received<B>, 'status'>) => Answer | null = () => ({ status: 202 }),
): Promise<Receiver<B>> {
  const requests: Received<B>[] = [];
  const closed: Promise<void>[] = [];
  const listeners = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    let connectionClosed: () => void = () => undefined;
    closed.push(new Promise<void>((resolve) => (connectionClosed = resolve)));
    res.on('close', () => connectionClosed());
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
      const r = {
        method: req.method ?? '',
        path: req.url ?? '/',
        headers: req.headers,
        body: body as B,
        at: performance.now(),
      };
      const a = answer(r);
      requests.push({ ...r, status: a?.status ?? null });
      for (const l of listeners) l();
      if (a === null) return;
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
      res.end(a.body ?? '{"status":"success"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const find = (path: string, match: (body: B) => boolean = () => true) =>
    requests.filter((r) => r.path === path && match(r.body));
  /** Resolves when `done` holds, checked on every request; rejects after `timeoutMs`. */
  const until = <T>(done: () => T | undefined, timeoutMs: number, what: () => string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const v = done();
        if (v === undefined) return;
        listeners.delete(check);
        clearTimeout(timer);
        resolve(v);
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`${what()}; got ${JSON.stringify(requests)}`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  const r: Receiver<B> = {
    url: `http://127.0.0.1:${port}`,
    requests,
    find,
    waitFor: (path, match, timeoutMs = 30_000) =>
      until(
        () => find(path, match)[0],
        timeoutMs,
        () => `no request to ${path} matched in ${timeoutMs} ms`,
      ),
    requestCount: (count) =>
      until(
        () => (requests.length >= count ? true : undefined),
        20_000,
        () => `expected ${count} requests`,
      ).then(() => undefined),
    connectionClosed: async (index) => {
      await r.requestCount(index + 1);
      await closed[index];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return r;
}

/** A receiver answering every request with the status `answer` gives for its path. */
export function startReceiver(answer: (path: string) => number = () => 202): Promise<Receiver> {
  return startHttpReceiver((r) => ({ status: answer(r.path) }));
}
