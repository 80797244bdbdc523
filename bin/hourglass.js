#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx registers the loader), so a checkout works after
// `npm install` without a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
