/** Object names of raw, late and final data (Hive-style, DESIGN.md point 9). */
import { randomBytes } from 'node:crypto';
import { hourPath } from '../core/hours.js';

/** A name part that sorts by creation time and never repeats. */
export function uniquePart(): string {
  return `${Date.now().toString(36).padStart(9, '0')}-${randomBytes(5).toString('hex')}`;
}

/** `raw/<type>/date=…/hour=…/` or `late/<type>/date=…/hour=…/`. */
export function hourPrefix(kind: 'raw' | 'late', type: string, hour: number): string {
  return `${kind}/${type}/${hourPath(hour)}/`;
}

/** `final/<type>/date=…/hour=…/` (hourly) or `final/<type>/date=…/` (daily). */
export function finalPrefix(type: string, start: number, daily: boolean): string {
  return daily ? `final/${type}/${hourPath(start).split('/')[0]}/` : `final/${type}/${hourPath(start)}/`;
}

export const MANIFEST = '_manifest.json';
