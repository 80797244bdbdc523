/**
 * `hourglass audit` over two pipelines' final partitions made by the dedup step from committed raw
 * files (the ETL's own path to a partition), each pipeline in a data dir of its own.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishPartition, type RawEvent } from '../../bench/audit.js';
import { formatReport } from '../../cli/audit.js';
import { main } from '../../cli/main.js';
import { rng } from '../../cli/traffic/generators.js';
import { type EventType, latestVersion, loadEventTypes } from '../../core/event-types.js';
import { HOUR_MS } from '../../core/hours.js';
import type { ObjectStore } from '../../core/ports/object-store.js';
import { type AuditReport, auditPartitions, type PartitionAudit } from '../../etl/audit.js';
import { SqliteStateStore } from '../../infra/state/sqlite/sqlite-state-store.js';
import { FsObjectStore } from '../../infra/store/fs/fs-object-store.js';
import { captureIo } from '../support/cli-io.js';
import { endSong, SCHEMAS_DIR } from '../support/ingress-harness.js';
import { asWrittenBeforeProducers } from '../support/old-partitions.js';

const H = Date.UTC(2026, 10, 22, 10);
const DAY = Date.UTC(2026, 10, 22);
const PER_HOUR = 300;

let dir: string;
let endSongType: EventType;
let userCreateType: EventType;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hourglass-audit-'));
  const types = await loadEventTypes(SCHEMAS_DIR);
  endSongType = types.find((t) => t.name === 'EndSong') as EventType;
  userCreateType = types.find((t) => t.name === 'UserCreate') as EventType;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** EndSong events of the hour starting at `hour`, as the ingress stamped them. */
function hourEvents(hour: number, n = PER_HOUR, tag = hourTag(hour)): RawEvent[] {
  const enc = latestVersion(endSongType).type;
  return Array.from({ length: n }, (_, i) => ({
    id: `${tag}-${String(i).padStart(4, '0')}`,
    arrivalTime: hour + i * 1000,
    ingressInstance: i % 2 === 0 ? 'ingress-a' : 'ingress-b',
    sequence: Math.floor(i / 2) + 1,
    clientTime: i % 3 === 0 ? null : hour - 5000 + i,
    writerVersion: 2,
    payload: enc.toBuffer(endSong({ durationMs: 1000 + i, trackId: `track-${i % 17}`, context: { n: String(i) } })),
  }));
}

function hourTag(hour: number): string {
  return `h${new Date(hour).getUTCHours()}`;
}

let pipelines = 0;
let stateFiles = 0;

/** A pipeline's data dir (objects under `objects/`, as `objectStoreFor` finds them) with its partitions. */
async function pipeline(
  partitions: { type?: EventType; start: number; daily?: boolean; events: RawEvent[] }[],
  root: string = join(dir, `p${pipelines++}`),
  objectsDir: string = join(root, 'objects'),
): Promise<{ root: string; objects: FsObjectStore }> {
  const objects = new FsObjectStore(objectsDir);
  const state = new SqliteStateStore(join(root, `state-${stateFiles++}.sqlite`));
  try {
    for (const p of partitions) {
      await publishPartition({
        objects,
        state,
        type: p.type ?? endSongType,
        start: p.start,
        daily: p.daily ?? false,
        events: p.events,
        workDir: join(root, 'work'),
        eventsPerFile: 16, // with small row groups: several Parquet files per partition
        rowGroupBytes: 1024,
      });
    }
  } finally {
    await state.close();
  }
  return { root, objects };
}

function audit(a: ObjectStore, b: ObjectStore, extra: Partial<Parameters<typeof auditPartitions>[0]> = {}) {
  return auditPartitions({
    a: { name: 'old', objects: a },
    b: { name: 'new', objects: b },
    types: ['EndSong'],
    from: H,
    to: H + 2 * HOUR_MS,
    memoryBytes: 128 * 1024 * 1024,
    threads: 1,
    ...extra,
  });
}

