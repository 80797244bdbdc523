/** Flags shared by the commands that work on a data dir. */
import { type HourglassConfig, loadConfig } from '../core/config.js';
import { UsageError } from './usage.js';

export const DATA_DIR_OPTIONS = {
  'data-dir': { type: 'string' },
  schemas: { type: 'string' },
  config: { type: 'string' },
  'time-scale': { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const DATA_DIR_USAGE = `  --data-dir D      the pipeline's data dir (default ./.hourglass)
  --schemas DIR     event type declarations (default ./schemas)
  --time-scale N    the time scale the pipeline runs with (dev and tests only; default 1)
  --config FILE     JSON config file (see README, Configuration)`;

export function numberFlag(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, got ${JSON.stringify(v)}`);
  return n;
}

export function configFromFlags(
  values: Record<string, string | boolean | undefined>,
  overrides: Record<string, unknown> = {},
): HourglassConfig {
  const s = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  return loadConfig({
    file: s('config'),
    env: process.env,
    overrides: {
      dataDir: s('data-dir'),
      schemasDir: s('schemas'),
      timeScale: numberFlag('time-scale', s('time-scale')),
      logLevel: s('log-level'),
      ...overrides,
    },
  });
}

export type OutputFormat = 'table' | 'csv' | 'json';

export function formatFlag(v: string | undefined): OutputFormat {
  const f = v ?? 'table';
  if (f !== 'table' && f !== 'csv' && f !== 'json') {
    throw new UsageError(`--format must be table, csv or json, got ${JSON.stringify(f)}`);
  }
  return f;
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** Rows as an aligned text table, CSV (RFC 4180) or a JSON array. */
export function formatRows(
  columns: readonly string[],
  rows: readonly Record<string, unknown>[],
  format: OutputFormat,
): string {
  if (format === 'json') return `${JSON.stringify(rows, null, 2)}\n`;
  if (format === 'csv') {
    const q = (s: string): string => (/[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
    return `${[columns.map(q).join(','), ...rows.map((r) => columns.map((c) => q(cell(r[c]))).join(','))].join('\n')}\n`;
  }
  const text = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.min(60, Math.max(c.length, ...text.map((t) => (t[i] as string).length))));
  const line = (cells: readonly string[]): string =>
    cells
      .map((v, i) => {
        const w = widths[i] as number;
        const s = v.length > w ? `${v.slice(0, w - 1)}…` : v;
        return s.padEnd(w);
      })
      .join('  ')
      .trimEnd();
  return `${[line(columns), line(widths.map((w) => '─'.repeat(w))), ...text.map(line)].join('\n')}\n(${rows.length} row${rows.length === 1 ? '' : 's'})\n`;
}
