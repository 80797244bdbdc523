import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemClock } from '../../core/clock.js';
import { EmbeddedBus } from '../../infra/bus/embedded/embedded-bus.js';
import { busContract } from '../contracts/bus.contract.js';

busContract('embedded', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hourglass-bus-'));
  return {
    bus: new EmbeddedBus({ dataDir: dir, clock: new SystemClock(), retentionSweepMs: 0, pollIntervalMs: 50 }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
