/**
 * Exactly-once in the final partitions on the embedded default (harness: test/support/exactly-once.ts),
 * with segments small enough that every topic rolls many times, swept often: retention must never
 * delete a segment another topic's writer rolled away from.
 */
import { join } from 'node:path';
import { FsObjectStore } from '../../infra/store/fs/fs-object-store.js';
import { type Backends, exactlyOnceSuite, restartAtAnyMoment } from '../support/exactly-once.js';

const embedded: Backends = {
  name: 'embedded bus and files',
  env: async () => ({ HOURGLASS_SEGMENT_BYTES: '16384' }),
  busConfig: { retentionSweepRealMs: 200 },
  objects: (dir) => new FsObjectStore(join(dir, 'objects')),
  ackDeadlineRealMs: 60_000,
  publishWithinMs: 60_000,
};

exactlyOnceSuite(embedded);
restartAtAnyMoment(embedded);
