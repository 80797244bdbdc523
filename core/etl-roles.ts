/**
 * What an ETL process does, so consumers and batch workers scale separately:
 * - `consume`: a consumer per active type, writing raw files (needs the bus);
 * - `close`: closing ended hours (reads the bus's backlog figures where it has them);
 * - `dedup`: deduplicating and publishing closed partitions (state and object stores only);
 * - `load`: loading published partitions into the warehouse.
 */
import { ConfigInvalid } from './errors.js';

export const ETL_ROLES = ['consume', 'close', 'dedup', 'load'] as const;
export type EtlRole = (typeof ETL_ROLES)[number];

/**
 * A comma-separated list of roles (`all` for every role); throws ConfigInvalid naming `key`, the
 * bad part and the valid roles.
 */
export function parseRoles(text: string, key: string): ReadonlySet<EtlRole> {
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) {
    throw new ConfigInvalid({ key, rule: `names at least one role of ${ETL_ROLES.join(', ')} (or all)` });
  }
  const roles = new Set<EtlRole>();
  for (const p of parts) {
    if (p === 'all') {
      for (const r of ETL_ROLES) roles.add(r);
      continue;
    }
    if (!(ETL_ROLES as readonly string[]).includes(p)) {
      throw new ConfigInvalid({
        key,
        rule: `unknown role ${JSON.stringify(p)}: roles are ${ETL_ROLES.join(', ')} (or all)`,
      });
    }
    roles.add(p as EtlRole);
  }
  return roles;
}

/** The roles as a list in their canonical order. */
export function rolesText(roles: ReadonlySet<EtlRole>): string {
  return ETL_ROLES.filter((r) => roles.has(r)).join(',');
}
