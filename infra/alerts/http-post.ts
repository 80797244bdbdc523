/**
 * POSTs a JSON body to an alert receiver with a timeout, and turns every failure into
 * AlertDeliveryFailed: retriable for network errors, timeouts, 429 and 5xx answers; not for other
 * answers (the payload or the sink's configuration is wrong, and sending it again will not help).
 */
import { AlertDeliveryFailed } from '../../core/errors.js';

export interface PostOptions {
  readonly sink: string;
  readonly url: string;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutRealMs: number;
  readonly signal?: AbortSignal;
}

/** Resolves with the answer's text once the receiver answered 2xx. */
export async function postJson(o: PostOptions): Promise<string> {
  const timeout = AbortSignal.timeout(o.timeoutRealMs);
  const signal = o.signal ? AbortSignal.any([timeout, o.signal]) : timeout;
  let res: Response;
  let text: string;
  try {
    res = await fetch(o.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'hourglass-alerting', ...o.headers },
      body: JSON.stringify(o.body),
      signal,
    });
    text = await res.text();
  } catch (err) {
    const timedOut = timeout.aborted;
    const reason = timedOut
      ? `no answer within ${o.timeoutRealMs} ms`
      : o.signal?.aborted
        ? 'delivery cancelled'
        : `network error: ${causeOf(err)}`;
    throw new AlertDeliveryFailed({ sink: o.sink, reason }, !o.signal?.aborted || timedOut, { cause: err });
  }
  if (res.status >= 200 && res.status < 300) return text;
  const retriable = res.status === 429 || res.status >= 500;
  throw new AlertDeliveryFailed({ sink: o.sink, status: res.status, reason: `answered ${excerpt(text)}` }, retriable);
}

function causeOf(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

function excerpt(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  if (t === '') return '(empty body)';
  return JSON.stringify(t.length > 200 ? `${t.slice(0, 200)}…` : t);
}
