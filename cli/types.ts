/** `hourglass types list|show|plan|apply|retire`: the registry of event types. */
import { existsSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFINITION_FIELDS } from '../core/event-types.js';
import type { StateStore } from '../core/ports/state-store.js';
import { applyPlan, type PlannedChange, planTypes } from '../orchestrator/plan.js';
import { setStatus, typeSummary } from '../orchestrator/registry.js';
import {
  configFromFlags,
  DATA_DIR_OPTIONS,
  DATA_DIR_USAGE,
  formatFlag,
  formatRows,
  type OutputFormat,
  requireDataDir,
  requireFolder,
} from './common.js';
import { commandClock, openStateStore } from './pipeline.js';
import { type CliIo, UsageError } from './usage.js';

export const TYPES_USAGE = `Usage: hourglass types <list|show|plan|apply|retire> [options]

  list                  every registered type (owner, tier, partitioning, versions, status)
  show NAME             one type: definition, schema versions, reconcile steps, history of changes
  plan [DIR]            what \`apply\` would change, from the type folders in DIR (default: --schemas)
  apply [DIR]           makes those changes; all or nothing: any refused change stops the apply
  retire NAME           marks a type retiring (the ingress refuses it; its last hours publish)

Options:
  -f, --format F        table (default), csv, or json
  --actor A             who is recorded in the history (default cli:<user>@<host>)
  --allow-over-quota    plan/apply: let owners pass registry.maxActiveTypesPerOwner (an admin's call)
${DATA_DIR_USAGE}

Exit codes: 0 done, 1 a change refused (plan/apply) or a type not found, 2 usage.`;

