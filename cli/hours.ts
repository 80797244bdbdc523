/** `hourglass hours`: every known hour of every type and its state. */
import { parseArgs } from 'node:util';
import { hourLabel } from '../core/hours.js';
import { hourStates } from '../etl/hour-states.js';
import { configFromFlags, DATA_DIR_OPTIONS, DATA_DIR_USAGE, formatFlag, formatRows } from './common.js';
import { openPipelineState, PIPELINE_USAGE, pipelineOf } from './parallel.js';
import { commandClock } from './pipeline.js';
import type { CliIo } from './usage.js';

export const HOURS_USAGE = `Usage: hourglass hours [--type T] [--pipeline NAME] [--data-dir D] [--format table|csv|json]

Lists hours and their states: open (not ended), closing (ended, raw bucket not complete yet),
closed, deduped, published, failed (ledgered events missing), with counts and late events.
  --type T          only this event type
  --format F        table (default), csv, or json
${PIPELINE_USAGE}
${DATA_DIR_USAGE}`;

export async function runHours(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...DATA_DIR_OPTIONS,
      type: { type: 'string' },
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
  const config = configFromFlags(values);
  const store = await openPipelineState(config, pipelineOf(config, values.pipeline));
  try {
    const states = await hourStates(store, commandClock(config, values).now(), { type: values.type });
    const rows = states.map((s) => ({
      type: s.type,
      hour: format === 'table' ? hourLabel(s.hour) : new Date(s.hour).toISOString(),
      state: s.state,
      ledger: s.ledgerEvents,
      in: s.record?.eventsIn ?? null,
      duplicates: s.record?.duplicates ?? null,
      out: s.record?.eventsOut ?? null,
      late: s.record?.lateEvents ?? 0,
      closedBy: s.record?.closedBy ?? null,
      ...(format === 'table' ? {} : { manifest: s.record?.manifest ?? null }),
      error: s.record?.error ?? null,
    }));
    const columns = rows[0] ? Object.keys(rows[0]) : ['type', 'hour', 'state'];
    io.stdout.write(formatRows(columns, rows, format));
    return 0;
  } finally {
    await store.close();
  }
}
