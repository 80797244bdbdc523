/** `hourglass audit`: do two pipelines hold the same published partitions? */
import { parseArgs } from 'node:util';
import { type HourglassConfig, loadConfig, MAIN_PIPELINE } from '../core/config.js';
import { ConfigInvalid, InvalidName, RequestRejected, TypeNotFound } from '../core/errors.js';
import { TYPE_NAME_PATTERN } from '../core/event-types.js';
import { hourLabel } from '../core/hours.js';
import { createLogger } from '../core/logger.js';
import {
  type AuditPipeline,
  type AuditReport,
  auditPartitions,
  DELIVERY_COLUMNS,
  type IdList,
  type PartitionAudit,
} from '../etl/audit.js';
import { parseHour } from '../orchestrator/dashboard/dashboard-api.js';
import {
  configFromFlags,
  DATA_DIR_OPTIONS,
  DATA_DIR_USAGE,
  formatRows,
  LOG_OPTIONS,
  LOG_USAGE,
  requireDataDir,
} from './common.js';
import { objectStoreFor, pipelineNames } from './pipeline.js';
import { type CliIo, UsageError } from './usage.js';

export const AUDIT_USAGE = `Usage: hourglass audit --type T --from H1 --to H2 [--limit N] [--accept-other-copies]
                       [--format table|json] [--data-dir D] [--config FILE] [--log-level L] [--log-format F]
                       <pipelineA> <pipelineB>

Compares two pipelines' published partitions (a migration between buses: the ingress publishes
every event to both). Per type and partition (hour, or day for daily types) from H1 up to H2
(excluded): event count, distinct ids (per producer: the same id from two producers is two
events), an order-independent digest of the rows over every column, and the ids either side
lacks (with their producer). A partition published on one side only is a difference; one
published on neither is reported as not published. A pipeline is a name the configuration
defines (${MAIN_PIPELINE}, or parallel.name) or a config file (.json, .yaml, .yml) whose ${MAIN_PIPELINE} pipeline is used.
  --type T          event type; repeat it or separate types with commas
  --from H, --to H  2026-11-22T10, an ISO-8601 time or epoch ms (the hour it falls in)
  --limit N         ids listed per kind of difference and partition (default 20, 0: all);
                    the counts are always exact; applies to both formats
  --accept-other-copies
                    ids whose rows differ only in ${DELIVERY_COLUMNS.join(', ')}
                    (each pipeline kept another copy of a retried event) are not differences
  -f, --format F    table (default) or json
${LOG_USAGE}
${DATA_DIR_USAGE}
Exit status: 0 every partition matches or is published on neither side; 1 a difference, or the
audit could not finish (the message says why); 2 bad arguments or configuration.`;

const DEFAULT_LIMIT = 20;

export async function runAudit(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...DATA_DIR_OPTIONS,
      ...LOG_OPTIONS,
      type: { type: 'string', multiple: true },
      from: { type: 'string' },
      to: { type: 'string' },
      limit: { type: 'string' },
      'accept-other-copies': { type: 'boolean' },
      format: { type: 'string', short: 'f' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(`${AUDIT_USAGE}\n`);
    return 0;
  }
  const types = [...new Set((values.type ?? []).flatMap((t) => t.split(',')).map((t) => t.trim()))].filter(
    (t) => t !== '',
  );
  if (types.length === 0) throw new UsageError('give at least one --type');
  for (const t of types) {
    if (!TYPE_NAME_PATTERN.test(t)) throw new UsageError(`--type ${JSON.stringify(t)} is not an event type name`);
  }
  const from = hourFlag('from', values.from);
  const to = hourFlag('to', values.to);
  if (to <= from) {
    throw new UsageError(
      `--to (${hourLabel(to)}) must come after --from (${hourLabel(from)}): the range is [from, to)`,
    );
  }
  const limit = limitFlag(values.limit);
  const format = values.format ?? 'table';
  if (format !== 'table' && format !== 'json') {
    throw new UsageError(`--format must be table or json, got ${JSON.stringify(format)}`);
  }
  if (positionals.length !== 2) {
    throw new UsageError(
      `give two pipelines to compare (got ${positionals.length}): hourglass audit … <pipelineA> <pipelineB>`,
    );
  }
  const [nameA, nameB] = positionals as [string, string];
  if (nameA === nameB) throw new UsageError(`give two different pipelines (both are ${JSON.stringify(nameA)})`);

  let config: HourglassConfig;
  const pipelines: AuditPipeline[] = [];
  try {
    config = configFromFlags({ ...values, type: undefined });
    const sources = [pipelineSource(config, nameA), pipelineSource(config, nameB)];
    for (const s of sources) pipelines.push(await s.open());
  } catch (err) {
    throw asUsageError(err);
  }
  let report: AuditReport;
  try {
    report = await auditPartitions({
      a: pipelines[0] as AuditPipeline,
      b: pipelines[1] as AuditPipeline,
      types,
      from,
      to,
      idLimit: limit,
      acceptOtherCopies: values['accept-other-copies'] === true,
      memoryBytes: config.etl.duckdbMemoryBytes,
      threads: config.etl.duckdbThreads,
      logger: createLogger(config.logLevel, config.logFormat).child({ component: 'audit' }),
    });
  } catch (err) {
    if (err instanceof TypeNotFound) {
      throw new UsageError(
        `--type ${err.context.type}: neither ${nameA} nor ${nameB} has published anything of this type (check the name)`,
      );
    }
    throw err;
  }
  io.stdout.write(format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.matches ? 0 : 1;
}

function hourFlag(flag: 'from' | 'to', value: string | undefined): number {
  if (value === undefined) throw new UsageError(`--${flag} is required (e.g. --${flag} 2026-11-22T10)`);
  try {
    return parseHour(value);
  } catch (err) {
    if (err instanceof RequestRejected) {
      throw new UsageError(
        `--${flag}: expected YYYY-MM-DDTHH, an ISO-8601 time or epoch ms, got ${JSON.stringify(value)}`,
      );
    }
    throw err;
  }
}

function limitFlag(value: string | undefined): number {
  if (value === undefined) return DEFAULT_LIMIT;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0 || value.trim() === '') {
    throw new UsageError(`--limit must be a whole number ≥ 0 (0: all ids), got ${JSON.stringify(value)}`);
  }
  return n === 0 ? Number.POSITIVE_INFINITY : n;
}

