/** Inclusive integer ranges `[from, to]`, as ledgers and raw files record sequence numbers. */
export type Range = readonly [number, number];

/** Sorts and merges overlapping or adjacent ranges. */
export function mergeRanges(ranges: Iterable<Range>): [number, number][] {
  const sorted = [...ranges].filter(([a, b]) => b >= a).sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** Ranges covering the given integers (any order, duplicates allowed). */
export function rangesOf(values: readonly number[]): [number, number][] {
  const sorted = Float64Array.from(values).sort();
  const out: [number, number][] = [];
  for (const v of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && v <= last[1] + 1) last[1] = Math.max(last[1], v);
    else out.push([v, v]);
  }
  return out;
}

/** The parts of `required` not covered by `have` (both merged: sorted, non-overlapping). */
export function missingRanges(required: readonly Range[], have: readonly Range[]): [number, number][] {
  const out: [number, number][] = [];
  let j = 0;
  for (const [from, to] of required) {
    let cur = from;
    while (j < have.length && (have[j] as Range)[1] < cur) j++;
    let k = j;
    while (cur <= to) {
      const h = have[k];
      if (h === undefined || h[0] > to) {
        out.push([cur, to]);
        break;
      }
      if (h[0] > cur) out.push([cur, h[0] - 1]);
      cur = Math.max(cur, h[1] + 1);
      k++;
    }
  }
  return out;
}

export function rangeCount(ranges: readonly Range[]): number {
  let n = 0;
  for (const [a, b] of ranges) n += b - a + 1;
  return n;
}

/**
 * Missing ranges per ingress instance as text for errors and logs: `i1: 4-5, 9; i2: 7`, at most
 * `maxInstances` instances with at most `maxRanges` ranges each (in the order given).
 */
export function describeRanges(
  byInstance: Iterable<readonly [string, readonly Range[]]>,
  maxInstances = 5,
  maxRanges = 5,
): string {
  return [...byInstance]
    .slice(0, maxInstances)
    .map(
      ([i, r]) =>
        `${i}: ${r
          .slice(0, maxRanges)
          .map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`))
          .join(', ')}`,
    )
    .join('; ');
}
