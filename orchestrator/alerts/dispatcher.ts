/**
 * Delivers notifications to the sinks without ever holding up the caller: `dispatch` queues a
 * notification for every sink of its route and returns. Each sink has its own FIFO queue, sent
 * one at a time (a trigger is never overtaken by its resolve), so a slow or failing sink delays
 * only itself. Retriable failures (timeouts, network errors, 429, 5xx) are retried with
 * exponential backoff and jitter up to `maxAttempts`; others are dropped at once. A full queue
 * drops its oldest entry. Every outcome is logged and counted.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AlertNotification, AlertSink } from '../../core/ports/alert-sink.js';

export interface DispatcherOptions {
  readonly sinks: readonly AlertSink[];
  readonly logger: Logger;
  readonly registry?: Registry;
  /** Attempts per notification and sink (default 6). */
  readonly maxAttempts?: number;
  /** First wait before a retry, doubled per attempt (real ms; default 500). */
  readonly backoffRealMs?: number;
  /** Longest wait between attempts (real ms; default 30,000). */
  readonly maxBackoffRealMs?: number;
  /** Notifications queued per sink before the oldest is dropped (default 1,000). */
  readonly queueLimit?: number;
}

interface Lane {
  readonly sink: AlertSink;
  readonly queue: AlertNotification[];
  /** The running drain of the queue, if any. */
  draining: Promise<void> | null;
  timer: NodeJS.Timeout | null;
  wake: (() => void) | null;
  inFlight: AbortController | null;
}

export class AlertDispatcher {
  private readonly lanes: Lane[];
  private readonly maxAttempts: number;
  private readonly backoffRealMs: number;
  private readonly maxBackoffRealMs: number;
  private readonly queueLimit: number;
  private closed = false;
  private readonly outcomes: Counter<'sink' | 'route' | 'event' | 'outcome'> | null;
  private readonly retries: Counter<'sink'> | null;

  constructor(private readonly o: DispatcherOptions) {
    this.lanes = o.sinks.map((sink) => ({ sink, queue: [], draining: null, timer: null, wake: null, inFlight: null }));
    this.maxAttempts = o.maxAttempts ?? 6;
    this.backoffRealMs = o.backoffRealMs ?? 500;
    this.maxBackoffRealMs = o.maxBackoffRealMs ?? 30_000;
    this.queueLimit = o.queueLimit ?? 1000;
    const registers = o.registry ? [o.registry] : [];
    this.outcomes = o.registry
      ? new Counter({
          name: 'hourglass_alert_notifications_total',
          help: 'Alert notifications per sink, route, event and outcome (delivered, failed, dropped).',
          labelNames: ['sink', 'route', 'event', 'outcome'],
          registers,
        })
      : null;
    this.retries = o.registry
      ? new Counter({
          name: 'hourglass_alert_delivery_retries_total',
          help: 'Delivery attempts repeated after a retriable failure, per sink.',
          labelNames: ['sink'],
          registers,
        })
      : null;
    if (o.registry) {
      const lanes = this.lanes;
      new Gauge({
        name: 'hourglass_alert_queue_length',
        help: 'Notifications waiting per sink (the one being sent included).',
        labelNames: ['sink'],
        registers,
        collect() {
          for (const l of lanes) this.set({ sink: l.sink.name }, l.queue.length);
        },
      });
    }
  }

  /** Queues the notification for every sink of its route. Never throws, never waits. */
  dispatch(n: AlertNotification): void {
    if (this.closed) return;
    for (const lane of this.lanes) {
      if (!lane.sink.routes.includes(n.route)) continue;
      if (lane.queue.length >= this.queueLimit) {
        const dropped = lane.queue.splice(lane.draining ? 1 : 0, 1)[0];
        if (dropped !== undefined) this.count(lane, dropped, 'dropped');
        this.o.logger.error(
          { sink: lane.sink.name, alert: dropped?.alert.id, queueLimit: this.queueLimit },
          'alert queue full: oldest notification dropped',
        );
      }
      lane.queue.push(n);
      lane.draining ??= this.drain(lane).finally(() => {
        lane.draining = null;
      });
    }
  }

  /** Resolves once every queue is empty and nothing is being sent. */
  async idle(): Promise<void> {
    while (this.lanes.some((l) => l.draining !== null)) await Promise.all(this.lanes.map((l) => l.draining));
  }

  /** Stops: cancels retries and requests in flight; what is queued is logged as not delivered. */
  async close(): Promise<void> {
    this.closed = true;
    for (const lane of this.lanes) {
      if (lane.timer) clearTimeout(lane.timer);
      lane.wake?.();
      lane.inFlight?.abort();
      for (const n of lane.queue) {
        this.o.logger.warn(
          { sink: lane.sink.name, alert: n.alert.id, event: n.event },
          'alert notification not delivered (stopping)',
        );
      }
    }
    await Promise.all(this.lanes.map((l) => l.draining));
    for (const l of this.lanes) l.queue.length = 0;
  }

  private async drain(lane: Lane): Promise<void> {
    while (!this.closed && lane.queue.length > 0) {
      const n = lane.queue[0] as AlertNotification;
      await this.deliver(lane, n);
      if (lane.queue[0] === n) lane.queue.shift();
    }
  }

  private async deliver(lane: Lane, n: AlertNotification): Promise<void> {
    const log = { sink: lane.sink.name, alert: n.alert.id, rule: n.alert.rule, type: n.alert.type, event: n.event };
    for (let attempt = 1; ; attempt++) {
      if (this.closed) return;
      lane.inFlight = new AbortController();
      try {
        await lane.sink.send(n, lane.inFlight.signal);
        this.count(lane, n, 'delivered');
        if (attempt > 1) this.o.logger.info({ ...log, attempt }, 'alert notification delivered after retries');
        return;
      } catch (err) {
        if (this.closed) return;
        const retriable = (err as { retriable?: boolean }).retriable === true;
        if (!retriable || attempt >= this.maxAttempts) {
          this.count(lane, n, 'failed');
          this.o.logger.error({ ...log, err, attempt }, 'alert notification not delivered');
          return;
        }
        const wait =
          Math.min(this.maxBackoffRealMs, this.backoffRealMs * 2 ** (attempt - 1)) * (0.75 + Math.random() / 2);
        this.retries?.inc({ sink: lane.sink.name });
        this.o.logger.warn(
          { ...log, err, attempt, retryInMs: Math.round(wait) },
          'alert notification failed; retrying',
        );
        await new Promise<void>((r) => {
          lane.wake = r;
          lane.timer = setTimeout(r, wait);
        });
        lane.timer = null;
        lane.wake = null;
      } finally {
        lane.inFlight = null;
      }
    }
  }

  private count(lane: Lane, n: AlertNotification, outcome: 'delivered' | 'failed' | 'dropped'): void {
    this.outcomes?.inc({ sink: lane.sink.name, route: n.route, event: n.event, outcome });
  }
}
