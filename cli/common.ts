/** Flags shared by the commands that work on a data dir. */
import { statSync } from 'node:fs';
import { type HourglassConfig, loadConfig } from '../core/config.js';
import { renderTable, terminalWidth } from './table.js';
import { UsageError } from './usage.js';

export const DATA_DIR_OPTIONS = {
  'data-dir': { type: 'string' },
  schemas: { type: 'string' },
  config: { type: 'string' },
  'time-scale': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const DATA_DIR_USAGE = `  --data-dir D      the pipeline's data dir (default ./.hourglass)
  --schemas DIR     event type declarations (default ./schemas)
  --time-scale N    the time scale the pipeline runs with (dev and tests only; default 1)
  --config FILE     config file, JSON or YAML (see README, Configuration)
  -h, --help        show this help`;

/** Flags of the commands that log (the long-running ones, and audit). */
export const LOG_OPTIONS = {
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
} as const;

export const LOG_USAGE = `  --log-level L     fatal|error|warn|info|debug|trace|silent (default info)
  --log-format F    pretty (readable lines) or json (one object per line); default pretty
                    when stderr is a terminal, else json (HOURGLASS_LOG_FORMAT)`;

export function numberFlag(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, got ${JSON.stringify(v)}`);
  return n;
}

export interface ConfigFromFlagsOptions {
  /** The command only reads a pipeline's data: refuse a data dir that does not exist ({@link requireDataDir}). */
  readonly existingDataDir?: boolean;
}

export function configFromFlags(
  values: Record<string, string | boolean | undefined>,
  overrides: Record<string, unknown> = {},
  options: ConfigFromFlagsOptions = {},
): HourglassConfig {
  const s = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const config = loadConfig({
    file: s('config'),
    env: process.env,
    overrides: {
      dataDir: s('data-dir'),
      schemasDir: s('schemas'),
      timeScale: numberFlag('time-scale', s('time-scale')),
      logLevel: s('log-level'),
      logFormat: s('log-format'),
      ...overrides,
    },
  });
  if (options.existingDataDir === true) requireDataDir(config);
  return config;
}

/**
 * Refuses a data dir that does not exist, for the commands that only read a pipeline's data:
 * opening it would create an empty pipeline there and answer from it as if all were well. Not
 * checked when the pipeline keeps nothing in it (PostgreSQL state and Cloud Storage objects).
 */
export function requireDataDir(config: HourglassConfig): void {
  if (config.state.backend !== 'sqlite' && config.store.backend !== 'fs') return;
  if (statSync(config.dataDir, { throwIfNoEntry: false })?.isDirectory() === true) return;
  throw new UsageError(
    `no data dir ${config.dataDir} (start hourglass dev --data-dir ${config.dataDir} first, or check the path)`,
  );
}

/** Refuses a folder that does not exist, naming it and what it was meant to hold. */
export function requireFolder(dir: string, what: string): void {
  const stat = statSync(dir, { throwIfNoEntry: false });
  if (stat === undefined) throw new UsageError(`no folder ${dir} (${what})`);
  if (!stat.isDirectory()) throw new UsageError(`${dir} is not a folder (${what})`);
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

/**
 * Rows as an aligned text table, CSV (RFC 4180) or a JSON array. A table fits `width` columns,
 * wrapping long cells within their column (default: the terminal's width when stdout is one);
 * with `width` null (stdout is not a terminal) every cell is printed whole.
 */
export function formatRows(
  columns: readonly string[],
  rows: readonly Record<string, unknown>[],
  format: OutputFormat,
  width: number | null = terminalWidth(process.stdout),
): string {
  if (format === 'json') return `${JSON.stringify(rows, null, 2)}\n`;
  if (format === 'csv') {
    const q = (s: string): string => (/[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
    return `${[columns.map(q).join(','), ...rows.map((r) => columns.map((c) => q(cell(r[c]))).join(','))].join('\n')}\n`;
  }
  return renderTable(
    columns,
    rows.map((r) => columns.map((c) => cell(r[c]))),
    width,
  );
}
