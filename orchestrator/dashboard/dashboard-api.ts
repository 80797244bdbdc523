/**
 * The operator's view over HTTP, served by `hourglass dev` (on the ingress port) and by
 * `hourglass orchestrator`. Read-only and unauthenticated, like `/metrics`: bind it to a private
 * address or put it behind the deployment's proxy.
 *
 *   GET /dashboard                      the dashboard page (no external assets)
 *   GET /v1/dashboard?hours=N           the grid: types × the last N hours (default 48, 1–168)
 *   GET /v1/hours/:type/:hour           one hour: state, counts, SLO, files, manifest
 *                                       (`:hour` as `2026-11-22T10`, an ISO time, or epoch ms)
 *   GET /v1/types/:type/panel?hours=N   a type's throughput per hour, reject reasons, alerts
 *   GET /v1/alerts?state=firing|resolved&type=T&hours=N   alerts firing or resolved in the last N hours
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { RequestRejected, TypeNotFound } from '../../core/errors.js';
import type { EventType } from '../../core/event-types.js';
import { HOUR_MS, hourStart } from '../../core/hours.js';
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

export function registerDashboard(app: FastifyInstance, deps: DashboardDeps): void {
  const page = readFileSync(PAGE, 'utf8');
  const typeOf = (name: string): EventType => {
    const t = deps.catalog.get(name);
    if (t === undefined) throw new TypeNotFound({ type: name });
    return t;
  };

  app.get('/dashboard', async (_request, reply) =>
    reply.header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(page),
  );

  app.get<{ Querystring: { hours?: string } }>('/v1/dashboard', async (request) =>
    dashboardGrid(deps, hoursParam(request.query.hours, 48)),
  );

  app.get<{ Params: { type: string; hour: string } }>('/v1/hours/:type/:hour', async (request) =>
    hourDetail(deps, typeOf(request.params.type), parseHour(request.params.hour)),
  );

  app.get<{ Params: { type: string }; Querystring: { hours?: string } }>('/v1/types/:type/panel', async (request) =>
    typePanel(deps, typeOf(request.params.type), hoursParam(request.query.hours, 48)),
  );

  app.get<{ Querystring: { state?: string; type?: string; hours?: string } }>('/v1/alerts', async (request) => {
    const { state, type } = request.query;
    if (state !== undefined && state !== 'firing' && state !== 'resolved') {
      throw new RequestRejected('invalid_query', `state: must be firing or resolved, got ${JSON.stringify(state)}`);
    }
    const hours = hoursParam(request.query.hours, 48);
    const alerts = await deps.store.listAlerts({ state, type, since: deps.now() - hours * HOUR_MS, limit: 500 });
    return { alerts: alerts.map(alertJson) };
  });
}
