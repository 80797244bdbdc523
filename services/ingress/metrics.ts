/** Prometheus metrics of the ingress, on a registry of its own (one per app instance). */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface IngressMetrics {
  readonly registry: Registry;
  readonly accepted: Counter<'type'>;
  readonly rejected: Counter<'type' | 'code'>;
  readonly requests: Counter<'status'>;
  readonly publishSeconds: Histogram<'type'>;
  readonly requestSeconds: Histogram;
  readonly inFlightBytes: Gauge;
  readonly connectionsDropped: Counter;
  readonly deadLettersDropped: Gauge;
  readonly rateLimited: Counter<'producer'>;
}

export function createIngressMetrics(options: { defaultMetrics?: boolean } = {}): IngressMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'hourglass_process_' });
  const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
  return {
    registry,
    accepted: new Counter({
      name: 'hourglass_ingress_events_accepted_total',
      help: 'Events accepted (durable on the bus), by type.',
      labelNames: ['type'],
      registers: [registry],
    }),
    rejected: new Counter({
      name: 'hourglass_ingress_events_rejected_total',
      help: 'Events rejected, by type (_unknown when not registered) and rejection code.',
      labelNames: ['type', 'code'],
      registers: [registry],
    }),
    requests: new Counter({
      name: 'hourglass_ingress_requests_total',
      help: 'Event batch requests answered, by HTTP status.',
      labelNames: ['status'],
      registers: [registry],
    }),
    publishSeconds: new Histogram({
      name: 'hourglass_ingress_publish_duration_seconds',
      help: 'Time from publish to durable confirmation by the bus, per batch and type.',
      labelNames: ['type'],
      buckets: latencyBuckets,
      registers: [registry],
    }),
    requestSeconds: new Histogram({
      name: 'hourglass_ingress_request_duration_seconds',
      help: 'Time to answer an event batch request.',
      buckets: latencyBuckets,
      registers: [registry],
    }),
    inFlightBytes: new Gauge({
      name: 'hourglass_ingress_in_flight_bytes',
      help: 'Request body bytes being processed.',
      registers: [registry],
    }),
    connectionsDropped: new Counter({
      name: 'hourglass_ingress_connections_dropped_total',
      help: 'Connections closed on arrival because ingress.maxConnections were open.',
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'hourglass_ingress_rate_limited_total',
      help: 'Requests refused with 429 rate_limited, by producer (the key is over its rate).',
      labelNames: ['producer'],
      registers: [registry],
    }),
    deadLettersDropped: new Gauge({
      name: 'hourglass_ingress_dead_letters_dropped',
      help: 'Rejected events not stored in the dead-letter area (buffer full or store failing).',
      registers: [registry],
    }),
  };
}
