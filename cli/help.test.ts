/**
 * Every `--help` is accurate: the usage of a command names every flag its parser accepts, and
 * every flag it names is accepted. The parser's options are seen by wrapping `parseArgs`.
 */
import type { ParseArgsConfig } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import { captureIo } from '../test/support/cli-io.js';
import { main } from './main.js';

const parsed = vi.hoisted(() => ({ options: [] as NonNullable<ParseArgsConfig['options']>[] }));

vi.mock('node:util', async (importOriginal) => {
  const util = await importOriginal<typeof import('node:util')>();
  return {
    ...util,
    parseArgs: (config: ParseArgsConfig) => {
      parsed.options.push(config.options ?? {});
      return util.parseArgs(config);
    },
  };
});

const COMMANDS = [
  'dev',
  'send',
  'etl',
  'hours',
  'query',
  'audit',
  'bridge',
  'types',
  'tokens',
  'keys',
  'alerts',
  'orchestrator',
];

async function help(args: string[]): Promise<{ code: number; out: string }> {
  const io = captureIo();
  const code = await main(args, io.io);
  return { code, out: io.out() };
}

/** The flags a usage text names, leaving out other commands quoted in it (`hourglass dev --no-etl`). */
function namedFlags(usage: string): Set<string> {
  const own = usage.replace(/`[^`]*`/g, '');
  return new Set([...own.matchAll(/(?<![\w-])--([a-z][a-z-]*)/g)].map((m) => m[1] as string));
}

describe('hourglass --help', () => {
  it('lists every command on one line each, and no command options', async () => {
    const { code, out } = await help(['--help']);
    expect(code).toBe(0);
    const listed = [...out.matchAll(/^ {2}([a-z]+) {2,}\S.*$/gm)].map((m) => m[1]);
    expect(listed).toEqual([...COMMANDS, 'help']);
    expect(out).not.toMatch(/--port|--data-dir|--time-scale/);
    expect(out).toMatch(/hourglass <command> --help/);
  });

  for (const command of COMMANDS) {
    it(`${command} --help names every flag it accepts, and only those`, async () => {
      parsed.options.length = 0;
      const { code, out } = await help([command, '--help']);
      expect(code).toBe(0);
      expect(out).toMatch(new RegExp(`^Usage: hourglass ${command}\\b`));
      const options = parsed.options.at(-1) ?? {};
      const accepted = Object.keys(options);
      expect(accepted.length).toBeGreaterThan(0);
      const named = namedFlags(out);
      for (const flag of accepted) expect(named, `--${flag} in hourglass ${command} --help`).toContain(flag);
      for (const flag of named) expect(accepted, `--${flag} is named by ${command} --help`).toContain(flag);
    });
  }
});
