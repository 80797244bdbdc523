import { describe, expect, it } from 'vitest';
import { inBusinessHours, localTime, routesFor } from './routing.js';

const stockholm = { timezone: 'Europe/Stockholm', days: [1, 2, 3, 4, 5], startHour: 9, endHour: 17 };

describe('routing by tier', () => {
  it('reads the local day and hour of a time zone, daylight saving included', () => {
    // 2026-11-23 is a Monday; Stockholm is UTC+1 in winter, UTC+2 in summer
    expect(localTime(Date.UTC(2026, 10, 23, 7, 30), 'Europe/Stockholm')).toEqual({ day: 1, hour: 8.5 });
    expect(localTime(Date.UTC(2026, 6, 6, 7, 30), 'Europe/Stockholm')).toEqual({ day: 1, hour: 9.5 });
    expect(localTime(Date.UTC(2026, 10, 22, 23, 0), 'UTC')).toEqual({ day: 0, hour: 23 });
  });

  it('business hours: configured days, start inclusive, end exclusive', () => {
    const at = (d: number, h: number, m = 0) => Date.UTC(2026, 10, d, h - 1, m); // Stockholm = UTC+1
    expect(inBusinessHours(at(23, 8, 59), stockholm)).toBe(false);
    expect(inBusinessHours(at(23, 9, 0), stockholm)).toBe(true);
    expect(inBusinessHours(at(27, 16, 59), stockholm)).toBe(true);
    expect(inBusinessHours(at(27, 17, 0), stockholm)).toBe(false);
    expect(inBusinessHours(at(28, 12, 0), stockholm)).toBe(false); // Saturday
  });

  it('high pages always, low opens tickets only, normal pages only in business hours', () => {
    const day = Date.UTC(2026, 10, 23, 10);
    const night = Date.UTC(2026, 10, 23, 2);
    expect(routesFor('high', night, stockholm)).toEqual(['page']);
    expect(routesFor('high', day, stockholm)).toEqual(['page']);
    expect(routesFor('low', day, stockholm)).toEqual(['ticket']);
    expect(routesFor('normal', day, stockholm)).toEqual(['page']);
    expect(routesFor('normal', night, stockholm)).toEqual(['ticket']);
  });
});