/** Configuration mistakes are usage errors here (exit 1 means "the pipelines differ"). */
function asUsageError(err: unknown): unknown {
  return err instanceof ConfigInvalid || err instanceof InvalidName ? new UsageError(err.message) : err;
}

/**
 * A pipeline argument: a config file (by its extension), whose main pipeline is used, or a name
 * of the pipelines `config` defines. Resolved (and checked) before anything is read.
 */
function pipelineSource(config: HourglassConfig, arg: string): { open(): Promise<AuditPipeline> } {
  if (/\.(json|ya?ml)$/i.test(arg)) {
    const other = loadConfig({ file: arg, env: process.env });
    requireDataDir(other);
    return { open: async () => ({ name: arg, objects: await objectStoreFor(other, MAIN_PIPELINE) }) };
  }
  const names = pipelineNames(config);
  if (!names.includes(arg)) {
    throw new UsageError(
      `no pipeline ${JSON.stringify(arg)} in this configuration (it has: ${names.join(', ')}); ` +
        'or give a config file (.json, .yaml, .yml) whose main pipeline to compare',
    );
  }
  requireDataDir(config);
  return { open: async (): Promise<AuditPipeline> => ({ name: arg, objects: await objectStoreFor(config, arg) }) };
}

const STATUS_TEXT: Record<PartitionAudit['status'], string> = {
  match: 'match',
  differ: 'differ',
  only_a: 'only on a',
  only_b: 'only on b',
  not_published: 'not published',
};

function partitionLabel(p: PartitionAudit): string {
  return p.partitioning === 'daily' ? p.start.slice(0, 10) : hourLabel(Date.parse(p.start));
}

/** The report as a table of partitions, then the ids that differ, then a summary line. */
export function formatReport(report: AuditReport): string {
  const count = (l: IdList): number | null => (l.count === 0 ? null : l.count);
  const rows = report.partitions.map((p) => ({
    type: p.type,
    partition: partitionLabel(p),
    status: STATUS_TEXT[p.status],
    'a events': p.a?.events ?? null,
    'b events': p.b?.events ?? null,
    'a ids': p.a?.ids ?? null,
    'b ids': p.b?.ids ?? null,
    'a digest': p.a?.digest ?? null,
    'b digest': p.b?.digest ?? null,
    'missing on a': count(p.missingOnA),
    'missing on b': count(p.missingOnB),
    'content differs': count(p.contentDiffers),
    'other copy': count(p.otherCopy),
  }));
  const columns = rows[0] ? Object.keys(rows[0]) : ['type', 'partition', 'status'];
  const lines = [`a: ${report.a}`, `b: ${report.b}`];
  if (report.excludedColumns.length > 0) lines.push(`compared without: ${report.excludedColumns.join(', ')}`);
  lines.push('', formatRows(columns, rows, 'table').trimEnd());
  const lists: [keyof Pick<PartitionAudit, 'missingOnA' | 'missingOnB' | 'contentDiffers' | 'otherCopy'>, string][] = [
    ['missingOnA', `ids missing on a (${report.a})`],
    ['missingOnB', `ids missing on b (${report.b})`],
    ['contentDiffers', 'ids whose rows differ'],
    [
      'otherCopy',
      `ids whose rows differ only in the delivery columns${report.excludedColumns.length > 0 ? ' (not a difference)' : ''}`,
    ],
  ];
  for (const p of report.partitions) {
    for (const [key, title] of lists) {
      const l = p[key];
      if (l.count === 0) continue;
      lines.push('', `${p.type} ${partitionLabel(p)}: ${title}: ${l.count}`);
      for (const [i, id] of l.ids.entries()) {
        const producer = l.producers?.[i] ?? null;
        lines.push(producer === null ? `  ${id}` : `  ${id}  (producer ${producer})`);
      }
      if (l.count > l.ids.length) lines.push(`  … and ${l.count - l.ids.length} more (--limit 0 lists all)`);
    }
  }
  const s = report.summary;
  lines.push(
    '',
    `${s.partitions} partition${s.partitions === 1 ? '' : 's'}: ${s.matching} match, ${s.differing} differ, ${s.notPublished} not published on either side` +
      ` — ${report.matches ? 'the pipelines hold the same data' : 'the pipelines differ'}`,
  );
  return `${lines.join('\n')}\n`;
}
