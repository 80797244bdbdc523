/** Hour buckets: an event belongs to the UTC hour of its arrival time. */
export const HOUR_MS = 3_600_000;

/** Start of the UTC hour containing `ms`, epoch milliseconds. */
export function hourStart(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

/** `YYYY-MM-DDTHH` label of the UTC hour starting at `hourStartMs`. */
export function hourLabel(hourStartMs: number): string {
  return new Date(hourStartMs).toISOString().slice(0, 13);
}

/** Hive-style path parts of an hour: `date=YYYY-MM-DD/hour=HH`. */
export function hourPath(hourStartMs: number): string {
  const iso = new Date(hourStartMs).toISOString();
  return `date=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}`;
}
