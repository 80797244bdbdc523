/** The `hourglass` command. */
import { readFileSync } from 'node:fs';
import { HourglassError } from '../core/errors.js';
import { runDev } from './dev.js';
import { type CliIo, CommandFailed, UsageError } from './usage.js';

const USAGE = `Usage: hourglass <command> [options]

Commands:
  dev           run the whole pipeline on the embedded default (ingress, bus, ETL, state, files)
  send          generate realistic event traffic against an ingress
  etl           run the ETL on its own (with hourglass dev --no-etl)
  hours         list hours of every event type and their states
  query         run SQL (DuckDB) over the published partitions
  audit         compare two pipelines' published partitions over a range of hours
  bridge        feed a legacy Kafka topic through the ingress path
  types         the registry of event types: list, show, plan, apply, retire
  tokens        tokens of the registry API: create, list, revoke
  keys          producer write keys of POST /v1/events: create, list, revoke
  alerts        firing and recent alerts
  orchestrator  the registry API, reconcile loop, retention, alerting and dashboard on their own
  help          show this help

hourglass <command> --help shows a command's options; hourglass --version its version.`;

export async function main(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'dev':
        return await runDev(rest, io);
      case 'etl': {
        const { runEtl } = await import('./etl.js');
        return await runEtl(rest, io);
      }
      case 'hours': {
        const { runHours } = await import('./hours.js');
        return await runHours(rest, io);
      }
      case 'query': {
        const { runQueryCommand } = await import('./query.js');
        return await runQueryCommand(rest, io);
      }
      case 'audit': {
        const { runAudit } = await import('./audit.js');
        return await runAudit(rest, io);
      }
      case 'types': {
        const { runTypes } = await import('./types.js');
        return await runTypes(rest, io);
      }
      case 'orchestrator': {
        const { runOrchestrator } = await import('./orchestrator.js');
        return await runOrchestrator(rest, io);
      }
      case 'alerts': {
        const { runAlerts } = await import('./alerts.js');
        return await runAlerts(rest, io);
      }
      case 'tokens': {
        const { runTokens } = await import('./tokens.js');
        return await runTokens(rest, io);
      }
      case 'keys': {
        const { runKeys } = await import('./keys.js');
        return await runKeys(rest, io);
      }
      case 'bridge': {
        const { runBridge } = await import('./bridge.js');
        return await runBridge(rest, io);
      }
      case 'send': {
        const { runSend } = await import('./send.js');
        return await runSend(rest, io);
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(`${USAGE}\n`);
        return command === undefined ? 2 : 0;
      case '--version':
      case 'version': {
        const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
          version: string;
        };
        io.stdout.write(`${pkg.version}\n`);
        return 0;
      }
      default:
        io.stderr.write(`hourglass: unknown command ${JSON.stringify(command)}\n\n${USAGE}\n`);
        return 2;
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`hourglass ${command}: ${(err as Error).message}\n`);
      return 2;
    }
    if (err instanceof HourglassError || err instanceof CommandFailed) {
      io.stderr.write(`hourglass ${command}: ${err.message} [${err.code}]\n`);
      return 1;
    }
    const sys = err as NodeJS.ErrnoException;
    if (typeof sys.syscall === 'string' && typeof sys.code === 'string') {
      // an operating-system refusal (port in use, permission, missing folder): say it plainly
      const hint =
        sys.code === 'EADDRINUSE'
          ? ' (another process listens there, perhaps another hourglass dev: stop it, or pick another port with --port)'
          : '';
      io.stderr.write(`hourglass ${command}: ${sys.message}${hint}\n`);
      return 1;
    }
    throw err;
  }
}
