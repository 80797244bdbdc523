/**
 * Exactly-once in the final partitions on Google Cloud's backends (harness:
 * test/support/exactly-once.ts): the Pub/Sub bus on the fake the global setup starts (or
 * PUBSUB_EMULATOR_HOST), and the Cloud Storage store on the test double of its JSON API
 * (test/fixtures/gcs-double.ts).
 */
import { afterAll, beforeAll } from 'vitest';
import { GcsObjectStore } from '../../infra/store/gcs/gcs-object-store.js';
import { type GcsDouble, startGcsDouble } from '../fixtures/gcs-double.js';
import { useFixture } from '../fixtures/use-fixture.js';
import { exactlyOnceSuite } from '../support/exactly-once.js';

const PROJECT = 'hourglass-test';
const BUCKET = 'hourglass-events';

let gcs: GcsDouble | null = null;
beforeAll(async () => {
  gcs = await startGcsDouble({ buckets: [BUCKET] });
});
afterAll(async () => {
  await gcs?.stop();
});

exactlyOnceSuite({
  name: 'Pub/Sub and Cloud Storage',
  env: async (prefix) => ({
    HOURGLASS_BUS: 'pubsub',
    HOURGLASS_STORE: 'gcs',
    GOOGLE_CLOUD_PROJECT: PROJECT,
    PUBSUB_EMULATOR_HOST: await useFixture('pubsubHost'),
    HOURGLASS_TOPIC_PREFIX: prefix,
    // the fake delivers about one message per stream every 10 ms
    HOURGLASS_PULL_STREAMS: '32',
    HOURGLASS_GCS_BUCKET: BUCKET,
    HOURGLASS_GCS_PREFIX: `${prefix}/`,
    HOURGLASS_GCS_ENDPOINT: gcs?.endpoint ?? '',
  }),
  objects: (_dir, prefix) =>
    new GcsObjectStore({ bucket: BUCKET, prefix: `${prefix}/`, projectId: PROJECT, apiEndpoint: gcs?.endpoint }),
  // Pub/Sub's ack deadline is 10 s at least: a killed consumer's messages come back after it
  ackDeadlineRealMs: 10_000,
  // redeliveries wait for the ack deadline, and every raw file is an upload to the double
  publishWithinMs: 150_000,
});
