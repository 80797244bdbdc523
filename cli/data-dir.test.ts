/**
 * Commands that only read a pipeline's data refuse a data dir that does not exist (exit 2) and
 * create nothing; commands that create a pipeline keep creating it.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureIo } from '../test/support/cli-io.js';
import { main } from './main.js';

const SCHEMAS = resolve(import.meta.dirname, '../schemas');
let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hourglass-data-dir-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const code = await main(args, io.io);
  return { code, out: io.out(), err: io.err() };
}

const READS: string[][] = [
  ['hours'],
  ['hours', '--time-scale', '360'],
  ['query', 'SELECT 1'],
  ['alerts'],
  ['tokens', 'list'],
  ['tokens', 'revoke', 'abc'],
  ['keys', 'list'],
  ['keys', 'revoke', 'abc'],
  ['types', 'list'],
  ['types', 'show', 'EndSong'],
  ['types', 'retire', 'EndSong'],
  ['audit', '--type', 'EndSong', '--from', '2026-11-22T10', '--to', '2026-11-22T12', 'main', 'other.json'],
];

describe('a data dir that does not exist', () => {
  for (const args of READS) {
    it(`is refused by ${args.slice(0, 2).join(' ')}, which creates nothing`, async () => {
      const missing = join(root, `mistyped-${args.join('-').replace(/[^A-Za-z0-9-]/g, '')}`);
      const r = await run([...args, '--data-dir', missing]);
      expect(r.err).toBe(
        `hourglass ${args[0]}: no data dir ${missing} (start hourglass dev --data-dir ${missing} first, or check the path)\n`,
      );
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(existsSync(missing)).toBe(false);
    });
  }

  it('is refused when the path is a file', async () => {
    const file = join(root, 'a-file');
    await writeFile(file, 'x');
    const r = await run(['hours', '--data-dir', file]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no data dir .*a-file/);
  });

  it('is created by the commands that create a pipeline', async () => {
    const tokens = join(root, 'tokens');
    expect((await run(['tokens', 'create', '--owner', 'team', '--data-dir', tokens])).code).toBe(0);
    expect(existsSync(join(tokens, 'state.sqlite'))).toBe(true);
    const keys = join(root, 'keys');
    expect((await run(['keys', 'create', '--producer', 'p', '--all-types', '--data-dir', keys])).code).toBe(0);
    expect(existsSync(join(keys, 'state.sqlite'))).toBe(true);
    // a plan before the first apply previews what it would create
    const planned = await run(['types', 'plan', SCHEMAS, '--data-dir', join(root, 'plan-first'), '--format', 'json']);
    expect(planned.code).toBe(0);
    expect((JSON.parse(planned.out) as { action: string }[]).map((p) => p.action)).toContain('create');
    const types = join(root, 'types');
    const applied = await run(['types', 'apply', SCHEMAS, '--data-dir', types]);
    expect(applied.code).toBe(0);
    expect(existsSync(join(types, 'state.sqlite'))).toBe(true);
    // and once it exists, the reads answer from it
    const list = await run(['types', 'list', '--data-dir', types, '--format', 'json']);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.out) as { name: string }[]).map((t) => t.name)).toContain('EndSong');
    const hours = await run(['hours', '--data-dir', types]);
    expect(hours.code).toBe(0);
    expect(hours.out).toMatch(/\(0 rows\)\n$/);
  });
});

describe('hourglass types plan|apply DIR', () => {
  it('refuses a folder that does not exist as a usage error naming it', async () => {
    const data = join(root, 'plan-data');
    await mkdir(data);
    for (const sub of ['plan', 'apply']) {
      const r = await run(['types', sub, '/nonexistent/schemas', '--data-dir', data]);
      expect(r.code).toBe(2);
      expect(r.err).toBe(`hourglass types: no folder /nonexistent/schemas (the type folders to plan from)\n`);
    }
    const file = join(root, 'schemas-file');
    await writeFile(file, '{}');
    const f = await run(['types', 'plan', file, '--data-dir', data]);
    expect(f.code).toBe(2);
    expect(f.err).toMatch(/schemas-file is not a folder/);
    // the default folder is --schemas
    const d = await run(['types', 'plan', '--schemas', join(root, 'no-schemas'), '--data-dir', data]);
    expect(d.code).toBe(2);
    expect(d.err).toMatch(/no folder .*no-schemas/);
  });
});
