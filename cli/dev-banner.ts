/**
 * What `hourglass dev` tells its user once it runs: where the ingress and the dashboard are, the
 * producer key, and commands to try. Printed on stdout as text; with JSON logs the same facts
 * (without secrets: the files holding them) are also one log record, and when stdout goes to the
 * very file or pipe the JSON logs go to (`2>&1`), only that record is written, so the stream stays
 * one JSON object per line.
 */
import { fstatSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { HourglassConfig } from '../core/config.js';
import { DEFAULTS } from '../core/defaults.js';
import { type Logger, resolveLogFormat } from '../core/logger.js';
import { DEV_KEY_FILE, DEV_TOKEN_FILE } from './dev-key.js';
import type { CliIo } from './usage.js';

export interface DevStarted {
  readonly url: string;
  readonly adminUrl: string;
  readonly types: readonly string[];
  readonly activeTypes: readonly string[];
  /** The dev producer key, or null when producer keys are off. */
  readonly key: { readonly key: string; readonly created: boolean } | null;
  readonly token: string;
}

/** The banner's text. */
export function devBanner(config: HourglassConfig, s: DevStarted): string {
  const dataDirFlag = config.dataDir === resolve(DEFAULTS.dataDir) ? '' : ` --data-dir ${config.dataDir}`;
  // the commands read the type folders too: another schemas dir than the default travels with them
  const schemasFlag = config.schemasDir === resolve(DEFAULTS.schemasDir) ? '' : ` --schemas ${config.schemasDir}`;
  const scaled = config.timeScale !== 1 ? ` --time-scale ${config.timeScale}` : '';
  // only active types: a retiring or retired one refuses events (`retired_type`)
  const inactive = s.types.length - s.activeTypes.length;
  return (
    `hourglass dev: ingress on ${s.url}${s.adminUrl !== s.url ? ` (registry, dashboard, reads on ${s.adminUrl})` : ''} — ${s.activeTypes.length} active event types (${s.activeTypes.join(', ')}${inactive > 0 ? `; ${inactive} retiring or retired not listed` : ''}), data dir ${config.dataDir}${config.timeScale !== 1 ? `, time ×${config.timeScale}` : ''}\n` +
    (s.key === null
      ? 'producer keys: off (ingress.auth), POST /v1/events takes no key\n'
      : `producer key: ${s.key.key} (all types; ${s.key.created ? 'new, ' : ''}saved in ${join(config.dataDir, DEV_KEY_FILE)})\n`) +
    (s.activeTypes.length > 0
      ? `send traffic: npx hourglass send --url ${s.url}${dataDirFlag}${schemasFlag} --type ${s.activeTypes.join(',')} --rate 1000 --duration 10\n`
      : 'send traffic: no active event type (hourglass types apply, or POST /v1/event-types)\n') +
    `dashboard:    ${s.adminUrl}/dashboard#token=${s.token}\n` +
    `              (an admin registry token, saved in ${join(config.dataDir, DEV_TOKEN_FILE)})\n` +
    `see hours:    npx hourglass hours --data-dir ${config.dataDir}${schemasFlag}${scaled}\n` +
    `query:        npx hourglass query --data-dir ${config.dataDir}${schemasFlag} "SELECT date, hour, count(*) FROM ${s.activeTypes[0] ?? s.types[0] ?? 'EndSong'} GROUP BY ALL ORDER BY ALL"\n`
  );
}

/** Whether stdout and stderr are one and the same file or pipe. */
function stdoutIsStderr(): boolean {
  try {
    const out = fstatSync(1);
    const err = fstatSync(2);
    return out.dev === err.dev && out.ino === err.ino;
  } catch {
    return false;
  }
}

/** Prints the banner, and with JSON logs records it as a log record too (see the module's doc). */
export function announceDev(io: CliIo, logger: Logger, config: HourglassConfig, s: DevStarted): void {
  const json = resolveLogFormat(config.logFormat, process.stderr) === 'json';
  if (json) {
    logger.info(
      {
        url: s.url,
        adminUrl: s.adminUrl,
        dataDir: config.dataDir,
        types: s.types,
        timeScale: config.timeScale,
        keyFile: s.key === null ? null : join(config.dataDir, DEV_KEY_FILE),
        tokenFile: join(config.dataDir, DEV_TOKEN_FILE),
      },
      'hourglass dev ready',
    );
  }
  const sharedWithLogs = io.stdout === process.stdout && process.stdout.isTTY !== true && stdoutIsStderr();
  if (!(json && sharedWithLogs)) io.stdout.write(devBanner(config, s));
}
