/** `hourglass hours`: every known hour of every type and its state (a daily type's per day). */

import { parseArgs } from 'node:util';
import { parseDurationMs } from '../core/durations.js';
import { HOUR_MS, hourLabel, hourStart } from '../core/hours.js';
import { silentLogger } from '../core/logger.js';
import type { StateStore } from '../core/ports/state-store.js';
import { storeExplainer } from '../etl/closer.js';
import { hourStates, partitionStates, withJobs } from '../etl/hour-states.js';
import { configFromFlags, DATA_DIR_OPTIONS, DATA_DIR_USAGE, formatFlag, formatRows } from './common.js';
import { openPipelineState, PIPELINE_USAGE, pipelineOf } from './parallel.js';
import { commandClock, etlConfigOf } from './pipeline.js';
import { type CliIo, UsageError } from './usage.js';

export const HOURS_USAGE = `Usage: hourglass hours [--type T] [--since S | --last N] [--pipeline NAME] [--data-dir D] [--format table|csv|json]

Lists hours and their states: open (not ended), closing (ended, raw bucket not complete yet: the
waitingFor column says what for), closed, deduped, published, failed (ledgered events missing),
with counts and late events; error says why an hour failed, or why publishing it fails (retried).
A daily type is listed once per UTC day (its hours are published together).
  --type T          only this event type (a registered type, or one with hours)
  --since S         only hours from S: an ISO time (2026-11-22T10, 2026-11-22T10:30Z) or a
                    duration back from now (30m, 6h, 2d)
  --last N          only the last N hours (the current one included)
  -f, --format F    table (default), csv, or json
${PIPELINE_USAGE}
${DATA_DIR_USAGE}`;

/** Start of the first hour `--since` keeps: an ISO time, `YYYY-MM-DDTHH`, or a duration back from `now`. */
export function parseSince(text: string, now: number): number {
  const back = parseDurationMs(text, 'mhdw');
  if (back !== null) return hourStart(now - back);
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}T\d{2}$/.test(text) ? `${text}:00:00Z` : text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || !Number.isFinite(ms)) {
    throw new UsageError(
      `--since takes an ISO time (2026-11-22T10, 2026-11-22T10:30:00Z) or a duration (30m, 6h, 2d), got ${JSON.stringify(text)}`,
    );
  }
  return hourStart(ms);
}

function parseLast(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--last takes a number of hours ≥ 1, got ${JSON.stringify(text)}`);
  return n;
}

/**
 * Refuses a `--type` that names no registered type and no type with hours or ledgers in the
 * store, naming the known ones.
 */
async function checkType(store: StateStore, type: string): Promise<void> {
  const registered = (await store.listTypes()).map((t) => t.name);
  if (registered.includes(type)) return;
  if ((await store.listHours({ type })).length > 0 || (await store.listLedgers({ type })).length > 0) return;
  const known = new Set(registered);
  for (const h of await store.listHours()) known.add(h.type);
  for (const e of await store.listLedgers()) known.add(e.type);
  const list = [...known].sort();
  throw new UsageError(
    `no event type ${JSON.stringify(type)}; known types: ${list.length === 0 ? '(none)' : list.join(', ')}`,
  );
}

export async function runHours(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...DATA_DIR_OPTIONS,
      type: { type: 'string' },
      since: { type: 'string' },
      last: { type: 'string' },
      format: { type: 'string', short: 'f' },
      pipeline: { type: 'string' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout.write(`${HOURS_USAGE}\n`);
    return 0;
  }
  const format = formatFlag(values.format);
  if (values.since !== undefined && values.last !== undefined) throw new UsageError('give --since or --last, not both');
  const last = values.last === undefined ? undefined : parseLast(values.last);
  const config = configFromFlags(values, {}, { existingDataDir: true });
  const clock = commandClock(config, values);
  const now = clock.now();
  const from =
    values.since !== undefined
      ? parseSince(values.since, now)
      : last !== undefined
        ? hourStart(now) - (last - 1) * HOUR_MS
        : undefined;
  const store = await openPipelineState(config, pipelineOf(config, values.pipeline));
  try {
    if (values.type !== undefined) await checkType(store, values.type);
    const daily = new Set((await store.listTypes()).filter((t) => t.partitioning === 'daily').map((t) => t.name));
    // a daily type's day is listed whole when it overlaps the range
    const dayStart = from === undefined ? undefined : Math.floor(from / (24 * HOUR_MS)) * 24 * HOUR_MS;
    const explain = storeExplainer(store, clock, etlConfigOf(config).closer, silentLogger());
    const states = (await hourStates(store, now, { type: values.type, from: dayStart }, explain)).filter(
      (s) => from === undefined || daily.has(s.type) || s.hour >= from,
    );
    const jobs = await store.listJobs({ type: values.type, from: dayStart });
    const rows = withJobs(
      partitionStates(states, (t) => daily.has(t), now),
      jobs,
    ).map((p) => ({
      type: p.type,
      hour:
        format === 'table'
          ? p.daily
            ? new Date(p.start).toISOString().slice(0, 10)
            : hourLabel(p.start)
          : new Date(p.start).toISOString(),
      ...(format === 'table' ? {} : { partition: p.daily ? 'day' : 'hour' }),
      state: p.state,
      ledger: p.ledgerEvents,
      in: p.eventsIn,
      duplicates: p.duplicates,
      out: p.eventsOut,
      late: p.lateEvents,
      closedBy: p.closedBy,
      attempts: p.attempts,
      worker: p.worker,
      ...(format === 'table' ? {} : { manifest: p.manifest }),
      waitingFor: p.waitingFor,
      error: p.error,
    }));
    const columns = rows[0] ? Object.keys(rows[0]) : ['type', 'hour', 'state'];
    io.stdout.write(formatRows(columns, rows, format));
    return 0;
  } finally {
    await store.close();
  }
}
