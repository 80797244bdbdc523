/**
 * One HTTP POST of a JSON body to an alert receiver, bounded by a timeout, and the small sink
 * shell the three sink kinds share.
 *
 * Every failure becomes AlertDeliveryFailed. It is retriable for network errors, timeouts, 429
 * and 5xx answers; it is not for other answers (the payload or the sink's configuration is wrong
 * and sending it again will not help), nor when the caller cancelled the attempt. Redirects are
 * not followed: a POST that is redirected may arrive as a GET, so a 3xx answer is a configuration
 * error (configure the final URL). The reason of an error answer quotes the start of its body.
 */
import { AlertDeliveryFailed } from '../../core/errors.js';
import type { AlertNotification, AlertRoute, AlertSink } from '../../core/ports/alert-sink.js';

/** Default time one delivery attempt may take (real ms). */
export const DEFAULT_TIMEOUT_REAL_MS = 5_000;
/** Characters of an error answer's body quoted in the error's reason. */
const EXCERPT_CHARS = 200;
/** Bytes of an answer's body read at most; the rest is discarded. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * AlertDeliveryFailed as thrown by postJson. `retryAfterRealMs` is the wait a 429 or 503 answer
 * asked for with a `Retry-After` header (seconds or an HTTP date), when it did.
 */
export type AlertDeliveryError = AlertDeliveryFailed & { readonly retryAfterRealMs?: number };

export interface PostJsonOptions {
  /** Sink name, for the error. */
  readonly sink: string;
  readonly url: string;
  /** Serialised with JSON.stringify. */
  readonly body: unknown;
  /** Sent after (and replacing) the defaults `content-type: application/json` and `user-agent`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Time the attempt may take, reading the answer included (real ms). */
  readonly timeoutRealMs: number;
  /** Cancels the attempt (e.g. the dispatcher stopping). */
  readonly signal?: AbortSignal;
}

export interface PostAnswer {
  readonly status: number;
  /** The answer's body as text (at most 64 KiB of it). */
  readonly body: string;
}

/** POSTs `body` as JSON; resolves once the receiver answered 2xx, rejects with AlertDeliveryError. */
export async function postJson(o: PostJsonOptions): Promise<PostAnswer> {
  const timeout = AbortSignal.timeout(o.timeoutRealMs);
  const signal = o.signal ? AbortSignal.any([timeout, o.signal]) : timeout;
  let status: number;
  let text: string;
  let retryAfter: string | null;
  try {
    const res = await fetch(o.url, {
      method: 'POST',
      headers: requestHeaders(o.headers),
      body: JSON.stringify(o.body),
      redirect: 'manual',
      signal,
    });
    status = res.status;
    retryAfter = res.headers.get('retry-after');
    text = await readText(res);
  } catch (err) {
    if (timeout.aborted) {
      throw new AlertDeliveryFailed({ sink: o.sink, reason: `no answer within ${o.timeoutRealMs} ms` }, true, {
        cause: err,
      });
    }
    if (o.signal?.aborted) {
      throw new AlertDeliveryFailed({ sink: o.sink, reason: 'delivery cancelled' }, false, { cause: err });
    }
    throw new AlertDeliveryFailed({ sink: o.sink, reason: `network error: ${causeOf(err)}` }, true, { cause: err });
  }
  if (status >= 200 && status < 300) return { status, body: text };
  if (status >= 300 && status < 400) {
    throw new AlertDeliveryFailed(
      {
        sink: o.sink,
        status,
        reason: 'the receiver answered with a redirect, which is not followed; configure the final URL',
      },
      false,
    );
  }
  const retriable = status === 429 || status >= 500;
  const err: AlertDeliveryError = new AlertDeliveryFailed(
    { sink: o.sink, status, reason: `the receiver answered ${excerpt(text)}` },
    retriable,
  );
  const wait = status === 429 || status === 503 ? parseRetryAfter(retryAfter) : undefined;
  if (wait !== undefined) Object.assign(err, { retryAfterRealMs: wait });
  throw err;
}

/** The request headers: the defaults, then the configured ones (a configured name replaces a default). */
export function requestHeaders(extra: Readonly<Record<string, string>> = {}): Headers {
  const h = new Headers({ 'content-type': 'application/json', 'user-agent': 'hourglass-alerting' });
  for (const [name, value] of Object.entries(extra)) h.set(name, value);
  return h;
}

/**
 * A `Retry-After` value in real ms: delay-seconds or an HTTP date (RFC 9110); undefined when
 * absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

async function readText(res: Response): Promise<string> {
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size >= MAX_ANSWER_BYTES) {
      await reader.cancel();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

function causeOf(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } } | null;
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

function excerpt(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  if (t === '') return '(empty body)';
  return JSON.stringify(t.length > EXCERPT_CHARS ? `${t.slice(0, EXCERPT_CHARS)}…` : t);
}

/** A sink's target, its configuration checked and completed (see createSink in `sinks.ts`). */
export interface HttpSinkOptions {
  readonly name: string;
  readonly url: string;
  readonly routes: readonly AlertRoute[];
  readonly headers?: Readonly<Record<string, string>>;
  /** Default 5,000. */
  readonly timeoutRealMs?: number;
}

/** A sink that POSTs `format(notification)` to its URL. */
export function httpSink(
  kind: string,
  o: HttpSinkOptions,
  format: (notification: AlertNotification) => unknown,
): AlertSink {
  const timeoutRealMs = o.timeoutRealMs ?? DEFAULT_TIMEOUT_REAL_MS;
  return {
    name: o.name,
    kind,
    routes: o.routes,
    async send(notification, signal) {
      await postJson({
        sink: o.name,
        url: o.url,
        body: format(notification),
        headers: o.headers,
        timeoutRealMs,
        signal,
      });
    },
  };
}

/**
 * `text` cut to at most `max` characters (UTF-16 code units, as receivers count them), ending
 * with `…` when cut; never splits a surrogate pair.
 */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}