const nothing = { count: 0, ids: [] };

function only(report: AuditReport, start: number): PartitionAudit {
  const p = report.partitions.find((x) => x.start === new Date(start).toISOString());
  if (p === undefined) throw new Error(`no partition ${new Date(start).toISOString()} in the report`);
  return p;
}

/** A store whose objects have no local path (like Cloud Storage): readers must copy them. */
function remote(store: ObjectStore): ObjectStore {
  return {
    backend: 'remote',
    put: (n, b) => store.put(n, b),
    putFile: (n, p) => store.putFile(n, p),
    get: (n) => store.get(n),
    getRange: (n, o, l) => store.getRange(n, o, l),
    list: (p, o) => store.list(p, o),
    delete: (n) => store.delete(n),
    localPath: () => null,
  };
}

describe('audit of two pipelines', () => {
  let same: { a: FsObjectStore; b: FsObjectStore };
  let changed: FsObjectStore;
  const missingId = 'h10-0042';
  const extraId = 'h11-extra';

  beforeAll(async () => {
    const h10 = hourEvents(H);
    const h11 = hourEvents(H + HOUR_MS);
    const a = await pipeline([
      { start: H, events: h10 },
      { start: H + HOUR_MS, events: h11 },
    ]);
    const b = await pipeline([
      { start: H, events: h10 },
      { start: H + HOUR_MS, events: h11 },
    ]);
    same = { a: a.objects, b: b.objects };
    // the other pipeline lost one event of 10:00 and holds one more in 11:00
    const extra = { ...(h11[7] as RawEvent), id: extraId, sequence: 1000 };
    const c = await pipeline([
      { start: H, events: h10.filter((e) => e.id !== missingId) },
      { start: H + HOUR_MS, events: [...h11, extra] },
    ]);
    changed = c.objects;
  });

  it('finds nothing when both pipelines hold the same partitions (files written apart, same rows)', async () => {
    const report = await audit(same.a, same.b);
    expect(report.matches).toBe(true);
    expect(report.summary).toEqual({ partitions: 2, matching: 2, differing: 0, notPublished: 0 });
    expect(report.excludedColumns).toEqual([]);
    for (const p of report.partitions) {
      expect(p).toMatchObject({
        type: 'EndSong',
        partitioning: 'hourly',
        status: 'match',
        a: { events: PER_HOUR, ids: PER_HOUR, schemaVersion: 2 },
        b: { events: PER_HOUR, ids: PER_HOUR, schemaVersion: 2 },
        missingOnA: nothing,
        missingOnB: nothing,
        contentDiffers: nothing,
        otherCopy: nothing,
      });
      expect(p.a?.files).toBeGreaterThan(1);
      expect(p.a?.digest).toMatch(/^[0-9a-f]{16}$/);
      expect(p.a?.digest).toBe(p.b?.digest);
    }
    // the digests of two hours differ, and one pipeline's files are really distinct objects
    expect(report.partitions[0]?.a?.digest).not.toBe(report.partitions[1]?.a?.digest);
  });

  it('names the missing and the extra event, their partition and side', async () => {
    const report = await audit(same.a, changed);
    expect(report.matches).toBe(false);
    expect(report.summary).toEqual({ partitions: 2, matching: 0, differing: 2, notPublished: 0 });
    expect(only(report, H)).toMatchObject({
      status: 'differ',
      a: { events: PER_HOUR, ids: PER_HOUR },
      b: { events: PER_HOUR - 1, ids: PER_HOUR - 1 },
      missingOnA: nothing,
      missingOnB: { count: 1, ids: [missingId] },
      contentDiffers: nothing,
      otherCopy: nothing,
    });
    expect(only(report, H + HOUR_MS)).toMatchObject({
      status: 'differ',
      b: { events: PER_HOUR + 1 },
      missingOnA: { count: 1, ids: [extraId] },
      missingOnB: nothing,
      contentDiffers: nothing,
      otherCopy: nothing,
    });
    // and the other way round
    const back = await audit(changed, same.a);
    expect(only(back, H).missingOnA).toEqual({ count: 1, ids: [missingId] });
    expect(only(back, H + HOUR_MS).missingOnB).toEqual({ count: 1, ids: [extraId] });
  });

  it('reads stores without local files through copies, with the same result', async () => {
    const report = await audit(remote(same.a), remote(changed));
    expect(only(report, H).missingOnB).toEqual({ count: 1, ids: [missingId] });
    expect(only(report, H + HOUR_MS).missingOnA).toEqual({ count: 1, ids: [extraId] });
    const direct = await audit(same.a, changed);
    expect(report.partitions.map((p) => [p.a?.digest, p.b?.digest])).toEqual(
      direct.partitions.map((p) => [p.a?.digest, p.b?.digest]),
    );
  });

  it('lists ids up to the limit in id order, with exact counts', async () => {
    const h10 = hourEvents(H);
    const gone = new Set(['h10-0200', 'h10-0003', 'h10-0150', 'h10-0099', 'h10-0007']);
    const b = await pipeline([{ start: H, events: h10.filter((e) => !gone.has(e.id)) }]);
    const report = await audit(same.a, b.objects, { to: H + HOUR_MS, idLimit: 2 });
    expect(only(report, H).missingOnB).toEqual({ count: 5, ids: ['h10-0003', 'h10-0007'] });
    expect(formatReport(report)).toContain(
      'EndSong 2026-11-22T10: ids missing on b (new): 5\n  h10-0003\n  h10-0007\n  … and 3 more (--limit 0 lists all)\n',
    );
    const all = await audit(same.a, b.objects, { to: H + HOUR_MS });
    expect(only(all, H).missingOnB).toEqual({ count: 5, ids: [...gone].sort() });
  });

  it('reports a partition published on one side only as a difference, on neither as not published', async () => {
    const a = await pipeline([{ start: H, events: hourEvents(H) }]);
    const b = await pipeline([]);
    const report = await audit(a.objects, b.objects);
    expect(only(report, H)).toMatchObject({
      status: 'only_a',
      a: { events: PER_HOUR },
      b: null,
      missingOnA: nothing,
      missingOnB: nothing,
    });
    expect(only(report, H + HOUR_MS)).toMatchObject({ status: 'not_published', a: null, b: null });
    expect(report.summary).toEqual({ partitions: 2, matching: 0, differing: 1, notPublished: 1 });
    expect(report.matches).toBe(false);
    expect((await audit(b.objects, a.objects)).partitions[0]?.status).toBe('only_b');
    // unpublished on both sides is no difference
    const later = await audit(same.a, same.b, { to: H + 4 * HOUR_MS });
    expect(later.summary).toEqual({ partitions: 4, matching: 2, differing: 0, notPublished: 2 });
    expect(later.matches).toBe(true);
  });

  it('tells rows that differ in content from the same ids, and names them', async () => {
    const h10 = hourEvents(H);
    const enc = latestVersion(endSongType).type;
    const altered = h10.map((e) =>
      e.id === 'h10-0123' ? { ...e, payload: enc.toBuffer(endSong({ durationMs: 999_999 })) } : e,
    );
    const b = await pipeline([{ start: H, events: altered }]);
    const p = only(await audit(same.a, b.objects, { to: H + HOUR_MS }), H);
    expect(p.status).toBe('differ');
    expect(p.a?.events).toBe(p.b?.events);
    expect(p.a?.ids).toBe(p.b?.ids);
    expect(p.a?.digest).not.toBe(p.b?.digest);
    expect(p.contentDiffers).toEqual({ count: 1, ids: ['h10-0123'] });
    expect(p.missingOnA).toEqual(nothing);
    expect(p.missingOnB).toEqual(nothing);
    expect(p.otherCopy).toEqual(nothing);
  });

  it('tells another copy of a retried event apart, a difference unless other copies are accepted', async () => {
    const h10 = hourEvents(H);
    const first = h10[10] as RawEvent;
    // a producer retry of event 10: same id and payload, its own arrival time and sequence number
    const retry: RawEvent = { ...first, arrivalTime: first.arrivalTime + 30_000, sequence: 5000 };
    const a = await pipeline([{ start: H, events: [...h10, retry] }]);
    // the other bus delivered the retry first: dedup kept that copy
    const b = await pipeline([{ start: H, events: [retry, ...h10] }]);
    const strict = only(await audit(a.objects, b.objects, { to: H + HOUR_MS }), H);
    expect(strict).toMatchObject({
      status: 'differ',
      a: { events: PER_HOUR, ids: PER_HOUR },
      b: { events: PER_HOUR, ids: PER_HOUR },
      otherCopy: { count: 1, ids: [first.id] },
      contentDiffers: nothing,
      missingOnA: nothing,
      missingOnB: nothing,
    });
    expect(strict.a?.digest).not.toBe(strict.b?.digest);
    const lenient = await audit(a.objects, b.objects, { to: H + HOUR_MS, acceptOtherCopies: true });
    expect(lenient.excludedColumns).toEqual(['event_arrival_time', 'event_ingress_instance', 'event_sequence']);
    const p = only(lenient, H);
    expect(p).toMatchObject({ status: 'match', otherCopy: { count: 1, ids: [first.id] }, contentDiffers: nothing });
    expect(p.a?.digest).toBe(p.b?.digest);
    expect(lenient.matches).toBe(true);
  });

  it('keys events by (producer, id): the same id from two producers is two events, listed with its producer', async () => {
    const enc = latestVersion(endSongType).type;
    const ev = (id: string, producer: string | null, sequence: number, durationMs: number): RawEvent => ({
      id,
      producer,
      arrivalTime: H + sequence * 1000,
      ingressInstance: 'ingress-a',
      sequence,
      clientTime: null,
      writerVersion: 2,
      payload: enc.toBuffer(endSong({ durationMs })),
    });
    const events = [
      ev('order-42', 'checkout', 1, 1),
      ev('order-42', 'billing', 2, 2),
      ev('order-42', null, 3, 3),
      ev('order-7', 'checkout', 4, 4),
    ];
    const a = await pipeline([{ start: H, events }]);
    const twin = await pipeline([{ start: H, events }]);
    const matching = only(await audit(a.objects, twin.objects, { to: H + HOUR_MS }), H);
    expect(matching).toMatchObject({ status: 'match', a: { events: 4, ids: 4 }, b: { events: 4, ids: 4 } });
    // b lost billing's order-42 and holds checkout's order-7 with another payload
    const [checkout42, , bare42] = events as [RawEvent, RawEvent, RawEvent];
    const b = await pipeline([{ start: H, events: [checkout42, bare42, ev('order-7', 'checkout', 4, 99)] }]);
    const report = await audit(a.objects, b.objects, { to: H + HOUR_MS });
    expect(only(report, H)).toMatchObject({
      status: 'differ',
      a: { events: 4, ids: 4 },
      b: { events: 3, ids: 3 },
      missingOnA: nothing,
      missingOnB: { count: 1, ids: ['order-42'], producers: ['billing'] },
      contentDiffers: { count: 1, ids: ['order-7'], producers: ['checkout'] },
      otherCopy: nothing,
    });
    expect(formatReport(report)).toContain('ids missing on b (new): 1\n  order-42  (producer billing)\n');
    // the same id and payload under another producer is another event: missing on both sides
    const moved = await pipeline([
      { start: H, events: [...events.slice(0, 2), ev('order-42', 'other', 3, 3), events[3] as RawEvent] },
    ]);
    const p = only(await audit(a.objects, moved.objects, { to: H + HOUR_MS }), H);
    expect(p).toMatchObject({
      status: 'differ',
      missingOnA: { count: 1, ids: ['order-42'], producers: ['other'] },
      missingOnB: { count: 1, ids: ['order-42'] },
      contentDiffers: nothing,
    });
    expect(p.missingOnB.producers).toBeUndefined();
  });

  it('matches a partition written before event_producer with the same events written after', async () => {
    const a = await pipeline([{ start: H, events: hourEvents(H) }]);
    const old = await pipeline([{ start: H, events: hourEvents(H) }]);
    await asWrittenBeforeProducers(old.objects, 'final/EndSong/date=2026-11-22/hour=10/_manifest.json');
    const p = only(await audit(a.objects, old.objects, { to: H + HOUR_MS }), H);
    expect(p).toMatchObject({ status: 'match', a: { events: PER_HOUR, ids: PER_HOUR }, b: { ids: PER_HOUR } });
    expect(p.a?.digest).toBe(p.b?.digest);
  });

  it('compares daily types per day', async () => {
    const enc = latestVersion(userCreateType).type;
    const r = rng(7);
    const events = (skip: string | null): RawEvent[] =>
      Array.from({ length: 48 }, (_, i) => ({
        id: `u-${i}`,
        arrivalTime: DAY + i * 30 * 60_000,
        ingressInstance: 'ingress-a',
        sequence: i + 1,
        clientTime: null,
        writerVersion: 1,
        payload: enc.toBuffer({
          userId: `user-${i}`,
          country: 'SE',
          signupMethod: 'EMAIL',
          birthYear: 1990 + (i % 20),
          referrer: r() < 0.5 ? null : 'ad',
          marketingOptIn: i % 2 === 0,
        }),
      })).filter((e) => e.id !== skip);
    const a = await pipeline([{ type: userCreateType, start: DAY, daily: true, events: events(null) }]);
    const b = await pipeline([{ type: userCreateType, start: DAY, daily: true, events: events('u-47') }]);
    // a range of two hours of the day audits the whole day
    const report = await audit(a.objects, b.objects, { types: ['UserCreate'], from: H, to: H + 2 * HOUR_MS });
    expect(report.partitions).toHaveLength(1);
    expect(report.partitions[0]).toMatchObject({
      type: 'UserCreate',
      partitioning: 'daily',
      start: '2026-11-22T00:00:00.000Z',
      end: '2026-11-23T00:00:00.000Z',
      status: 'differ',
      a: { events: 48 },
      b: { events: 47 },
      missingOnB: { count: 1, ids: ['u-47'] },
    });
  });

  it('refuses a type neither pipeline has published anything of', async () => {
    await expect(audit(same.a, same.b, { types: ['PageView'] })).rejects.toMatchObject({ code: 'type_not_found' });
  });
});

