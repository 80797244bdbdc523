/** Prometheus metrics of the ETL (consumers, closer, dedup), registered on a given registry. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface EtlMetrics {
  readonly eventsCommitted: Counter<'type' | 'kind'>;
  readonly filesCommitted: Counter<'type' | 'kind'>;
  readonly commitSeconds: Histogram<'type'>;
  readonly commitFailures: Counter<'type'>;
  readonly badMessages: Counter<'type' | 'code'>;
  readonly lateEvents: Counter<'type'>;
  readonly hoursClosed: Counter<'type' | 'rule'>;
  readonly hoursPublished: Counter<'type'>;
  readonly hoursFailed: Counter<'type'>;
  readonly dedupFailures: Counter<'type'>;
  readonly hoursClosing: Gauge<'type'>;
  readonly duplicatesRemoved: Counter<'type'>;
  readonly idConflicts: Counter<'type'>;
  readonly dedupSeconds: Histogram<'type'>;
  readonly bufferedBytes: Gauge<'type'>;
  readonly dedupRatio: Gauge<'type'>;
  readonly deliveryDelay: Histogram<'type' | 'tier'>;
  readonly jobClaims: Counter<'kind' | 'type'>;
  readonly leasesLost: Counter<'kind' | 'type'>;
  readonly jobsRunning: Gauge<'kind'>;
}

export function createEtlMetrics(registry: Registry): EtlMetrics {
  const registers = [registry];
  return {
    eventsCommitted: new Counter({
      name: 'hourglass_etl_events_committed_total',
      help: 'Events written into committed files, by type and kind (raw, late).',
      labelNames: ['type', 'kind'],
      registers,
    }),
    filesCommitted: new Counter({
      name: 'hourglass_etl_files_committed_total',
      help: 'Files committed to the object store, by type and kind (raw, late).',
      labelNames: ['type', 'kind'],
      registers,
    }),
    commitSeconds: new Histogram({
      name: 'hourglass_etl_commit_duration_seconds',
      help: 'Time to finish, store and register one file.',
      labelNames: ['type'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    commitFailures: new Counter({
      name: 'hourglass_etl_commit_failures_total',
      help: 'File commits that failed (their messages are redelivered).',
      labelNames: ['type'],
      registers,
    }),
    badMessages: new Counter({
      name: 'hourglass_etl_bad_messages_total',
      help: 'Bus messages that could not be stored (dead-lettered), by type and code.',
      labelNames: ['type', 'code'],
      registers,
    }),
    lateEvents: new Counter({
      name: 'hourglass_etl_late_events_total',
      help: 'Events that arrived after their hour closed (kept under late/).',
      labelNames: ['type'],
      registers,
    }),
    hoursClosed: new Counter({
      name: 'hourglass_etl_hours_closed_total',
      help: 'Hours closed, by type and rule (sealed, vanished).',
      labelNames: ['type', 'rule'],
      registers,
    }),
    hoursPublished: new Counter({
      name: 'hourglass_etl_partitions_published_total',
      help: 'Final partitions published, by type.',
      labelNames: ['type'],
      registers,
    }),
    hoursFailed: new Counter({
      name: 'hourglass_etl_completeness_violations_total',
      help: 'Hours whose raw bucket lacks ledgered events (publication stopped).',
      labelNames: ['type'],
      registers,
    }),
    dedupFailures: new Counter({
      name: 'hourglass_etl_dedup_failures_total',
      help: 'Dedup attempts that failed (and are retried with backoff), by type.',
      labelNames: ['type'],
      registers,
    }),
    hoursClosing: new Gauge({
      name: 'hourglass_etl_hours_closing',
      help: 'Ended hours the closer is waiting on (not complete yet), by type, at its last pass.',
      labelNames: ['type'],
      registers,
    }),
    duplicatesRemoved: new Counter({
      name: 'hourglass_etl_duplicates_removed_total',
      help: 'Duplicate events removed by the dedup step, by type.',
      labelNames: ['type'],
      registers,
    }),
    idConflicts: new Counter({
      name: 'hourglass_etl_id_conflicts_total',
      help: 'Duplicates removed whose payload differed from the copy kept (a producer reused an id), by type.',
      labelNames: ['type'],
      registers,
    }),
    dedupSeconds: new Histogram({
      name: 'hourglass_etl_dedup_duration_seconds',
      help: 'Time to dedup and publish one partition.',
      labelNames: ['type'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
    bufferedBytes: new Gauge({
      name: 'hourglass_etl_buffered_bytes',
      help: 'Bytes held in open files, by type.',
      labelNames: ['type'],
      registers,
    }),
    dedupRatio: new Gauge({
      name: 'hourglass_etl_dedup_ratio',
      help: 'Share of the raw events of the last published partition that were duplicates, by type.',
      labelNames: ['type'],
      registers,
    }),
    deliveryDelay: new Histogram({
      name: 'hourglass_delivery_delay_seconds',
      help: "Time from a partition's end to its publication (pipeline clock), by type and tier.",
      labelNames: ['type', 'tier'],
      buckets: [10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 24 * 3600, 72 * 3600],
      registers,
    }),
    jobClaims: new Counter({
      name: 'hourglass_etl_job_claims_total',
      help: 'Batch jobs (close, dedup, load) claimed by this process, by kind and type (a retry or takeover is a claim too).',
      labelNames: ['kind', 'type'],
      registers,
    }),
    leasesLost: new Counter({
      name: 'hourglass_etl_job_leases_lost_total',
      help: 'Claims this process lost to another worker (its lease ended first), by kind and type.',
      labelNames: ['kind', 'type'],
      registers,
    }),
    jobsRunning: new Gauge({
      name: 'hourglass_etl_jobs_running',
      help: 'Batch jobs this process runs now, by kind.',
      labelNames: ['kind'],
      registers,
    }),
  };
}
