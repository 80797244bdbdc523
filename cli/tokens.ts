/** `hourglass tokens create|list|revoke`: tokens of the registry API. */
import { parseArgs } from 'node:util';
import { createToken, tokenStatus } from '../orchestrator/tokens.js';
import { configFromFlags, DATA_DIR_OPTIONS, DATA_DIR_USAGE, formatFlag, formatRows } from './common.js';
import { parseDuration } from './keys.js';
import { commandClock, openStateStore } from './pipeline.js';
import { type CliIo, UsageError } from './usage.js';

export const TOKENS_USAGE = `Usage: hourglass tokens <create|list|revoke> [options]

  create --owner O [--admin] [--read-only] [--expires DURATION]
                               a token for owner O (it may change O's types; --admin: every type);
                               printed once: only its hash is kept
      --read-only              it may only read (GET routes, dashboard, dead letters, alerts);
                               every change gets 403 forbidden
      --expires D              it stops working after D (e.g. 90d, 12h, 30m): 401 unauthorized
  list                         tokens (id, owner, role, scope, status, created, expires, last used,
                               revoked), never their secrets; last use is recorded once a minute
  revoke ID                    the token stops working at once

Options:
  -f, --format F               table (default), csv, or json
${DATA_DIR_USAGE}`;

export async function runTokens(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...DATA_DIR_OPTIONS,
      owner: { type: 'string' },
      admin: { type: 'boolean' },
      'read-only': { type: 'boolean' },
      expires: { type: 'string' },
      format: { type: 'string', short: 'f' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [sub, arg, ...extra] = positionals;
  if (values.help || sub === undefined) {
    io.stdout.write(`${TOKENS_USAGE}\n`);
    return values.help ? 0 : 2;
  }
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  const format = formatFlag(values.format);
  // real time, like producer keys: a token lasts its duration whatever the pipeline's time scale
  const expiresAt = values.expires === undefined ? null : Date.now() + parseDuration(values.expires);
  const config = configFromFlags(values, {}, { existingDataDir: sub !== 'create' });
  const store = await openStateStore(config);
  try {
    switch (sub) {
      case 'create': {
        if (values.owner === undefined) throw new UsageError('tokens create needs --owner');
        let created: { token: string; id: string };
        try {
          created = await createToken(
            store,
            values.owner,
            values.admin ? 'admin' : 'owner',
            commandClock(config, values).now(),
            {
              scope: values['read-only'] ? 'read' : 'write',
              expiresAt,
            },
          );
        } catch (err) {
          if (err instanceof Error && err.message.startsWith('owner must')) throw new UsageError(err.message);
          throw err;
        }
        io.stdout.write(`${created.token}\n`);
        const traits = [
          ...(values.admin ? ['admin'] : []),
          ...(values['read-only'] ? ['read-only'] : []),
          ...(expiresAt === null ? [] : [`expires ${new Date(expiresAt).toISOString()}`]),
        ];
        io.stderr.write(
          `token ${created.id} for ${values.owner}${traits.length > 0 ? ` (${traits.join(', ')})` : ''}: keep it, it is not shown again\n`,
        );
        return 0;
      }
      case 'list': {
        const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
        const now = Date.now();
        const rows = (await store.listTokens()).map((t) => ({
          id: t.id,
          owner: t.owner,
          role: t.role,
          scope: t.scope,
          status: tokenStatus(t, now),
          createdAt: iso(t.createdAt),
          expiresAt: iso(t.expiresAt),
          lastUsedAt: iso(t.lastUsedAt),
          revokedAt: iso(t.revokedAt),
        }));
        io.stdout.write(
          formatRows(
            ['id', 'owner', 'role', 'scope', 'status', 'createdAt', 'expiresAt', 'lastUsedAt', 'revokedAt'],
            rows,
            format,
          ),
        );
        return 0;
      }
      case 'revoke': {
        if (arg === undefined) throw new UsageError('tokens revoke needs a token id');
        if (!(await store.revokeToken(arg, commandClock(config, values).now()))) {
          io.stderr.write(`hourglass tokens revoke: no token ${arg}\n`);
          return 1;
        }
        io.stdout.write(`token ${arg} revoked\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown tokens command ${JSON.stringify(sub)} (create, list, revoke)`);
    }
  } finally {
    await store.close();
  }
}
