/**
 * Who is told, by tier (DESIGN.md, "Importance tiers and alerting"), with staggering:
 * - `high` pages at any time;
 * - `normal` pages in business hours and opens a ticket otherwise; an alert still firing when
 *   business hours start is paged then;
 * - `low` opens a ticket only.
 */
import type { BusinessHours } from '../../core/config.js';
import type { Tier } from '../../core/event-types.js';
import type { AlertRoute } from '../../core/ports/alert-sink.js';

const WEEKDAYS: Readonly<Record<string, number>> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };
const formats = new Map<string, Intl.DateTimeFormat>();

/** Day of week (0 = Sunday) and hour of day (fractional) of `at` in `timezone`. */
export function localTime(at: number, timezone: string): { day: number; hour: number } {
  let f = formats.get(timezone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formats.set(timezone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  return {
    day: WEEKDAYS[parts.weekday as string] ?? 0,
    hour: Number(parts.hour) + Number(parts.minute) / 60,
  };
}

export function inBusinessHours(at: number, hours: BusinessHours): boolean {
  const { day, hour } = localTime(at, hours.timezone);
  return hours.days.includes(day) && hour >= hours.startHour && hour < hours.endHour;
}

/** The routes an alert of a type of `tier` goes to at `at`. */
export function routesFor(tier: Tier, at: number, hours: BusinessHours): AlertRoute[] {
  if (tier === 'high') return ['page'];
  if (tier === 'low') return ['ticket'];
  return inBusinessHours(at, hours) ? ['page'] : ['ticket'];
}
