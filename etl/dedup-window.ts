/**
 * The dedup window of a partition (README "The dedup window"): the type's published partitions
 * whose (producer, id) keys the partition drops, and whether the partition may be deduped yet.
 *
 * The window of a partition starting at `start`, for a type whose `dedupWindow` is W, is every
 * partition of the type that overlaps `[start - W, start)`, and always the previous partition:
 * `1h` (the default) is the previous partition for hourly and daily types alike. A retry that
 * arrives within W of the event it repeats is therefore always caught (and one up to W plus a
 * partition later may be).
 *
 * A partition waits until every partition in its window that has data is settled (published or
 * failed): an hour still to close (ledgered events but no hour record), or closed and not yet
 * published, holds it back, so that a retry is never published because its original was not yet.
 */
import { dedupWindowMs, type EventType } from '../core/event-types.js';
import { HOUR_MS } from '../core/hours.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { StateStore } from '../core/ports/state-store.js';
import type { IdIndexRef } from './id-index.js';

const DAY_MS = 24 * HOUR_MS;

/** A published partition in a dedup window. */
export interface WindowPartition {
  readonly start: number;
  readonly manifest: string;
  /** Its id index; null for a partition published before id indexes: its data files are read instead. */
  readonly idIndex: IdIndexRef | null;
  /** Its data files (object names). */
  readonly files: readonly string[];
  /** Events it kept (its manifest's `eventsOut`). */
  readonly ids: number;
}

export interface DedupWindow {
  /** The type's dedup window, ms. */
  readonly ms: number;
  /** Start of the earliest partition the window may hold. */
  readonly from: number;
  /** Its published partitions, oldest first (partitions that failed or had no data are absent). */
  readonly partitions: readonly WindowPartition[];
}

export interface WindowDeps {
  readonly state: StateStore;
  readonly objects: ObjectStore;
}

/** Start of the earliest partition in the window of the partition starting at `start`. */
export function windowFrom(type: EventType, start: number, daily: boolean): number {
  const span = daily ? DAY_MS : HOUR_MS;
  return Math.min(start - span, Math.floor((start - dedupWindowMs(type)) / span) * span);
}

/**
 * The dedup window of the partition starting at `job.start`, or null while a partition in it that
 * has data is not settled yet (the job waits).
 */
export async function windowOf(
  job: { readonly type: EventType; readonly start: number; readonly daily: boolean },
  d: WindowDeps,
): Promise<DedupWindow | null> {
  const name = job.type.name;
  const from = windowFrom(job.type, job.start, job.daily);
  const records = await d.state.listHours({ type: name, from, to: job.start });
  if (records.some((r) => r.state === 'closed' || r.state === 'deduped')) return null;
  // hours still to close that have data
  const unclosed = await d.state.listLedgers({ type: name, from, unclosed: true });
  if (unclosed.some((l) => l.hour < job.start && l.count > 0)) return null;
  const starts = new Map<string, number>();
  for (const r of records) {
    if (r.state !== 'published' || r.manifest === null) continue;
    const start = job.daily ? Math.floor(r.hour / DAY_MS) * DAY_MS : r.hour;
    starts.set(r.manifest, Math.min(start, starts.get(r.manifest) ?? start));
  }
  const partitions: WindowPartition[] = [];
  for (const [manifest, start] of starts) {
    const m = await readManifest(d.objects, manifest);
    partitions.push({ start, manifest, ...m });
  }
  partitions.sort((a, b) => a.start - b.start);
  return { ms: dedupWindowMs(job.type), from, partitions };
}

/**
 * A window of one partition given by its data files, read as a partition without an id index
 * (tools and benchmarks that dedup a partition against a given earlier one).
 */
export function windowOfFiles(files: readonly string[], start: number, daily: boolean): DedupWindow {
  const span = daily ? DAY_MS : HOUR_MS;
  const partitions =
    files.length === 0 ? [] : [{ start: start - span, manifest: '', idIndex: null, files, ids: Number.NaN }];
  return { ms: HOUR_MS, from: start - span, partitions };
}

type ManifestPart = Pick<WindowPartition, 'idIndex' | 'files' | 'ids'>;

/** Manifests read, per store (manifests are write-once, so a copy never goes stale). */
const manifests = new WeakMap<ObjectStore, Map<string, ManifestPart>>();
const MANIFESTS_KEPT = 8192;

async function readManifest(objects: ObjectStore, name: string): Promise<ManifestPart> {
  let cache = manifests.get(objects);
  if (cache === undefined) {
    cache = new Map();
    manifests.set(objects, cache);
  }
  const known = cache.get(name);
  if (known !== undefined) return known;
  const m = JSON.parse((await objects.get(name)).toString()) as {
    files: { name: string }[];
    eventsOut: number;
    idIndex?: IdIndexRef;
  };
  const part: ManifestPart = { idIndex: m.idIndex ?? null, files: m.files.map((f) => f.name), ids: m.eventsOut };
  if (cache.size >= MANIFESTS_KEPT) cache.delete(cache.keys().next().value as string);
  cache.set(name, part);
  return part;
}
