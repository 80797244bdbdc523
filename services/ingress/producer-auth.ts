/**
 * Producer authentication of `POST /v1/events`: the key is checked before the body is read (a
 * request without a valid key costs no parsing), the page's origin must be one the key lists
 * (browsers as producers, CORS), and the key's rate is taken once the batch size is known. A key
 * over its rate (its bucket empty: TokenBucket) is refused (429) before the body is read, so a
 * producer flooding far over its rate costs the ingress no parsing. That refusal is held for
 * `holdMs` before it is answered (up to `holdPerKey` requests of a key at once, holding no share
 * of the in-flight budget): a flooding client then sends a request per connection and hold, not
 * hundreds a second, and the bodies the ingress must still receive and drop (with the garbage
 * they make) fall with them. Past the cap a refusal is answered at once with `Connection: close`,
 * so its body is not received either.
 *
 * CORS: a preflight (`OPTIONS /v1/events`) carries no key, so it is answered for any origin that
 * some active key lists; the real request is then checked against its own key's origins. Requests
 * from a page of another origin get 403 origin_not_allowed and no CORS headers, so the browser
 * shows the page nothing.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, preParsingHookHandler } from 'fastify';
import { OriginNotAllowed, RateLimited } from '../../core/errors.js';
import type { ProducerScope } from './ingest.js';
import { normalizeOrigin, type ProducerKeyCache, type ProducerPrincipal } from './producer-keys.js';

export interface ProducerAuth {
  /** The route's preParsing hook: authenticates, checks the origin. */
  readonly hook: preParsingHookHandler;
  /** Takes `events` from the request's key's rate (throws RateLimited) and returns its scope. */
  admit(request: FastifyRequest, events: number): ProducerScope;
}

const PREFLIGHT_MAX_AGE_SECONDS = 600;

export interface ProducerAuthOptions {
  /** Counts a request refused for its key's rate. */
  readonly onRateLimited: (producer: string) => void;
  /** How long a refusal before the body is read waits to be answered (real ms; 0: at once). */
  readonly holdMs: number;
  /** Refusals of one key waiting at once; beyond them: answered at once, connection closed. */
  readonly holdPerKey: number;
  /** Gives back the request's share of the in-flight budget (its body will not be read). */
  readonly releaseBudget: (request: FastifyRequest) => void;
}

export function producerAuth(app: FastifyInstance, keys: ProducerKeyCache, o: ProducerAuthOptions): ProducerAuth {
  const principals = new WeakMap<FastifyRequest, ProducerPrincipal>();
  /** Refusals held per key id. */
  const held = new Map<string, number>();

  app.options('/v1/events', async (request, reply) => {
    const origin = originOf(request);
    if (origin === null || !(await keys.originKnown(origin))) {
      return reply.code(403).send({
        error: { code: 'origin_not_allowed', message: 'no producer key allows this origin', retriable: false },
      });
    }
    return reply
      .code(204)
      .header('access-control-allow-origin', origin)
      .header('access-control-allow-methods', 'POST')
      .header('access-control-allow-headers', 'authorization, content-type')
      .header('access-control-max-age', String(PREFLIGHT_MAX_AGE_SECONDS))
      .header('vary', 'Origin')
      .send();
  });

  const accept = (request: FastifyRequest, reply: FastifyReply, principal: ProducerPrincipal): void => {
    const origin = originOf(request);
    if (origin !== null) {
      if (!principal.origins.has(origin)) throw new OriginNotAllowed({ key: principal.keyId, origin });
      reply.header('access-control-allow-origin', origin).header('vary', 'Origin');
    }
    principals.set(request, principal);
  };

  const refuse = (p: ProducerPrincipal, events: number | undefined, wait: number): RateLimited => {
    o.onRateLimited(p.producer);
    // a flooding key meets this hundreds of times a second: its stack says nothing, so none is captured
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new RateLimited({
        key: p.keyId,
        producer: p.producer,
        ...(events === undefined ? {} : { events }),
        ratePerSec: p.bucket.ratePerSec,
        retryAfterSeconds: wait,
      });
    } finally {
      Error.stackTraceLimit = limit;
    }
  };

  // callback style: a cached key is checked without a promise on the hot path
  const hook: preParsingHookHandler = (request, reply, payload, done) => {
    const finish = (principal: ProducerPrincipal): void => {
      try {
        accept(request, reply, principal);
      } catch (err) {
        done(err as Error);
        return;
      }
      // over the rate: the batch would be refused whatever its size, so its body is not read
      const wait = principal.bucket.waitForOne(performance.now());
      if (wait > 0) {
        holdRefusal(request, reply, principal, done);
        return;
      }
      done(null, payload);
    };
    let got: ProducerPrincipal | Promise<ProducerPrincipal>;
    try {
      got = keys.authenticate(request.headers.authorization);
    } catch (err) {
      done(err as Error);
      return;
    }
    if (got instanceof Promise) got.then(finish, (err: Error) => done(err));
    else finish(got);
  };

  const holdRefusal = (
    request: FastifyRequest,
    reply: FastifyReply,
    principal: ProducerPrincipal,
    done: (err: Error) => void,
  ): void => {
    const id = principal.keyId;
    const holding = held.get(id) ?? 0;
    if (o.holdMs === 0 || holding >= o.holdPerKey) {
      if (o.holdMs > 0) reply.header('connection', 'close');
      done(refuse(principal, undefined, principal.bucket.waitForOne(performance.now())));
      return;
    }
    held.set(id, holding + 1);
    o.releaseBudget(request);
    setTimeout(() => {
      const left = (held.get(id) ?? 1) - 1;
      if (left === 0) held.delete(id);
      else held.set(id, left);
      // a client gone meanwhile gets nothing; fastify drops the answer of a destroyed socket
      done(refuse(principal, undefined, Math.max(1, principal.bucket.waitForOne(performance.now()))));
    }, jittered(o.holdMs)).unref();
  };

  return {
    hook,
    admit(request, events) {
      const p = principals.get(request);
      if (p === undefined) throw new Error('producer auth hook did not run');
      const wait = p.bucket.take(events, performance.now());
      if (wait > 0) throw refuse(p, events, wait);
      return { producer: p.producer, types: p.types };
    },
  };
}

/**
 * Half to one and a half times `ms`, at random: held connections come back spread out, so what a
 * flooding key may still send (its rate) arrives spread out too, not as one burst per hold.
 */
function jittered(ms: number): number {
  return ms * (0.5 + Math.random());
}

function originOf(request: FastifyRequest): string | null {
  const raw = request.headers.origin;
  if (typeof raw !== 'string' || raw === '') return null;
  // "null" (sandboxed frames, file pages) matches no key's origins
  return normalizeOrigin(raw) ?? raw;
}
