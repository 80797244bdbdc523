/**
 * What every JSON HTTP API of Hourglass shares (the ingress, the orchestrator): bodies parsed as
 * UTF-8 JSON with clear errors, errors answered as `{"error": {code, message, retriable}}` with
 * the error's HTTP status, and 404 for unknown routes.
 */
import { isUtf8 } from 'node:buffer';
import type { FastifyError, FastifyInstance } from 'fastify';
import { HourglassError, RateLimited, RequestRejected } from '../../core/errors.js';

const FASTIFY_CODES: Record<string, RequestRejected['code']> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_body',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_body',
  FST_ERR_CTP_EMPTY_TYPE: 'unsupported_media_type',
};

export function jsonApi(app: FastifyInstance, bodyLimit: number): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: bodyLimit }, (_req, body, done) => {
    const buf = body as Buffer;
    // Decoding replaces invalid UTF-8 with U+FFFD; only then is the (slower) exact check needed.
    const text = buf.toString('utf8');
    if (text.includes('\uFFFD') && !isUtf8(buf)) {
      done(new RequestRejected('invalid_encoding', 'the body is not valid UTF-8'), undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(new RequestRejected('malformed_json', `the body is not valid JSON: ${(err as Error).message}`), undefined);
    }
  });

  app.setErrorHandler((err: FastifyError | HourglassError, request, reply) => {
    if (err instanceof HourglassError) {
      if (err.httpStatus >= 500) request.log.warn({ err, code: err.code }, 'request failed');
      if (err.code === 'overloaded') reply.header('retry-after', '1');
      if (err instanceof RateLimited) reply.header('retry-after', String(err.retryAfterSeconds));
      return reply.code(err.httpStatus).send({ error: err.toJSON() });
    }
    const mapped = FASTIFY_CODES[err.code];
    if (mapped !== undefined) {
      const r = new RequestRejected(mapped, err.message);
      return reply.code(r.httpStatus).send({ error: r.toJSON() });
    }
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      const r = new RequestRejected('invalid_body', err.message);
      return reply.code(err.statusCode).send({ error: { code: r.code, message: err.message, retriable: false } });
    }
    request.log.error({ err }, 'unexpected error');
    const r = new RequestRejected('internal_error', 'internal error');
    return reply.code(500).send({ error: r.toJSON() });
  });

  app.setNotFoundHandler((request, reply) => {
    const r = new RequestRejected('not_found', `no route ${request.method} ${request.url.split('?')[0]}`);
    return reply.code(404).send({ error: r.toJSON() });
  });
}
