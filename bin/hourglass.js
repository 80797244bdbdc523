#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx registers the loader), so a checkout works after
// `npm install` without a build step.
import { register } from 'tsx/esm/api';

// Private files: everything this process creates (the data dir, state, bus segments, objects, keys,
// and what libraries such as SQLite and DuckDB create on their own) is for its user only, whatever
// umask it was started with. Hourglass's own code passes 0700/0600 explicitly as well, for when it
// runs inside another process (core/private-files.ts).
process.umask(0o077);
register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
