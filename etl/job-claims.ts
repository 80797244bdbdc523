/**
 * Claims on batch jobs (closing an hour, dedup and publication, warehouse loading), held with a
 * lease in the state store: renewed every third of the lease while the job runs, and given up
 * (its `signal` aborted) when a renewal finds the claim lost, or when no renewal succeeded before
 * the lease ended. Correctness does not rest on the abort: every change made under a claim is
 * fenced by its token in the store (LeaseLost), and a partition's manifest is written once.
 */
import type { Logger } from 'pino';
import { LeaseLost } from '../core/errors.js';
import type { HourUpdate, JobKey, JobLease, JobOutcome, StateStore } from '../core/ports/state-store.js';
import type { EtlMetrics } from './metrics.js';

export interface JobClaimsDeps {
  readonly state: StateStore;
  /** Who claims (the ETL process's id). */
  readonly holder: string;
  /** Lease length (real ms). */
  readonly leaseMs: number;
  readonly logger: Logger;
  readonly metrics: EtlMetrics;
}

/** A claimed job: its lease, a signal aborted once the claim is lost, and how to end it. */
export class Claim {
  private readonly abort = new AbortController();
  private readonly timer: NodeJS.Timeout;
  /** Real time (performance.now) by which the lease ends unless renewed, as judged here. */
  private deadline: number;
  private ended = false;

  constructor(
    readonly lease: JobLease,
    private readonly d: JobClaimsDeps,
    claimedAt: number,
  ) {
    this.deadline = claimedAt + d.leaseMs;
    this.timer = setInterval(() => void this.renew(), Math.max(50, Math.floor(d.leaseMs / 3)));
    this.timer.unref();
  }

  /**
   * Aborted when the claim is lost (the job should stop: its changes would be refused), or when
   * the process stops ({@link interrupt}: the job should stop and be released).
   */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Whether {@link interrupt} stopped the job (the claim is still held: release it). */
  get interrupted(): boolean {
    return this.abort.signal.reason instanceof JobInterrupted;
  }

  /** Asks the job to stop because the process stops; the lease stays held until the job releases it. */
  interrupt(): void {
    if (!this.abort.signal.aborted && !this.ended) this.abort.abort(new JobInterrupted());
  }

  private async renew(): Promise<void> {
    if (this.ended) return;
    const asked = performance.now();
    // a store that does not answer (a renewal still pending) must not keep a job running past its lease
    if (asked >= this.deadline) {
      this.lose('its lease ended before a renewal succeeded');
      return;
    }
    try {
      const until = await this.d.state.renewJob(this.lease, this.d.leaseMs);
      if (this.ended) return;
      if (until === null) {
        this.lose('another worker took the job over');
        return;
      }
      this.deadline = asked + this.d.leaseMs;
    } catch (err) {
      if (this.ended) return;
      this.d.logger.warn({ err, job: this.describe() }, 'renewing a job lease failed; retried');
      if (performance.now() >= this.deadline) this.lose('its lease ended before a renewal succeeded');
    }
  }

  private lose(why: string): void {
    if (this.abort.signal.aborted) return;
    clearInterval(this.timer);
    this.d.metrics.leasesLost.inc({ kind: this.lease.kind, type: this.lease.type });
    this.d.logger.warn({ job: this.describe(), why }, 'job lease lost; stopping the job');
    this.abort.abort(new LeaseLost(this.lease));
  }

  /**
   * Ends the claim with `outcome`, applying `hours` atomically with it. Throws LeaseLost (nothing
   * changed) when the claim was lost meanwhile.
   */
  async finish(outcome: JobOutcome, hours: readonly HourUpdate[], at: number): Promise<void> {
    this.stop();
    if (!(await this.d.state.finishJob(this.lease, outcome, hours, at))) throw new LeaseLost(this.lease);
  }

  /**
   * Gives the job back at once without counting this run as an attempt (the process stops, or the
   * step's condition does not hold yet); `error` says why it waits. Throws LeaseLost as {@link finish}.
   */
  release(at: number, error: string | null = null): Promise<void> {
    return this.finish({ state: 'ready', runAfterMs: 0, notAnAttempt: true, error }, [], at);
  }

  /** Stops renewing (the lease then ends by itself; another worker may take the job over). */
  stop(): void {
    this.ended = true;
    clearInterval(this.timer);
  }

  describe(): Record<string, string | number> {
    const l = this.lease;
    return { kind: l.kind, type: l.type, partition: new Date(l.partition).toISOString(), token: l.token };
  }
}

/** The wait before a failed job's next try: 1 s after the first failure, doubling up to 60 s. */
export function retryDelayMs(failures: number): number {
  return Math.min(60_000, 1000 * 2 ** Math.min(Math.max(0, failures - 1), 6));
}

/** Why a job stopped when its process stops (not a failure: the job is released for any worker). */
export class JobInterrupted extends Error {
  constructor() {
    super('the process is stopping');
    this.name = 'JobInterrupted';
  }
}

export class JobClaims {
  constructor(private readonly d: JobClaimsDeps) {}

  /** Claims the job; null when another worker holds it, it waits, or it is finished. */
  async claim(key: JobKey): Promise<Claim | null> {
    const at = performance.now();
    const lease = await this.d.state.claimJob(key, this.d.holder, this.d.leaseMs);
    if (lease === null) return null;
    this.d.metrics.jobClaims.inc({ kind: key.kind, type: key.type });
    return new Claim(lease, this.d, at);
  }
}
