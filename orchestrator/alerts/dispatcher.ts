/**
 * Delivers alert notifications to the sinks without ever holding up the caller.
 *
 * `dispatch` queues a notification for every sink whose routes include the notification's route
 * and returns at once; it never throws. Each sink has its own FIFO queue, sent one notification
 * at a time, so a trigger is never overtaken by its resolve and a slow or failing sink delays
 * only itself. A failure the sink marks retriable (timeouts, network errors, 429, 5xx) is retried
 * after an exponential backoff with jitter, up to `maxAttempts` attempts; when the error carries
 * `retryAfterRealMs` (a receiver's `Retry-After`), the wait is at least that, capped by
 * `maxBackoffRealMs`. Other failures are given up at once. When more than `queueLimit`
 * notifications wait for a sink, the oldest waiting one is dropped. `close` cancels retries and
 * requests in flight; what was not delivered then is logged and counted as dropped.
 *
 * Metrics (when a registry is given): `hourglass_alert_notifications_total{sink,route,event,
 * outcome}` (outcome `delivered`, `failed` or `dropped`), `hourglass_alert_delivery_retries_total
 * {sink}` and the gauge `hourglass_alert_queue_length{sink}`.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AlertNotification, AlertSink } from '../../core/ports/alert-sink.js';

export interface DispatcherOptions {
  readonly sinks: readonly AlertSink[];
  readonly logger: Logger;
  readonly registry?: Registry;
  /** Attempts per notification and sink, the first included (default 6). */
  readonly maxAttempts?: number;
  /** Wait before the first retry, doubled for each further one, ±25% jitter (real ms; default 500). */
  readonly backoffRealMs?: number;
  /** Longest wait between two attempts (real ms; default 30,000). */
  readonly maxBackoffRealMs?: number;
  /**
   * Notifications that may wait per sink, the one being sent not counted; a new one beyond it
   * drops the oldest waiting (default 1,000; at least 1).
   */
  readonly queueLimit?: number;
}

type Outcome = 'delivered' | 'failed' | 'dropped';

interface Lane {
  readonly sink: AlertSink;
  /** Notifications not attempted yet, oldest first. */
  readonly waiting: AlertNotification[];
  /** The notification being sent, or waiting for its next attempt. */
  current: AlertNotification | null;
  /** The loop working through the queue, while there is work. */
  running: Promise<void> | null;
  /** Cancels the attempt in flight. */
  inFlight: AbortController | null;
  retryTimer: NodeJS.Timeout | null;
  /** Ends the wait for the next attempt early. */
  wake: (() => void) | null;
}

interface Metrics {
  readonly notifications: Counter<'sink' | 'route' | 'event' | 'outcome'>;
  readonly retries: Counter<'sink'>;
  readonly queueLength: Gauge<'sink'>;
}

export class AlertDispatcher {
  private readonly lanes: readonly Lane[];
  private readonly logger: Logger;
  private readonly maxAttempts: number;
  private readonly backoffRealMs: number;
  private readonly maxBackoffRealMs: number;
  private readonly queueLimit: number;
  private readonly metrics: Metrics | null;
  private closed = false;

  constructor(o: DispatcherOptions) {
    this.logger = o.logger;
    this.maxAttempts = Math.max(1, Math.floor(o.maxAttempts ?? 6));
    this.backoffRealMs = Math.max(0, o.backoffRealMs ?? 500);
    this.maxBackoffRealMs = Math.max(0, o.maxBackoffRealMs ?? 30_000);
    this.queueLimit = Math.max(1, Math.floor(o.queueLimit ?? 1000));
    this.lanes = o.sinks.map((sink) => ({
      sink,
      waiting: [],
      current: null,
      running: null,
      inFlight: null,
      retryTimer: null,
      wake: null,
    }));
    this.metrics = o.registry ? createMetrics(o.registry) : null;
    for (const lane of this.lanes) this.gauge(lane);
  }

  /** Queues the notification for every sink of its route. Returns at once; never throws. */
  dispatch(n: AlertNotification): void {
    for (const lane of this.lanes) {
      try {
        this.enqueue(lane, n);
      } catch (err) {
        // a broken sink object or notification must not reach the alerting engine
        try {
          this.logger.error({ err, sink: lane.sink?.name }, 'alert notification could not be queued');
        } catch {
          // nothing left to report to
        }
      }
    }
  }

