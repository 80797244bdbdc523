/**
 * Private files. A data dir holds token hashes, producer keys and events with personal data, so
 * Hourglass makes every directory it creates 0700 and every file 0600: each place that creates one
 * passes that mode explicitly (so the library code is private in any process, whatever its
 * umask), and the `hourglass` command also sets the umask to 077 (bin/hourglass.js), which covers
 * what libraries create on their own (DuckDB's spill files, for instance).
 *
 * A data dir made by an older version (0755) is tightened to 0700 when a pipeline process starts;
 * the files inside it keep their modes (`chmod -R go= <data-dir>` fixes them).
 */
import { chmodSync, statSync } from 'node:fs';
import type { Logger } from './logger.js';

/**
 * Tightens an existing data dir that other users may read or enter to 0700, saying so in a log
 * line. A missing dir is left to the components that create it (0700); its files are not walked.
 */
export function tightenDataDir(dataDir: string, logger: Logger): void {
  let mode: number;
  try {
    mode = statSync(dataDir).mode & 0o777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if ((mode & 0o077) === 0) return;
  const was = `0${mode.toString(8)}`;
  try {
    chmodSync(dataDir, 0o700);
  } catch (err) {
    logger.warn({ err, dataDir, mode: was }, 'data dir is open to other users and could not be made 0700');
    return;
  }
  logger.warn(
    { dataDir, mode: was },
    `data dir was ${was}, made it 0700 (private); files an older version created keep their modes: chmod -R go= ${dataDir}`,
  );
}
