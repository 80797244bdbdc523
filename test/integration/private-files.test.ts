/**
 * Private files from the library pieces themselves, in a process whose umask is 0 (as when they
 * are embedded in another program, without the `hourglass` command's umask of 077): the embedded
 * bus, the SQLite state store (with its -wal and -shm), the filesystem object store and the shared
 * clock file create folders 0700 and files 0600. And an old data dir (0755) is made 0700 with a
 * log line. Runs in a forked worker of its own (pool `forks`), so the umask is this process's only.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../core/clock.js';
import { sharedClock } from '../../core/clock-origin.js';
import type { DeliveredMessage } from '../../core/ports/bus.js';
import { tightenDataDir } from '../../core/private-files.js';
import { EmbeddedBus } from '../../infra/bus/embedded/embedded-bus.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../../infra/store/fs/fs-object-store.js';
import { walkModes } from '../support/private-files.js';

let previousUmask = 0;
let tmp = '';
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'hourglass-private-'));
  previousUmask = process.umask(0);
});
afterAll(() => {
  process.umask(previousUmask);
  rmSync(tmp, { recursive: true, force: true });
});

const offendersOf = (root: string): string => {
  const w = walkModes(root);
  return w.offenders.length === 0 ? '' : `not private:\n  ${w.offenders.join('\n  ')}\nall:\n  ${w.seen.join('\n  ')}`;
};

describe('private files with umask 0', () => {
  it('bus, state store, object store and clock file create 0700 folders and 0600 files', async () => {
    expect(process.umask()).toBe(0);
    // a file made with the umask alone is open to everyone: what the pieces must not rely on
    writeFileSync(join(tmp, 'plain'), 'x');
    expect(statSync(join(tmp, 'plain')).mode & 0o777).toBe(0o666);
    const data = join(tmp, 'data'); // created by the pieces themselves
    const clock = sharedClock(data, 360);
    const state = new SqliteStateStore(join(data, 'state.sqlite'));
    const bus = new EmbeddedBus({ dataDir: data, clock: new SystemClock(), retentionSweepMs: 0, pollIntervalMs: 20 });
    const objects = new FsObjectStore(join(data, 'objects'));
    try {
      expect(clock.now()).toBeGreaterThan(0);
      await bus.createTopic('private.topic');
      await bus.createSubscription('private.sub', 'private.topic');
      await bus.publish(
        'private.topic',
        Array.from({ length: 20 }, (_, i) => ({ data: Buffer.from([i]), attributes: { id: `e-${i}` } })),
      );
      const got: DeliveredMessage[] = [];
      const sub = await bus.subscribe('private.sub', (ms) => {
        for (const m of ms) {
          got.push(m);
          m.ack();
        }
      });
      const deadline = Date.now() + 10_000;
      while (got.length < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(got).toHaveLength(20);
      await new Promise((r) => setTimeout(r, 300)); // the acked positions are saved (every 200 ms)

      await objects.put('raw/PageView/date=2026-11-22/hour=19/a.avro', Buffer.from('avro'));
      // putFile copies a file: its mode (here 0644) must not come along
      const source = join(tmp, 'final.parquet');
      writeFileSync(source, 'parquet', { mode: 0o644 });
      chmodSync(source, 0o644);
      await objects.putFile('final/PageView/date=2026-11-22/hour=19/part-0.parquet', source);

      // while everything is open: the consumer lock file, SQLite's -wal and -shm
      expect(offendersOf(data)).toBe('');
      const open = walkModes(data).seen.join('\n');
      expect(open).toMatch(/state\.sqlite-wal /);
      expect(open).toMatch(/state\.sqlite-shm /);
      expect(open).toMatch(/consumer\.lock /);
      expect(open).toMatch(/segments\/[^ ]+ 0600 \(file\)/);
      expect(open).toMatch(/clock\.json 0600/);
      expect(open).toMatch(/part-0\.parquet 0600/);
      await sub.close();
    } finally {
      await bus.close();
      await state.close();
    }
    // and after closing (state saves, lock release)
    expect(offendersOf(data)).toBe('');
    expect(statSync(data).mode & 0o777).toBe(0o700);
  });

  it('an existing data dir open to others is made 0700, with a log line; a missing one is not created', () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
    const old = join(tmp, 'old');
    mkdirSync(old, { mode: 0o755 });
    writeFileSync(join(old, 'state.sqlite'), '', { mode: 0o644 });
    tightenDataDir(old, logger);
    expect(statSync(old).mode & 0o777).toBe(0o700);
    expect(lines.join('')).toContain(`data dir was 0755, made it 0700`);
    expect(lines.join('')).toContain(`chmod -R go= ${old}`);
    // files inside are not walked (the log line says how to fix them)
    expect(statSync(join(old, 'state.sqlite')).mode & 0o777).toBe(0o644);
    lines.length = 0;
    tightenDataDir(old, logger);
    expect(lines).toEqual([]);
    tightenDataDir(join(tmp, 'missing'), logger);
    expect(() => statSync(join(tmp, 'missing'))).toThrow(/ENOENT/);
  });
});