  /** Resolves once every queue is empty and nothing is being sent or waiting for a retry. */
  async idle(): Promise<void> {
    for (;;) {
      const running = this.lanes.flatMap((l) => (l.running === null ? [] : [l.running]));
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  /**
   * Stops: cancels retry waits and requests in flight (without waiting for the sinks to notice)
   * and resolves once every lane stopped. What was not delivered is logged and counted as dropped.
   * Later dispatches are dropped.
   */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const lane of this.lanes) {
        if (lane.retryTimer !== null) clearTimeout(lane.retryTimer);
        lane.wake?.();
        lane.inFlight?.abort(new Error('the alert dispatcher is closing'));
        const pending = lane.current === null ? [...lane.waiting] : [lane.current, ...lane.waiting];
        lane.waiting.length = 0;
        for (const n of pending) {
          this.count(lane, n, 'dropped');
          this.logger.warn(this.fields(lane, n), 'alert notification not delivered: the dispatcher is closing');
        }
      }
    }
    await this.idle();
    for (const lane of this.lanes) this.gauge(lane);
  }

  private enqueue(lane: Lane, n: AlertNotification): void {
    if (!lane.sink.routes.includes(n.route)) return;
    if (this.closed) {
      this.count(lane, n, 'dropped');
      this.logger.warn(this.fields(lane, n), 'alert notification not sent: the dispatcher is closed');
      return;
    }
    if (lane.waiting.length >= this.queueLimit) {
      const dropped = lane.waiting.shift();
      if (dropped !== undefined) {
        this.count(lane, dropped, 'dropped');
        this.logger.error(
          { ...this.fields(lane, dropped), queueLimit: this.queueLimit },
          'alert queue full: oldest waiting notification dropped',
        );
      }
    }
    lane.waiting.push(n);
    this.gauge(lane);
    lane.running ??= this.run(lane);
  }

  private async run(lane: Lane): Promise<void> {
    // start sending after the caller's synchronous code: dispatch returns before any send begins
    await Promise.resolve();
    try {
      for (;;) {
        if (this.closed) break;
        const n = lane.waiting.shift();
        if (n === undefined) break;
        lane.current = n;
        await this.deliver(lane, n);
        lane.current = null;
        this.gauge(lane);
      }
    } catch (err) {
      this.logger.error({ err, sink: lane.sink.name }, 'alert delivery loop failed');
    } finally {
      lane.current = null;
      lane.running = null;
      this.gauge(lane);
    }
  }

  /** Sends one notification, retrying as allowed; counts and logs the outcome. Never throws. */
  private async deliver(lane: Lane, n: AlertNotification): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.closed) return;
      const controller = new AbortController();
      lane.inFlight = controller;
      let error: unknown;
      try {
        await untilAborted(lane.sink.send(n, controller.signal), controller.signal);
        this.count(lane, n, 'delivered');
        if (attempt > 1) this.logger.info({ ...this.fields(lane, n), attempt }, 'alert notification delivered');
        return;
      } catch (err) {
        error = err;
      } finally {
        lane.inFlight = null;
      }
      if (this.closed) return; // close() reports it
      const retriable = (error as { retriable?: unknown } | null)?.retriable === true;
      if (!retriable || attempt >= this.maxAttempts) {
        this.count(lane, n, 'failed');
        this.logger.error(
          { ...this.fields(lane, n), attempt, retriable, err: error },
          retriable ? 'alert notification not delivered: attempts exhausted' : 'alert notification not delivered',
        );
        return;
      }
      const wait = this.backoff(attempt, error);
      this.metrics?.retries.inc({ sink: lane.sink.name });
      this.logger.warn(
        { ...this.fields(lane, n), attempt, retryInMs: Math.round(wait), err: error },
        'alert notification not delivered; retrying',
      );
      await new Promise<void>((resolve) => {
        lane.wake = resolve;
        lane.retryTimer = setTimeout(resolve, wait);
      });
      lane.retryTimer = null;
      lane.wake = null;
    }
  }

  /** The wait after failed attempt `attempt`: exponential, ±25% jitter, at least a Retry-After, capped. */
  private backoff(attempt: number, error: unknown): number {
    const base = this.backoffRealMs * 2 ** (attempt - 1) * (0.75 + Math.random() / 2);
    const asked = (error as { retryAfterRealMs?: unknown } | null)?.retryAfterRealMs;
    const floor = typeof asked === 'number' && Number.isFinite(asked) ? asked : 0;
    return Math.min(this.maxBackoffRealMs, Math.max(base, floor));
  }

  private fields(lane: Lane, n: AlertNotification): Record<string, string> {
    const a = n.alert;
    return { sink: lane.sink.name, alertId: a.id, rule: a.rule, type: a.type, event: n.event, route: n.route };
  }

  private count(lane: Lane, n: AlertNotification, outcome: Outcome): void {
    this.metrics?.notifications.inc({ sink: lane.sink.name, route: n.route, event: n.event, outcome });
  }

  private gauge(lane: Lane): void {
    this.metrics?.queueLength.set({ sink: lane.sink.name }, lane.waiting.length + (lane.current === null ? 0 : 1));
  }
}

/** `p`, or a rejection as soon as `signal` aborts (a sink that ignores its signal cannot hold up close). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** The dispatcher's metrics; an existing registration of the same name is reused. */
function createMetrics(registry: Registry): Metrics {
  const registers = [registry];
  return {
    notifications:
      (registry.getSingleMetric('hourglass_alert_notifications_total') as Metrics['notifications'] | undefined) ??
      new Counter({
        name: 'hourglass_alert_notifications_total',
        help: 'Alert notifications per sink, route, event and outcome (delivered, failed, dropped).',
        labelNames: ['sink', 'route', 'event', 'outcome'],
        registers,
      }),
    retries:
      (registry.getSingleMetric('hourglass_alert_delivery_retries_total') as Metrics['retries'] | undefined) ??
      new Counter({
        name: 'hourglass_alert_delivery_retries_total',
        help: 'Delivery attempts repeated after a retriable failure, per sink.',
        labelNames: ['sink'],
        registers,
      }),
    queueLength:
      (registry.getSingleMetric('hourglass_alert_queue_length') as Metrics['queueLength'] | undefined) ??
      new Gauge({
        name: 'hourglass_alert_queue_length',
        help: 'Alert notifications not delivered yet per sink (waiting, and the one being sent).',
        labelNames: ['sink'],
        registers,
      }),
  };
}
