/** `hourglass tokens create|list|revoke`: tokens of the registry API. */
import { parseArgs } from 'node:util';
import { createToken } from '../orchestrator/tokens.js';
import { configFromFlags, DATA_DIR_OPTIONS, DATA_DIR_USAGE, formatFlag, formatRows } from './common.js';
import { commandClock, openStateStore } from './pipeline.js';
import { type CliIo, UsageError } from './usage.js';

export const TOKENS_USAGE = `Usage: hourglass tokens <create|list|revoke> [options]

  create --owner O [--admin]   a token for owner O (it may change O's types; --admin: every type);
                               printed once: only its hash is kept
  list                         tokens (id, owner, role, created, revoked), never their secrets
  revoke ID                    the token stops working at once

Options:
  --format F                   table (default), csv, or json
${DATA_DIR_USAGE}`;

export async function runTokens(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...DATA_DIR_OPTIONS,
      owner: { type: 'string' },
      admin: { type: 'boolean' },
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
  const config = configFromFlags(values);
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
          );
        } catch (err) {
          if (err instanceof Error && err.message.startsWith('owner must')) throw new UsageError(err.message);
          throw err;
        }
        io.stdout.write(`${created.token}\n`);
        io.stderr.write(
          `token ${created.id} for ${values.owner}${values.admin ? ' (admin)' : ''}: keep it, it is not shown again\n`,
        );
        return 0;
      }
      case 'list': {
        const rows = (await store.listTokens()).map((t) => ({
          id: t.id,
          owner: t.owner,
          role: t.role,
          createdAt: new Date(t.createdAt).toISOString(),
          revokedAt: t.revokedAt === null ? null : new Date(t.revokedAt).toISOString(),
        }));
        io.stdout.write(formatRows(['id', 'owner', 'role', 'createdAt', 'revokedAt'], rows, format));
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
