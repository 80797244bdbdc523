/** Durations as people write them on the command line and in API bodies: `45s`, `30m`, `12h`, `90d`, `1w`. */

const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * A number (decimals allowed) followed by one of `units` (a subset of `smhdw`) → milliseconds;
 * null when the text is not such a duration.
 */
export function parseDurationMs(text: string, units: string): number | null {
  const m = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(text.trim());
  if (m === null || !units.includes(m[2] as string)) return null;
  return Number(m[1]) * (UNIT_MS[m[2] as string] as number);
}
