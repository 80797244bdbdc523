/** `hourglass bridge`: feeds a legacy Kafka topic through the ingress path. */
import { parseArgs } from 'node:util';
import { createLogger } from '../core/logger.js';
import { tightenDataDir } from '../core/private-files.js';
import { bridgeGroup, earlierBridgeGroup, KafkaBridge } from '../services/bridge/kafka-bridge.js';
import type { LegacyFormat } from '../services/bridge/legacy-message.js';
import { createIngressMetrics } from '../services/ingress/metrics.js';
import { IngressService } from '../services/ingress/server.js';
import { configFromFlags, DATA_DIR_OPTIONS, DATA_DIR_USAGE, LOG_OPTIONS, LOG_USAGE, numberFlag } from './common.js';
import { publishingBuses } from './parallel.js';
import { clockFor, openRegistry } from './pipeline.js';
import { untilSignal } from './signals.js';
import { type CliIo, UsageError } from './usage.js';

export const BRIDGE_USAGE = `Usage: hourglass bridge --topic TOPIC --type TYPE [--format json|avro] [--id-field F] [--version N]
                        [--group G] [--from-beginning] [--brokers B1,B2] [--port P] [--data-dir D] [--config FILE]
                        [--log-level L] [--log-format F]

Reads a legacy Kafka topic and feeds every message as an event of TYPE through the ingress's
validation, publish and ledger path (the process is an ingress instance of its own). Offsets are
committed only after the events are durably published; messages that cannot be decoded or fail
validation are dead-lettered, counted, and passed.

  --topic TOPIC      the legacy topic (on --brokers, default kafka.brokers / KAFKA_BROKERS)
  --type TYPE        the registered event type its messages are
  --format F         json (default: an envelope {id, version, time, payload} or the payload
                     itself) or avro (the payload in Avro binary, plain or Confluent-framed)
  --id-field F       the payload field holding the event id (default: the envelope's id, the
                     record key, or <topic>:<partition>:<offset>)
  --version N        avro: the schema version the values are written with (default the latest)
  --group G          consumer group (default hourglass-bridge.<topic>.<type>; a bridge whose
                     offsets are in hourglass-bridge.<topic>, the earlier default, keeps it)
  --from-beginning   a new group starts at the topic's start (default: its end)
  --port P           port of /healthz, /readyz, /metrics (and POST /v1/events) (default 8083)
${LOG_USAGE}
${DATA_DIR_USAGE}`;

export async function runBridge(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...DATA_DIR_OPTIONS,
      ...LOG_OPTIONS,
      topic: { type: 'string' },
      type: { type: 'string' },
      format: { type: 'string' },
      'id-field': { type: 'string' },
      version: { type: 'string' },
      group: { type: 'string' },
      'from-beginning': { type: 'boolean' },
      brokers: { type: 'string' },
      port: { type: 'string' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout.write(`${BRIDGE_USAGE}\n`);
    return 0;
  }
  if (!values.topic) throw new UsageError('--topic is required');
  if (!values.type) throw new UsageError('--type is required');
  const format = (values.format ?? 'json') as LegacyFormat;
  if (format !== 'json' && format !== 'avro')
    throw new UsageError(`--format must be json or avro, got ${JSON.stringify(values.format)}`);
  const version = numberFlag('version', values.version) ?? null;
  if (version !== null && !(Number.isInteger(version) && version > 0))
    throw new UsageError('--version must be a positive integer');
  const config = configFromFlags(values, {
    'ingress.port': numberFlag('port', values.port) ?? 8083,
    ...(values.brokers !== undefined ? { 'kafka.brokers': values.brokers } : {}),
  });
  if (config.kafka.brokers.length === 0)
    throw new UsageError('no Kafka brokers: --brokers, kafka.brokers or KAFKA_BROKERS');
  const logger = createLogger(config.logLevel, config.logFormat);
  tightenDataDir(config.dataDir, logger);
  const clock = clockFor(config);
  const { state, catalog } = await openRegistry(config, logger);
  if (catalog.catalog.get(values.type) === undefined) {
    await catalog.sync.stop();
    await state.close();
    throw new UsageError(`--type: no event type ${JSON.stringify(values.type)} is registered`);
  }
  const { bus } = await publishingBuses(config, clock, logger, { spool: true });
  const metrics = createIngressMetrics();
  const ingress = new IngressService({
    bus,
    catalog: catalog.catalog,
    store: state,
    clock,
    logger,
    config: config.ingress,
    metrics,
  });
  const bridge = new KafkaBridge({
    kafka: config.kafka,
    mapping: { topic: values.topic, type: values.type, format, idField: values['id-field'] ?? null, version },
    groupId: values.group ?? bridgeGroup(values.topic, values.type),
    ...(values.group === undefined ? { earlierGroupId: earlierBridgeGroup(values.topic) } : {}),
    fromBeginning: values['from-beginning'] === true,
    catalog: catalog.catalog,
    target: ingress,
    clock,
    logger,
    registry: metrics.registry,
    maxEventsPerCall: config.ingress.maxEventsPerBatch,
    deadLetterEventBytes: config.ingress.deadLetterEventBytes,
  });
  try {
    catalog.sync.start();
    const url = await ingress.start();
    await bridge.start();
    io.stdout.write(
      `hourglass bridge: ${values.topic} → ${values.type} (${format}) in group ${bridge.groupId}, ingress instance ${ingress.instanceId} on ${url}\n`,
    );
    await untilSignal(logger);
  } finally {
    await bridge.close().catch((err: unknown) => logger.error({ err }, 'bridge consumer did not stop cleanly'));
    await ingress.close();
    await catalog.sync.stop();
    await bus.close();
    await state.close();
  }
  logger.flush();
  return 0;
}
