/**
 * Exactly-once in the final partitions on the Kafka bus (librdkafka's mock cluster, or
 * KAFKA_BROKERS; harness: test/support/exactly-once.ts). A killed ETL stays in its consumer groups
 * until the session timeout: its restart joins a rebalance, and the next kill often lands in the
 * middle of one.
 */
import { join } from 'node:path';
import { FsObjectStore } from '../../infra/store/fs/fs-object-store.js';
import { useFixture } from '../fixtures/use-fixture.js';
import { exactlyOnceSuite } from '../support/exactly-once.js';

exactlyOnceSuite({
  name: 'Kafka and files',
  env: async (prefix) => {
    const kafka = await useFixture('kafka');
    return {
      HOURGLASS_BUS: 'kafka',
      KAFKA_BROKERS: kafka.brokers.join(','),
      HOURGLASS_KAFKA_IDEMPOTENT: String(kafka.idempotence),
      HOURGLASS_TOPIC_PREFIX: `${prefix}-`,
    };
  },
  objects: (dir) => new FsObjectStore(join(dir, 'objects')),
  ackDeadlineRealMs: 30_000,
  publishWithinMs: 150_000,
  config: { kafka: { sessionTimeoutRealMs: 6_000, rebalanceTimeoutRealMs: 3_000 } },
  // the mock cluster keeps about 5 MB per partition and drops older records, consumed or not (a
  // size-based retention): the traffic is paced so that a restarting ETL's lag stays within it,
  // with room for restarts slowed by a busy machine (at 15 ms a run beside other suites once
  // missed 111 ids, at 30 ms another 48)
  producerPauseMs: 60,
});
