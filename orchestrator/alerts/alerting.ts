/**
 * The alerting engine: evaluates every provisioned rule continuously, keeps one alert per
 * (rule, type) in the state store, and notifies by tier.
 *
 * Each pass: read the rules, take a snapshot per type (hours not published, bus backlog, last
 * commit, sent and rejected counts), check each rule, then
 * - a condition without a firing alert opens one and notifies it (`trigger`) on the routes of its
 *   tier at this time;
 * - a firing alert whose condition holds: notified on a route it has not reached yet (a
 *   normal-tier alert opened at night pages when business hours start), re-notified every
 *   `renotifyMs` on its current routes, and its summary kept current;
 * - a firing alert whose condition cleared (or whose rule was removed) resolves and notifies
 *   `resolve` on the routes it reached.
 * Every change is written with a guard on the alert's notification count before anything is
 * sent, so of several processes evaluating the same store only one notifies. Notifications go to
 * the dispatcher, which queues and retries per sink: evaluation never waits for a sink.
 */
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { Clock } from '../../core/clock.js';
import type { AlertingSettings } from '../../core/config.js';
import { type EventCatalog, type EventType, subscriptionFor } from '../../core/event-types.js';
import { HOUR_MS } from '../../core/hours.js';
import type { AlertNotification, AlertRoute, AlertView } from '../../core/ports/alert-sink.js';
import type { Backlog, Bus } from '../../core/ports/bus.js';
import type { AlertPatch, AlertRecord, AlertRuleSpec, StateStore } from '../../core/ports/state-store.js';
import type { HourStatus } from '../../etl/hour-states.js';
import { routesFor } from './routing.js';
import { type Condition, checkRule, rulesFor } from './rules.js';
import { SendCounts } from './send-counts.js';

export interface Notifier {
  dispatch(notification: AlertNotification): void;
}

export interface AlertingDeps {
  readonly store: StateStore;
  readonly bus: Bus;
  readonly catalog: EventCatalog;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly settings: AlertingSettings;
  /** Where notifications go; null records alerts without notifying. */
  readonly notifier: Notifier | null;
  readonly registry?: Registry;
}

export function alertView(a: AlertRecord): AlertView {
  return {
    id: String(a.seq),
    rule: a.rule,
    type: a.type,
    tier: a.tier,
    state: a.state,
    summary: a.summary,
    details: a.details,
    openedAt: a.openedAt,
    resolvedAt: a.resolvedAt,
    dedupKey: `hourglass/${a.type}/${a.rule}/${a.seq}`,
  };
}

export class AlertingService {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly counts: SendCounts;
  private readonly log: Logger;
  private readonly firingGauge: Gauge<'rule' | 'tier'> | null;

  constructor(private readonly d: AlertingDeps) {
    this.log = d.logger.child({ component: 'alerting' });
    const s = d.settings;
    this.counts = new SendCounts(d.store, d.clock, Math.max(s.rejectRateWindowRealMs, s.deadLetterWindowRealMs));
    this.firingGauge = d.registry
      ? new Gauge({
          name: 'hourglass_alerts_firing',
          help: 'Alerts firing, by rule and tier.',
          labelNames: ['rule', 'tier'],
          registers: [d.registry],
        })
      : null;
  }

  /** Registers the type's alert rules with the current thresholds (idempotent). */
  async provision(type: EventType): Promise<void> {
    const current = await this.d.store.listAlertRules(type.name);
    const wanted = rulesFor(type, this.d.settings, this.d.clock.now());
    const same =
      current.length === wanted.length &&
      wanted.every((w) => {
        const c = current.find((x) => x.rule === w.rule);
        return c !== undefined && JSON.stringify(c.params) === JSON.stringify(w.params);
      });
    if (!same) await this.d.store.saveAlertRules(type.name, wanted);
  }

  /** Removes the type's rules; its firing alerts resolve on the next pass. */
  async unprovision(typeName: string): Promise<void> {
    await this.d.store.saveAlertRules(typeName, []);
  }

