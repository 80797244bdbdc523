/** Every error and rejection code is documented in the README's tables, and nothing else is. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WAREHOUSE_ERROR_CODES } from '../infra/warehouse/bigquery/errors.js';
import { allErrorCodes, PublishFailed, REQUEST_ERRORS, RequestRejected } from './errors.js';
import { REJECTION_CODES } from './rejection-codes.js';

function documentedCodes(): { errors: Map<string, number>; rejections: Set<string> } {
  const readme = readFileSync(resolve(import.meta.dirname, '../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Error codes'), readme.indexOf('### Other endpoints'));
  const [errorTable, rejectionTable] = section.split('Per-event rejection codes') as [string, string];
  const errors = new Map<string, number>();
  for (const m of errorTable.matchAll(/^\| `([a-z_]+)`\s*\| (\d{3})\s*\|/gm)) errors.set(m[1] as string, Number(m[2]));
  const rejections = new Set<string>();
  for (const m of rejectionTable.matchAll(/^\| `([a-z_]+)`\s*\|/gm)) rejections.add(m[1] as string);
  return { errors, rejections };
}

describe('error codes', () => {
  it('every error code is in the README error table with its HTTP status, and vice versa', () => {
    const { errors } = documentedCodes();
    // adapters' own errors (infra/) are documented in the same table
    expect([...errors.keys()].sort()).toEqual([...allErrorCodes(), ...Object.keys(WAREHOUSE_ERROR_CODES)].sort());
    for (const [code, status] of Object.entries(WAREHOUSE_ERROR_CODES)) expect(errors.get(code), code).toBe(status);
    for (const [code, { status }] of Object.entries(REQUEST_ERRORS)) expect(errors.get(code), code).toBe(status);
    expect(errors.get('bus_unavailable')).toBe(new PublishFailed({ topic: 't' }).httpStatus);
  });

  it('every rejection code is in the README rejection table, and vice versa', () => {
    expect([...documentedCodes().rejections].sort()).toEqual(Object.keys(REJECTION_CODES).sort());
  });

  it('errors carry code, status, retriable flag, context and cause', () => {
    const cause = new Error('EIO');
    const err = new PublishFailed({ topic: 'hourglass.EndSong', messages: 3 }, { cause });
    expect(err).toMatchObject({ code: 'bus_unavailable', httpStatus: 503, retriable: true, cause });
    expect(err.context).toEqual({ topic: 'hourglass.EndSong', messages: 3 });
    expect(err.toJSON()).toEqual({
      code: 'bus_unavailable',
      message: 'publish to hourglass.EndSong failed: EIO',
      retriable: true,
    });
    expect(new RequestRejected('overloaded', 'x')).toMatchObject({ httpStatus: 429, retriable: true });
  });
});
