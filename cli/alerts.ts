/** `hourglass alerts`: firing alerts and those resolved recently. */
import { parseArgs } from 'node:util';
import { HOUR_MS } from '../core/hours.js';
import { configFromFlags, DATA_DIR_OPTIONS, DATA_DIR_USAGE, formatFlag, formatRows, numberFlag } from './common.js';
import { commandClock, openStateStore } from './pipeline.js';
import { type CliIo, UsageError } from './usage.js';

export const ALERTS_USAGE = `Usage: hourglass alerts [--firing] [--type T] [--hours N] [--format table|csv|json] [--data-dir D]

Lists alerts, newest first: every firing alert and those resolved in the last N hours of the
pipeline's time, with the routes they reached (page, ticket) and how often they were notified.
  --firing          only firing alerts
  --type T          only this event type
  --hours N         resolved alerts of the last N hours (default 24)
  -f, --format F    table (default), csv, or json
${DATA_DIR_USAGE}`;

export async function runAlerts(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...DATA_DIR_OPTIONS,
      firing: { type: 'boolean' },
      type: { type: 'string' },
      hours: { type: 'string' },
      format: { type: 'string', short: 'f' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout.write(`${ALERTS_USAGE}\n`);
    return 0;
  }
  const format = formatFlag(values.format);
  const hours = numberFlag('hours', values.hours) ?? 24;
  if (!(hours > 0)) throw new UsageError(`--hours must be positive, got ${hours}`);
  const config = configFromFlags(values, {}, { existingDataDir: true });
  const store = await openStateStore(config);
  try {
    const now = commandClock(config, values).now();
    const alerts = await store.listAlerts({
      state: values.firing ? 'firing' : undefined,
      type: values.type,
      since: now - hours * HOUR_MS,
    });
    const time = (ms: number | null): string | null =>
      ms === null
        ? null
        : format === 'table'
          ? new Date(ms).toISOString().slice(0, 16).replace('T', ' ')
          : new Date(ms).toISOString();
    const rows = alerts.map((a) => ({
      id: a.seq,
      state: a.state,
      rule: a.rule,
      type: a.type,
      tier: a.tier,
      opened: time(a.openedAt),
      resolved: time(a.resolvedAt),
      routes: a.routes.join('+'),
      notified: a.notifications,
      summary: a.summary,
      ...(format === 'table' ? {} : { details: a.details }),
    }));
    const columns = rows[0] ? Object.keys(rows[0]) : ['id', 'state', 'rule', 'type', 'summary'];
    io.stdout.write(formatRows(columns, rows, format));
    return 0;
  } finally {
    await store.close();
  }
}
