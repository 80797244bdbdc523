/**
 * The operator's view over HTTP, served by `hourglass dev` (on the ingress port, or on
 * `ingress.adminPort`) and by `hourglass orchestrator`. Read-only. The page itself holds no data;
 * every data route needs a registry token (`Authorization: Bearer hgt_…`; the page keeps the one it
 * is given in the tab's session storage): an owner token sees its owner's types, an admin token
 * all (see read-access.ts). Every route answers only to the host names in `ingress.allowedHosts`
 * (DNS rebinding), and the page is sent with a strict Content-Security-Policy (its inline script
 * and style allowed by hash, nothing else), `X-Frame-Options: DENY` and `X-Content-Type-Options:
 * nosniff`.
 *
 *   GET /dashboard                      the dashboard page (no external assets)
 *   GET /v1/dashboard?hours=N           the grid: types × the last N hours (default 48, 1–168)
 *   GET /v1/hours/:type/:hour           one hour: state, counts, SLO, files, manifest
 *                                       (`:hour` as `2026-11-22T10`, an ISO time, or epoch ms)
 *   GET /v1/types/:type/panel?hours=N   a type's throughput per hour, reject reasons, alerts
 *   GET /v1/alerts?state=firing|resolved&type=T&hours=N   alerts firing or resolved in the last N hours
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HostNotAllowed, RequestRejected, TypeNotFound } from '../../core/errors.js';
import type { EventType } from '../../core/event-types.js';
import { HOUR_MS, hourStart } from '../../core/hours.js';
import { assertCanRead, canRead, type Reader, readerOf } from '../read-access.js';
import { alertJson, type DashboardDeps, dashboardGrid, hourDetail, typePanel } from './dashboard-data.js';

const PAGE = new URL('./page.html', import.meta.url);

function hoursParam(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 168) {
    throw new RequestRejected('invalid_query', `hours: must be an integer from 1 to 168, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** `2026-11-22T10`, a full ISO time, or epoch ms → start of that UTC hour. */
export function parseHour(raw: string): number {
  const ms = /^\d+$/.test(raw)
    ? Number(raw)
    : Date.parse(/^\d{4}-\d{2}-\d{2}T\d{2}$/.test(raw) ? `${raw}:00:00Z` : raw);
  if (!Number.isFinite(ms)) {
    throw new RequestRejected(
      'invalid_query',
      `hour: expected YYYY-MM-DDTHH, an ISO-8601 time or epoch ms, got ${JSON.stringify(raw)}`,
    );
  }
  return hourStart(ms);
}

/** The page's Content-Security-Policy: its own inline script and style by hash, nothing from elsewhere. */
export function pageSecurityPolicy(page: string): string {
  const hashes = (tag: string): string =>
    [...page.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))]
      .map(
        (m) =>
          `'sha256-${createHash('sha256')
            .update(m[1] as string)
            .digest('base64')}'`,
      )
      .join(' ');
  return [
    "default-src 'none'",
    `script-src ${hashes('script')}`,
    `style-src ${hashes('style')}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The host name of a `Host` header, lower case, without port or IPv6 brackets. */
export function hostName(host: string | undefined): string {
  const h = (host ?? '').trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  return colon >= 0 ? h.slice(0, colon) : h;
}

export function registerDashboard(app: FastifyInstance, deps: DashboardDeps): void {
  const page = readFileSync(PAGE, 'utf8');
  const csp = pageSecurityPolicy(page);
  const allowed = new Set(deps.allowedHosts);
  const typeOf = (name: string): EventType => {
    const t = deps.catalog.get(name);
    if (t === undefined) throw new TypeNotFound({ type: name });
    return t;
  };
  const reader = (request: FastifyRequest): Promise<Reader> => {
    if (allowed.size > 0 && !allowed.has(hostName(request.headers.host))) {
      throw new HostNotAllowed({ host: request.headers.host ?? '' });
    }
    return readerOf(deps.store, request);
  };
  const readable = async (request: FastifyRequest, name: string): Promise<EventType> => {
    const r = await reader(request);
    const t = typeOf(name);
    assertCanRead(r, t);
    return t;
  };

  app.get('/dashboard', async (request, reply) => {
    if (allowed.size > 0 && !allowed.has(hostName(request.headers.host))) {
      throw new HostNotAllowed({ host: request.headers.host ?? '' });
    }
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', csp)
      .header('x-frame-options', 'DENY')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(page);
  });

  app.get<{ Querystring: { hours?: string } }>('/v1/dashboard', async (request) => {
    const r = await reader(request);
    return dashboardGrid(deps, hoursParam(request.query.hours, 48), (t) => canRead(r, t));
  });

  app.get<{ Params: { type: string; hour: string } }>('/v1/hours/:type/:hour', async (request) =>
    hourDetail(deps, await readable(request, request.params.type), parseHour(request.params.hour)),
  );

  app.get<{ Params: { type: string }; Querystring: { hours?: string } }>('/v1/types/:type/panel', async (request) =>
    typePanel(deps, await readable(request, request.params.type), hoursParam(request.query.hours, 48)),
  );

  app.get<{ Querystring: { state?: string; type?: string; hours?: string } }>('/v1/alerts', async (request) => {
    const r = await reader(request);
    const { state, type } = request.query;
    if (state !== undefined && state !== 'firing' && state !== 'resolved') {
      throw new RequestRejected('invalid_query', `state: must be firing or resolved, got ${JSON.stringify(state)}`);
    }
    const hours = hoursParam(request.query.hours, 48);
    const alerts = await deps.store.listAlerts({ state, type, since: deps.now() - hours * HOUR_MS, limit: 500 });
    const mayRead = (name: string): boolean => {
      const t = deps.catalog.get(name);
      return t === undefined ? r.admin : canRead(r, t);
    };
    return { alerts: alerts.filter((a) => mayRead(a.type)).map(alertJson) };
  });
}
