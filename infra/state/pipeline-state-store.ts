/**
 * The state of the second pipeline of a parallel run: what the ingress records (ledgers, ingress
 * instances, dead letters) and the registry (types, steps, tokens, alerts) are shared with the main
 * pipeline, while the ETL's own progress (raw files, hours, jobs) is kept in a store of its own, since
 * both pipelines close and publish the same hours independently.
 */
import type {
  AlertFilter,
  AlertPatch,
  AlertRecord,
  AlertRuleSpec,
  ApiToken,
  DeadLetter,
  HourFilter,
  HourPatch,
  HourRecord,
  HourUpdate,
  IngressInstance,
  JobFilter,
  JobKey,
  JobLease,
  JobOutcome,
  JobRecord,
  LedgerEntry,
  LedgerFilter,
  LedgerKey,
  NewAlert,
  NewDeadLetter,
  ProducerKey,
  RawFile,
  ReconcileStep,
  RegisteredType,
  RegistryChange,
  StateStore,
  TypeWrite,
} from '../../core/ports/state-store.js';

export class PipelineStateStore implements StateStore {
  readonly backend: string;

  /**
   * @param shared the main pipeline's store (ledgers, instances, registry, alerts)
   * @param own this pipeline's store (raw files and hours); closed with this one
   */
  constructor(
    private readonly shared: StateStore,
    private readonly own: StateStore,
  ) {
    this.backend = own.backend;
  }

  saveLedgers(entries: readonly LedgerEntry[]): Promise<void> {
    return this.shared.saveLedgers(entries);
  }
  sealLedgers(keys: readonly LedgerKey[], at: number): Promise<void> {
    return this.shared.sealLedgers(keys, at);
  }
  async listLedgers(filter?: LedgerFilter): Promise<LedgerEntry[]> {
    if (!filter?.unclosed) return this.shared.listLedgers(filter);
    // "unclosed" is about this pipeline's hours
    const { unclosed: _, ...rest } = filter;
    const [entries, hours] = await Promise.all([this.shared.listLedgers(rest), this.own.listHours()]);
    const closed = new Set(hours.map((h) => `${h.type}\u0000${h.hour}`));
    return entries.filter((e) => !closed.has(`${e.type}\u0000${e.hour}`));
  }
  upsertInstance(instance: IngressInstance): Promise<void> {
    return this.shared.upsertInstance(instance);
  }
  listInstances(): Promise<IngressInstance[]> {
    return this.shared.listInstances();
  }
  addDeadLetters(items: readonly NewDeadLetter[], maxPerType: number): Promise<void> {
    return this.shared.addDeadLetters(items, maxPerType);
  }
  listDeadLetters(type: string, limit: number): Promise<DeadLetter[]> {
    return this.shared.listDeadLetters(type, limit);
  }
  deadLetterTotals(): Promise<Record<string, number>> {
    return this.shared.deadLetterTotals();
  }

  registerFile(file: RawFile): Promise<'registered' | 'hour_closed'> {
    return this.own.registerFile(file);
  }
  listFiles(type: string, hour: number, kind: RawFile['kind']): Promise<RawFile[]> {
    return this.own.listFiles(type, hour, kind);
  }
  closeHour(record: Parameters<StateStore['closeHour']>[0]): Promise<boolean> {
    return this.own.closeHour(record);
  }
  updateHour(type: string, hour: number, patch: HourPatch, at: number, fence?: JobLease): Promise<void> {
    return this.own.updateHour(type, hour, patch, at, fence);
  }
  claimJob(key: JobKey, holder: string, leaseMs: number): Promise<JobLease | null> {
    return this.own.claimJob(key, holder, leaseMs);
  }
  renewJob(lease: JobLease, leaseMs: number): Promise<number | null> {
    return this.own.renewJob(lease, leaseMs);
  }
  finishJob(lease: JobLease, outcome: JobOutcome, hours: readonly HourUpdate[], at: number): Promise<boolean> {
    return this.own.finishJob(lease, outcome, hours, at);
  }
  listJobs(filter?: JobFilter): Promise<JobRecord[]> {
    return this.own.listJobs(filter);
  }
  listHours(filter?: HourFilter): Promise<HourRecord[]> {
    return this.own.listHours(filter);
  }
  forgetHours(type: string, before: number): Promise<number> {
    return this.own.forgetHours(type, before);
  }
  lastCommits(): Promise<Record<string, number>> {
    return this.own.lastCommits();
  }

  saveType(write: TypeWrite): Promise<RegisteredType> {
    return this.shared.saveType(write);
  }
  getType(name: string): Promise<RegisteredType | null> {
    return this.shared.getType(name);
  }
  listTypes(): Promise<RegisteredType[]> {
    return this.shared.listTypes();
  }
  typeHistory(name: string): Promise<RegistryChange[]> {
    return this.shared.typeHistory(name);
  }
  saveSteps(steps: readonly ReconcileStep[]): Promise<void> {
    return this.shared.saveSteps(steps);
  }
  listSteps(type?: string): Promise<ReconcileStep[]> {
    return this.shared.listSteps(type);
  }
  ensureSetting(key: string, value: string, at: number): Promise<string> {
    return this.shared.ensureSetting(key, value, at);
  }
  addToken(token: ApiToken): Promise<void> {
    return this.shared.addToken(token);
  }
  getToken(id: string): Promise<ApiToken | null> {
    return this.shared.getToken(id);
  }
  listTokens(): Promise<ApiToken[]> {
    return this.shared.listTokens();
  }
  revokeToken(id: string, at: number): Promise<boolean> {
    return this.shared.revokeToken(id, at);
  }
  touchToken(id: string, at: number, minIntervalMs: number): Promise<boolean> {
    return this.shared.touchToken(id, at, minIntervalMs);
  }
  addProducerKey(key: ProducerKey): Promise<void> {
    return this.shared.addProducerKey(key);
  }
  getProducerKey(id: string): Promise<ProducerKey | null> {
    return this.shared.getProducerKey(id);
  }
  listProducerKeys(): Promise<ProducerKey[]> {
    return this.shared.listProducerKeys();
  }
  revokeProducerKey(id: string, at: number): Promise<boolean> {
    return this.shared.revokeProducerKey(id, at);
  }
  saveAlertRules(type: string, rules: readonly AlertRuleSpec[]): Promise<void> {
    return this.shared.saveAlertRules(type, rules);
  }
  listAlertRules(type?: string): Promise<AlertRuleSpec[]> {
    return this.shared.listAlertRules(type);
  }
  openAlert(alert: NewAlert): Promise<AlertRecord | null> {
    return this.shared.openAlert(alert);
  }
  updateAlert(seq: number, patch: AlertPatch, at: number, expectedNotifications?: number): Promise<boolean> {
    return this.shared.updateAlert(seq, patch, at, expectedNotifications);
  }
  listAlerts(filter?: AlertFilter): Promise<AlertRecord[]> {
    return this.shared.listAlerts(filter);
  }

  async ping(): Promise<boolean> {
    const [a, b] = await Promise.all([this.shared.ping(), this.own.ping()]);
    return a && b;
  }
  /** Closes this pipeline's own store (the shared one belongs to its opener). */
  close(): Promise<void> {
    return this.own.close();
  }
}
