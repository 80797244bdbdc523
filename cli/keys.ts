/** `hourglass keys create|list|revoke`: producer write keys of `POST /v1/events`. */
import { parseArgs } from 'node:util';
import {
  createProducerKey,
  describeProducerKey,
  keySpecProblem,
  type ProducerKeySpec,
  parseKeyLifetime,
} from '../services/ingress/producer-keys.js';
import { configFromFlags, DATA_DIR_OPTIONS, DATA_DIR_USAGE, formatFlag, formatRows } from './common.js';
import { openStateStore } from './pipeline.js';
import { type CliIo, UsageError } from './usage.js';

export const KEYS_USAGE = `Usage: hourglass keys <create|list|revoke> [options]

  create --producer NAME (--types T1,T2 | --all-types) [--rate N] [--burst N]
         [--origins URL,…] [--expires DURATION]
                         a write key for producer NAME: it may send events of the listed types
                         (POST /v1/events with Authorization: Bearer <key>), and every event it
                         writes carries the producer's name. The key is the last line printed,
                         shown once: only its hash is kept.
      --rate N           events per second (per ingress instance; default ingress.keyRatePerSec,
                         0: unlimited); over it requests get 429 rate_limited with Retry-After
      --burst N          events at once above the rate (default 2 × rate, or ingress.keyBurst)
      --origins URL,…    browser pages of these origins may use the key (CORS)
      --expires D        the key stops working after D (e.g. 90d, 12h, 30m)
  list                   keys (id, producer, types, rate, origins, created, expires, revoked),
                         never their secrets
  revoke ID              the key stops working on every ingress instance within
                         ingress.keyRecheckRealMs (1 s)

Options:
  -f, --format F         table (default), csv, or json
${DATA_DIR_USAGE}`;

/** `90d`, `12h`, `30m`, `45s` → milliseconds. */
export function parseDuration(text: string): number {
  const ms = parseKeyLifetime(text);
  if (ms === null) {
    throw new UsageError(`--expires takes a duration such as 90d, 12h, 30m or 45s, got ${JSON.stringify(text)}`);
  }
  return ms;
}

function list(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function optionalNumber(flag: string, text: string | undefined): number | null {
  if (text === undefined) return null;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${flag} takes a number ≥ 0, got ${JSON.stringify(text)}`);
  return n;
}

export async function runKeys(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...DATA_DIR_OPTIONS,
      producer: { type: 'string' },
      types: { type: 'string' },
      'all-types': { type: 'boolean' },
      rate: { type: 'string' },
      burst: { type: 'string' },
      origins: { type: 'string' },
      expires: { type: 'string' },
      format: { type: 'string', short: 'f' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [sub, arg, ...extra] = positionals;
  if (values.help || sub === undefined) {
    io.stdout.write(`${KEYS_USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  if (!['create', 'list', 'revoke'].includes(sub)) {
    throw new UsageError(`unknown keys command ${JSON.stringify(sub)} (create, list, revoke)`);
  }
  const format = formatFlag(values.format);
  let spec: ProducerKeySpec | null = null;
  if (sub === 'create') {
    if (values.producer === undefined) throw new UsageError('keys create needs --producer NAME');
    if ((values.types === undefined) === (values['all-types'] !== true)) {
      throw new UsageError('keys create needs either --types T1,T2 or --all-types');
    }
    spec = {
      producer: values.producer,
      types: values['all-types'] ? null : list(values.types),
      ratePerSec: optionalNumber('rate', values.rate),
      burst: optionalNumber('burst', values.burst),
      origins: list(values.origins),
      expiresAt: values.expires === undefined ? null : Date.now() + parseDuration(values.expires),
      createdBy: 'cli',
    };
    const problem = keySpecProblem(spec);
    if (problem !== null) throw new UsageError(problem);
  }
  const config = configFromFlags(values, {}, { existingDataDir: sub !== 'create' });
  const store = await openStateStore(config);
  try {
    if (spec !== null) {
      const { key, record } = await createProducerKey(store, spec, Date.now());
      io.stderr.write(
        `key ${record.id} for producer ${record.producer} (${record.types === null ? 'every type' : record.types.join(', ')}): keep it, it is not shown again\n`,
      );
      io.stdout.write(`${key}\n`);
      return 0;
    }
    if (sub === 'list') {
      const now = Date.now();
      const keys = (await store.listProducerKeys()).map((k) => describeProducerKey(k, now));
      if (format === 'json') {
        io.stdout.write(`${JSON.stringify(keys, null, 2)}\n`); // the shape of GET /v1/producer-keys
        return 0;
      }
      const rows = keys.map((d) => ({
        ...d,
        types: d.types === null ? '*' : d.types.join(','),
        rate: d.ratePerSec === null ? 'default' : d.ratePerSec === 0 ? 'unlimited' : String(d.ratePerSec),
        burst: d.burst === null ? 'default' : String(d.burst),
        origins: d.origins.join(','),
      }));
      io.stdout.write(
        formatRows(
          [
            'id',
            'producer',
            'types',
            'rate',
            'burst',
            'origins',
            'status',
            'createdAt',
            'createdBy',
            'expiresAt',
            'revokedAt',
          ],
          rows,
          format,
        ),
      );
      return 0;
    }
    if (arg === undefined) throw new UsageError('keys revoke needs a key id (hourglass keys list)');
    if (!(await store.revokeProducerKey(arg, Date.now()))) {
      io.stderr.write(`hourglass keys revoke: no key ${arg}\n`);
      return 1;
    }
    io.stdout.write(`key ${arg} revoked\n`);
    return 0;
  } finally {
    await store.close();
  }
}
