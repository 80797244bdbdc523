/** `GET /` on a listener that serves the dashboard: a 302 to it, so the bare address opens the page. */
import type { FastifyInstance } from 'fastify';

export const DASHBOARD_PATH = '/dashboard';

export function redirectHomeToDashboard(app: FastifyInstance): void {
  app.get('/', async (_request, reply) => reply.redirect(DASHBOARD_PATH, 302));
}
