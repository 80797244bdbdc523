/**
 * The body parser of `POST /v1/events`. It scans each chunk as it arrives (batch-scanner.ts), so the
 * limits hold before any object is built: a batch with too many events is answered 413 once the
 * first event over the limit starts, and an event over `ingress.maxEventBytes` is rejected without
 * being parsed while the rest of its batch goes through. What passes is parsed with JSON.parse.
 */
import { isUtf8 } from 'node:buffer';
import type { FastifyInstance } from 'fastify';
import { RequestRejected } from '../../core/errors.js';
import { type BatchScan, BatchScanner, topLevelStrings } from './batch-scanner.js';
import { OversizedEvent } from './validate-event.js';

export interface EventsBodyLimits {
  readonly bodyLimitBytes: number;
  readonly maxEventsPerBatch: number;
  readonly maxEventBytes: number;
  /** Objects and arrays in one body at most (`ingress.maxContainersPerBatch`). */
  readonly maxContainersPerBatch: number;
  /** Bytes of an oversized event's JSON kept for its dead letter. */
  readonly headBytes: number;
}

/**
 * What the parser hands the route: the events, with an {@link OversizedEvent} for each one too
 * large; or the rejection of a batch refused before its body ended, for the route to answer.
 */
export interface EventsBody {
  readonly events: unknown[];
  readonly rejection?: RequestRejected;
}

/** Makes `application/json` bodies of the routes in `scope` be read as event batches. */
export function eventsBodyParser(scope: FastifyInstance, limits: EventsBodyLimits): void {
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('application/json', (request, payload, done) => {
    const declared = Number(request.headers['content-length']);
    if (declared > limits.bodyLimitBytes) {
      done(bodyTooLarge(limits), undefined);
      return;
    }
    const scanner = new BatchScanner(limits.maxEventsPerBatch, limits.maxContainersPerBatch);
    const chunks: Buffer[] = [];
    let received = 0;
    let finished = false;
    const finish = (err: Error | null, body?: EventsBody): void => {
      if (finished) return;
      finished = true;
      chunks.length = 0;
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onError);
      payload.removeListener('close', onClose);
      done(err, body);
    };
    const onData = (chunk: Buffer | string): void => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      received += bytes.length;
      if (received > limits.bodyLimitBytes) {
        finish(bodyTooLarge(limits));
        return;
      }
      chunks.push(bytes);
      scanner.write(bytes);
      if (scanner.tooComplex) {
        const rejection = new RequestRejected(
          'batch_too_large',
          `more than ${limits.maxContainersPerBatch} objects and arrays in one request; at most ${limits.maxContainersPerBatch} are allowed`,
        );
        finish(null, { events: [], rejection });
        return;
      }
      if (scanner.tooMany) {
        // Answered now, by the route: a parser error would make fastify close the connection
        // while the client still sends, and a reset can lose the answer. What is left of the body
        // flows on into no listener and is dropped (within the request timeout); the connection
        // stays usable.
        const rejection = new RequestRejected(
          'batch_too_large',
          `more than ${limits.maxEventsPerBatch} events in one request; at most ${limits.maxEventsPerBatch} are allowed`,
        );
        finish(null, { events: [], rejection });
      }
    };
    const onEnd = (): void => {
      if (!Number.isNaN(declared) && received !== declared) {
        finish(new RequestRejected('invalid_body', `Content-Length is ${declared} but the body has ${received} bytes`));
        return;
      }
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received);
      let batch: EventsBody;
      try {
        batch = readBatch(body, scanner.end(), limits);
      } catch (err) {
        finish(err as Error);
        return;
      }
      finish(null, batch);
    };
    const onError = (err: Error): void => {
      finish(new RequestRejected('invalid_body', `the body could not be read: ${err.message}`));
    };
    const onClose = (): void => {
      finish(new RequestRejected('invalid_body', 'the connection closed before the body ended'));
    };
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onError);
    payload.on('close', onClose);
    payload.resume();
  });
}

function bodyTooLarge(limits: EventsBodyLimits): RequestRejected {
  return new RequestRejected('body_too_large', `the body is over ${limits.bodyLimitBytes} bytes`);
}

/** The events of a whole, scanned body, or the request-level rejection. */
export function readBatch(body: Buffer, scan: BatchScan, limits: EventsBodyLimits): EventsBody {
  if (body.length === 0) throw new RequestRejected('invalid_body', 'the body is empty');
  if (!isUtf8(body)) throw new RequestRejected('invalid_encoding', 'the body is not valid UTF-8');
  if (!scan.valid) throw new RequestRejected('malformed_json', `the body is not valid JSON: ${scan.error}`);
  if (!scan.rootIsObject) {
    throw new RequestRejected('invalid_body', 'the body must be a JSON object {"events": [...]}');
  }
  if (scan.events === 'missing') throw new RequestRejected('invalid_body', 'the body has no "events" field');
  if (scan.events === 'other') throw new RequestRejected('invalid_body', '"events" must be an array');
  const { starts, ends } = scan;
  if (starts.length === 0) throw new RequestRejected('empty_batch', '"events" is empty');
  if (starts.length > limits.maxEventsPerBatch) {
    throw new RequestRejected(
      'batch_too_large',
      `${starts.length} events in one request; at most ${limits.maxEventsPerBatch} are allowed`,
    );
  }
  let oversized = false;
  for (let k = 0; k < starts.length && !oversized; k++) {
    oversized = (ends[k] as number) - (starts[k] as number) > limits.maxEventBytes;
  }
  // the fast path: one JSON.parse of the array (other fields of the body are never built)
  if (!oversized) return { events: JSON.parse(body.toString('utf8', scan.arrayStart, scan.arrayEnd)) as unknown[] };
  const events: unknown[] = new Array(starts.length);
  for (let k = 0; k < starts.length; k++) {
    const start = starts[k] as number;
    const end = ends[k] as number;
    if (end - start <= limits.maxEventBytes) {
      events[k] = JSON.parse(body.toString('utf8', start, end));
      continue;
    }
    const known = topLevelStrings(body, start, end, ['id', 'type']);
    const headEnd = Math.min(end, start + limits.headBytes);
    events[k] = new OversizedEvent(
      end - start,
      limits.maxEventBytes,
      known.get('id') ?? null,
      known.get('type') ?? null,
      `${body.toString('utf8', start, headEnd)}${headEnd < end ? '…' : ''}`,
    );
  }
  return { events };
}