  start(): void {
    this.timer = setInterval(() => void this.evaluate(), this.d.settings.evaluateIntervalRealMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One evaluation pass (a call during a pass waits for it). Never throws: failures are logged. */
  evaluate(): Promise<void> {
    this.running ??= this.pass()
      .catch((err: unknown) => this.log.error({ err }, 'alert evaluation failed; trying again next pass'))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  private async pass(): Promise<void> {
    const { store, clock } = this.d;
    const now = clock.now();
    const specs = await store.listAlertRules();
    await this.counts.sample([...new Set(specs.map((s) => s.type))]);
    const byType = new Map<string, AlertRuleSpec[]>();
    for (const s of specs) byType.set(s.type, [...(byType.get(s.type) ?? []), s]);
    const unpublished = await this.unpublishedHours(now);
    const needsCommits = specs.some((s) => s.rule === 'consumer_stuck');
    const backlogs = new Map<string, Backlog | null>();
    let commits: Record<string, number> | null = null;
    const conditions = new Map<string, Condition>();
    for (const [typeName, rules] of byType) {
      const type = this.d.catalog.get(typeName);
      if (type === undefined) continue;
      if (needsCommits && !backlogs.has(typeName)) backlogs.set(typeName, await this.backlog(typeName));
      const backlog = backlogs.get(typeName) ?? null;
      if (commits === null && backlog !== null && backlog.messages > 0) commits = await store.lastCommits();
      for (const spec of rules) {
        const c = checkRule(spec, {
          now,
          scale: clock.scale,
          type,
          unpublished: unpublished.get(typeName) ?? [],
          backlog,
          lastCommitAt: commits?.[typeName] ?? null,
          counts: (w) => this.counts.counts(typeName, w),
        });
        if (c !== null) conditions.set(`${c.rule}\u0000${c.type}`, c);
      }
    }
    const firing = await store.listAlerts({ state: 'firing' });
    const seen = new Set<string>();
    for (const a of firing) {
      const key = `${a.rule}\u0000${a.type}`;
      seen.add(key);
      const c = conditions.get(key);
      if (c === undefined) await this.resolve(a, now);
      else await this.keep(a, c, now);
    }
    for (const [key, c] of conditions) {
      if (seen.has(key)) continue;
      const opened = await store.openAlert({ ...c, openedAt: now });
      if (opened !== null) {
        this.log.warn({ rule: c.rule, type: c.type, tier: c.tier, summary: c.summary }, 'alert opened');
        await this.notify(opened, {}, routesFor(c.tier, now, this.d.settings.businessHours), 'trigger', now);
      }
    }
    if (this.firingGauge) {
      this.firingGauge.reset();
      for (const a of await store.listAlerts({ state: 'firing' })) this.firingGauge.inc({ rule: a.rule, tier: a.tier });
    }
  }

  private async keep(a: AlertRecord, c: Condition, now: number): Promise<void> {
    const wanted = routesFor(a.tier, now, this.d.settings.businessHours);
    const fresh = wanted.filter((r) => !a.routes.includes(r));
    const changed = c.summary !== a.summary ? { summary: c.summary, details: c.details } : {};
    if (fresh.length > 0) {
      await this.notify(a, changed, fresh, 'trigger', now);
    } else if (a.notifiedAt !== null && now - a.notifiedAt >= this.d.settings.renotifyMs) {
      await this.notify(a, changed, wanted, 'renotify', now);
    } else if (a.notifiedAt === null && wanted.length > 0) {
      await this.notify(a, changed, wanted, 'trigger', now); // opened, but its first notice was lost
    } else if (changed.summary !== undefined) {
      await this.d.store.updateAlert(a.seq, changed, now);
    }
  }

  private async resolve(a: AlertRecord, now: number): Promise<void> {
    const won = await this.d.store.updateAlert(a.seq, { state: 'resolved', resolvedAt: now }, now, a.notifications);
    if (!won) return;
    this.log.info({ rule: a.rule, type: a.type }, 'alert resolved');
    const resolved = { ...a, state: 'resolved' as const, resolvedAt: now };
    for (const route of a.routes) this.send('resolve', route, resolved, now);
  }

  /** Records the notification (guarded), then hands it to the dispatcher. */
  private async notify(
    a: AlertRecord,
    patch: AlertPatch,
    routes: readonly AlertRoute[],
    event: 'trigger' | 'renotify',
    now: number,
  ): Promise<void> {
    const next: AlertPatch = {
      ...patch,
      routes: [...new Set([...a.routes, ...routes])],
      notifiedAt: now,
      notifications: a.notifications + 1,
    };
    const won = await this.d.store.updateAlert(a.seq, next, now, a.notifications);
    if (!won) return;
    const current = { ...a, ...next } as AlertRecord;
    for (const route of routes) this.send(event, route, current, now);
  }

  private send(event: AlertNotification['event'], route: AlertRoute, a: AlertRecord, now: number): void {
    this.log.info({ event, route, rule: a.rule, type: a.type, alert: a.seq }, 'alert notification');
    this.d.notifier?.dispatch({ event, route, alert: alertView(a), sentAt: now });
  }

  private async backlog(typeName: string): Promise<Backlog | null> {
    try {
      return await this.d.bus.backlog(subscriptionFor(typeName));
    } catch (err) {
      if ((err as { code?: string }).code === 'subscription_not_found') return null;
      throw err;
    }
  }

  /** Per type: hours with ledger entries and no record yet, and recorded hours not published. */
  private async unpublishedHours(now: number): Promise<Map<string, HourStatus[]>> {
    const [open, recorded] = await Promise.all([
      this.d.store.listLedgers({ unclosed: true }),
      this.d.store.listHours({ states: ['closed', 'deduped', 'failed'] }),
    ]);
    const out = new Map<string, Map<number, HourStatus>>();
    const add = (s: HourStatus): void => {
      const m = out.get(s.type) ?? new Map<number, HourStatus>();
      const prev = m.get(s.hour);
      m.set(s.hour, prev === undefined ? s : { ...prev, ledgerEvents: prev.ledgerEvents + s.ledgerEvents });
      out.set(s.type, m);
    };
    for (const e of open) {
      add({
        type: e.type,
        hour: e.hour,
        state: e.hour + HOUR_MS > now ? 'open' : 'closing',
        ledgerEvents: e.count,
        record: null,
        waitingFor: null,
      });
    }
    for (const r of recorded)
      add({ type: r.type, hour: r.hour, state: r.state, ledgerEvents: r.ledgerTotal, record: r, waitingFor: null });
    return new Map([...out].map(([t, m]) => [t, [...m.values()].sort((a, b) => a.hour - b.hour)]));
  }
}