export async function runTypes(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...DATA_DIR_OPTIONS,
      format: { type: 'string', short: 'f' },
      actor: { type: 'string' },
      'allow-over-quota': { type: 'boolean' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [sub, arg, ...extra] = positionals;
  if (values.help || sub === undefined) {
    io.stdout.write(`${TYPES_USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  const format = formatFlag(values.format);
  const config = configFromFlags(values);
  if (sub === 'plan' || sub === 'apply') requireFolder(arg ?? config.schemasDir, 'the type folders to plan from');
  if (sub !== 'plan' && sub !== 'apply') requireDataDir(config);
  const store = await openStateStore(config);
  const actor = values.actor ?? `cli:${userInfo().username}@${hostname()}`;
  try {
    switch (sub) {
      case 'list':
        return await list(store, format, io);
      case 'show':
        if (arg === undefined) throw new UsageError('types show needs a type name');
        return await show(store, arg, format, io);
      case 'plan':
      case 'apply': {
        const plan = await planTypes(arg ?? config.schemasDir, store, {
          limits: values['allow-over-quota'] ? null : config.registry,
        });
        for (const p of plan) {
          for (const w of p.warnings ?? []) io.stderr.write(`hourglass types ${sub}: warning: ${p.type}: ${w}\n`);
        }
        if (sub === 'plan') {
          io.stdout.write(renderPlan(plan, format));
          return plan.some((p) => p.action === 'refused') ? 1 : 0;
        }
        const result = await applyPlan(plan, store, actor, commandClock(config, values).now());
        if (result.refused.length > 0) {
          io.stdout.write(renderPlan(plan, format));
          io.stderr.write(`hourglass types apply: nothing applied: ${result.refused.length} change(s) refused\n`);
          return 1;
        }
        io.stdout.write(renderPlan(result.applied, format));
        if (format === 'table') io.stdout.write(`applied ${result.applied.length} change(s)\n`);
        return 0;
      }
      case 'retire': {
        if (arg === undefined) throw new UsageError('types retire needs a type name');
        const t = await store.getType(arg);
        if (t === null) {
          io.stderr.write(`hourglass types retire: no event type ${arg}\n`);
          return 1;
        }
        const done = await setStatus(
          store,
          { name: actor, owner: null, role: 'admin' },
          arg,
          'retiring',
          'status: active → retiring',
          commandClock(config, values).now(),
        );
        io.stdout.write(done === null ? `${arg} is already ${t.status}\n` : `${arg}: retiring\n`);
        io.stdout.write(`${retiredFolderHint(config.schemasDir, arg)}\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown types command ${JSON.stringify(sub)} (list, show, plan, apply, retire)`);
    }
  } finally {
    await store.close();
  }
}

async function list(store: StateStore, format: OutputFormat, io: CliIo): Promise<number> {
  const rows = (await store.listTypes()).map(typeSummary);
  const columns = [
    'name',
    'owner',
    'tier',
    'partitioning',
    'storage',
    'retentionDays',
    'status',
    'compatibility',
    'dedupWindow',
    'versions',
    'revision',
    'updatedAt',
  ];
  io.stdout.write(formatRows(columns, rows, format));
  return 0;
}

async function show(store: StateStore, name: string, format: OutputFormat, io: CliIo): Promise<number> {
  const t = await store.getType(name);
  if (t === null) {
    io.stderr.write(`hourglass types show: no event type ${name}\n`);
    return 1;
  }
  const history = await store.typeHistory(name);
  const steps = await store.listSteps(name);
  if (format === 'json') {
    const versions = t.versions.map((v) => ({ ...v, schema: JSON.parse(v.schema) as unknown }));
    io.stdout.write(`${JSON.stringify({ ...t, versions, steps, history }, null, 2)}\n`);
    return 0;
  }
  const def = [...DEFINITION_FIELDS, 'revision'] as const;
  io.stdout.write(
    formatRows(
      ['field', 'value'],
      def.map((k) => ({ field: k, value: t[k] })),
      format,
    ),
  );
  io.stdout.write('\n');
  io.stdout.write(
    formatRows(
      ['version', 'fingerprint', 'createdAt', 'createdBy'],
      t.versions.map((v) => ({ ...v, createdAt: new Date(v.createdAt).toISOString() })),
      format,
    ),
  );
  io.stdout.write('\n');
  io.stdout.write(
    formatRows(
      ['step', 'status', 'attempts', 'error', 'updatedAt'],
      steps.map((st) => ({ ...st, updatedAt: new Date(st.updatedAt).toISOString() })),
      format,
    ),
  );
  io.stdout.write('\n');
  io.stdout.write(
    formatRows(
      ['at', 'actor', 'action', 'detail'],
      history.map((h) => ({ ...h, at: new Date(h.at).toISOString() })),
      format,
    ),
  );
  return 0;
}

/** How to make a retired type's folder agree with the registry (`plan` then says unchanged). */
function retiredFolderHint(schemasDir: string, name: string): string {
  const file = join(schemasDir, name, 'type.json');
  return existsSync(file)
    ? `mark its folder retired: set "status": "retired" in ${file} (until then plan and hourglass dev warn)`
    : `if a type folder declares ${name}, set "status": "retired" in its type.json (until then plan and hourglass dev warn)`;
}

function renderPlan(plan: readonly PlannedChange[], format: OutputFormat): string {
  if (format === 'json') {
    return `${JSON.stringify(
      plan.map(({ type, action, changes, refusals, warnings }) => ({
        type,
        action,
        changes,
        ...(refusals ? { refusals } : {}),
        ...(warnings ? { warnings } : {}),
      })),
      null,
      2,
    )}\n`;
  }
  // a refusal shows its rule name beside its reason
  const rows = plan.flatMap((p) => {
    const lines = p.refusals ?? p.changes.map((c) => ({ rule: '', message: c }));
    return (lines.length > 0 ? lines : [{ rule: '', message: '' }]).map((l, i) => ({
      type: i === 0 ? p.type : '',
      action: i === 0 ? p.action : '',
      rule: l.rule,
      change: l.message,
    }));
  });
  return formatRows(['type', 'action', 'rule', 'change'], rows, format);
}
