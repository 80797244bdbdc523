import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ETL_ROLES, parseRoles, rolesText } from './etl-roles.js';

describe('ETL roles', () => {
  it('parses lists, all, and spaces; keeps the canonical order', () => {
    expect(rolesText(parseRoles('dedup, consume', 'k'))).toBe('consume,dedup');
    expect(rolesText(parseRoles('all', 'k'))).toBe('consume,close,dedup,load');
    expect(rolesText(parseRoles('load,load', 'k'))).toBe('load');
  });

  it('refuses unknown or no roles, naming the setting and the valid roles', () => {
    expect(() => parseRoles('dedup,publish', '--roles')).toThrow(
      /--roles.*unknown role "publish": roles are consume, close, dedup, load/,
    );
    expect(() => parseRoles(' , ', 'etl.roles')).toThrow(/etl.roles.*at least one role/);
  });

  it('round-trips any subset', () => {
    fc.assert(
      fc.property(fc.subarray([...ETL_ROLES], { minLength: 1 }), (roles) => {
        const shuffled = [...roles].reverse().join(',');
        expect(rolesText(parseRoles(shuffled, 'k'))).toBe(roles.join(','));
      }),
    );
  });
});
