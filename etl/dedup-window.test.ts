import { describe, expect, it } from 'vitest';
import type { EventType } from '../core/event-types.js';
import { HOUR_MS } from '../core/hours.js';
import { windowFrom } from './dedup-window.js';

const DAY_MS = 24 * HOUR_MS;
const start = Date.UTC(2026, 10, 22);
const typeWith = (dedupWindow: string) => ({ name: 'T', dedupWindow }) as EventType;

describe('windowFrom', () => {
  it.each([
    ['1h', false, start - HOUR_MS],
    ['6h', false, start - 6 * HOUR_MS],
    ['7d', false, start - 7 * DAY_MS],
    // a daily type: always the previous day, and every day overlapping [start - W, start)
    ['1h', true, start - DAY_MS],
    ['24h', true, start - DAY_MS],
    ['36h', true, start - 2 * DAY_MS],
    ['30d', true, start - 30 * DAY_MS],
  ])('a %s window of a partition (daily: %s) starts at the right partition', (w, daily, from) => {
    expect(windowFrom(typeWith(w), start, daily)).toBe(from);
  });

  it('an hourly partition at any hour of the day reaches back exactly the window', () => {
    const at = start + 13 * HOUR_MS;
    expect(windowFrom(typeWith('3d'), at, false)).toBe(at - 3 * DAY_MS);
  });
});