describe('hourglass audit (CLI)', () => {
  let config: string;
  let otherConfig: string;

  beforeAll(async () => {
    // one data dir with a parallel run: `main` in objects/, `second` in objects/pipelines/second/
    const root = join(dir, 'cli');
    const h10 = hourEvents(H);
    await pipeline([{ start: H, events: h10 }], root);
    await pipeline([{ start: H, events: h10 }], root, join(root, 'objects', 'pipelines', 'second'));
    config = join(dir, 'cli.json');
    await writeFile(
      config,
      JSON.stringify({ dataDir: root, logLevel: 'silent', parallel: { name: 'second', bus: 'embedded', ack: 'all' } }),
    );
    // another config file whose main pipeline lacks one event
    const other = await pipeline([{ start: H, events: h10.filter((e) => e.id !== 'h10-0042') }]);
    otherConfig = join(dir, 'other.yaml');
    await writeFile(otherConfig, `dataDir: ${other.root}\nlogLevel: silent\n`);
  });

  const run = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
    const io = captureIo();
    const code = await main(['audit', ...args], io.io);
    return { code, out: io.out(), err: io.err() };
  };
  const range = ['--from', '2026-11-22T10', '--to', '2026-11-22T12'];

  it('exits 0 when the pipelines match, naming them and the partitions', async () => {
    const r = await run(['--type', 'EndSong', ...range, '--config', config, 'main', 'second']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^a: main\nb: second\n/);
    expect(r.out).toMatch(/EndSong\s+2026-11-22T10\s+match\s+300\s+300\s+300\s+300\s+[0-9a-f]{16}\s+[0-9a-f]{16}\n/);
    expect(r.out).toMatch(/EndSong\s+2026-11-22T11\s+not published\n/);
    expect(r.out).toMatch(
      /2 partitions: 1 match, 0 differ, 1 not published on either side — the pipelines hold the same data\n$/,
    );
  });

  it('exits 1 on a difference, listing the ids, against a pipeline of another config file', async () => {
    // PageView has nothing published on either side
    const r = await run(['--type', 'EndSong,PageView', ...range, '--config', config, 'second', otherConfig]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--type PageView: neither second nor .*other\.yaml has published anything of this type/);
    const t = await run(['--type', 'EndSong', ...range, '--config', config, 'second', otherConfig]);
    expect(t.code).toBe(1);
    expect(t.out).toMatch(/EndSong\s+2026-11-22T10\s+differ\s+300\s+299\s/);
    expect(t.out).toContain(`EndSong 2026-11-22T10: ids missing on b (${otherConfig}): 1\n  h10-0042\n`);
    expect(t.out).toMatch(/the pipelines differ\n$/);
  });

  it('prints the report as JSON, ids limited by --limit', async () => {
    const r = await run(['--type', 'EndSong', ...range, '--config', config, '--format', 'json', 'main', otherConfig]);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.out) as AuditReport;
    expect(report).toMatchObject({ a: 'main', b: otherConfig, matches: false, types: ['EndSong'] });
    expect(report.partitions[0]).toMatchObject({ status: 'differ', missingOnB: { count: 1, ids: ['h10-0042'] } });
    const none = await run([
      '--type',
      'EndSong',
      ...range,
      '--config',
      config,
      '-f',
      'json',
      '--limit',
      '1',
      otherConfig,
      'main',
    ]);
    expect((JSON.parse(none.out) as AuditReport).partitions[0]?.missingOnA).toEqual({ count: 1, ids: ['h10-0042'] });
  });

  it('refuses bad arguments with exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [[...range, 'main', 'second'], /at least one --type/],
      [['--type', 'EndSong', '--to', '2026-11-22T12', 'main', 'second'], /--from is required/],
      [['--type', 'EndSong', '--from', 'yesterday', '--to', '2026-11-22T12', 'main', 'second'], /--from: expected/],
      [['--type', 'EndSong', '--from', '2026-11-22T12', '--to', '2026-11-22T10', 'main', 'second'], /must come after/],
      [['--type', 'EndSong', ...range, 'main'], /two pipelines/],
      [['--type', 'EndSong', ...range, 'main', 'main'], /two different pipelines/],
      [['--type', 'EndSong', ...range, '--limit=-1', 'main', 'second'], /--limit must be/],
      [['--type', 'EndSong', ...range, '--limit', 'all', 'main', 'second'], /--limit must be/],
      [['--type', 'EndSong', ...range, '--format', 'csv', 'main', 'second'], /--format must be table or json/],
      [['--type', 'End Song', ...range, 'main', 'second'], /not an event type name/],
      [['--type', 'EndSong', ...range, '--bogus', 'main', 'second'], /bogus/],
    ];
    for (const [args, message] of cases) {
      const r = await run(['--config', config, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toMatch(message);
    }
  });

  it('says clearly when a pipeline name or config file is unknown', async () => {
    const r = await run(['--type', 'EndSong', ...range, '--config', config, 'main', 'kafka']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no pipeline "kafka" in this configuration \(it has: main, second\)/);
    const s = await run(['--type', 'EndSong', ...range, '--config', config, 'main', join(dir, 'missing.json')]);
    expect(s.code).toBe(2);
    expect(s.err).toMatch(/missing\.json: cannot read config file/);
  });

  it('prints its usage with --help', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Usage: hourglass audit --type T --from H1 --to H2/);
  });
});
