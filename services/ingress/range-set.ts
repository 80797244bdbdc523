/** A set of integers kept as sorted, merged inclusive ranges. */
export class RangeSet {
  private ranges: [number, number][] = [];
  private total = 0;

  /** Adds [from, to] (inclusive). Ranges added must not overlap existing ones. */
  add(from: number, to: number): void {
    if (to < from) return;
    this.total += to - from + 1;
    const r = this.ranges;
    // fast path: appending after the last range
    const last = r[r.length - 1];
    if (last === undefined || from > last[1]) {
      if (last !== undefined && from === last[1] + 1) last[1] = to;
      else r.push([from, to]);
      return;
    }
    let i = 0;
    while (i < r.length && (r[i] as [number, number])[1] < from) i++;
    r.splice(i, 0, [from, to]);
    // merge neighbours that touch
    const merged: [number, number][] = [];
    for (const cur of r) {
      const prev = merged[merged.length - 1];
      if (prev !== undefined && cur[0] <= prev[1] + 1) prev[1] = Math.max(prev[1], cur[1]);
      else merged.push([cur[0], cur[1]]);
    }
    this.ranges = merged;
  }

  get count(): number {
    return this.total;
  }

  toArray(): [number, number][] {
    return this.ranges.map(([a, b]) => [a, b]);
  }
}
