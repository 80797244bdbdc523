import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { captureIo } from '../test/support/cli-io.js';
import { main } from './main.js';

const io = captureIo;

describe('hourglass CLI', () => {
  it('prints help with exit 0 and usage with exit 2 when no command is given', async () => {
    const a = io();
    expect(await main(['help'], a.io)).toBe(0);
    expect(a.out()).toMatch(/Commands:[\s\S]*dev[\s\S]*send/);
    const b = io();
    expect(await main([], b.io)).toBe(2);
  });

  it('refuses an unknown command with exit 2', async () => {
    const a = io();
    expect(await main(['launch'], a.io)).toBe(2);
    expect(a.err()).toMatch(/unknown command "launch"/);
  });

  it('refuses unknown flags and bad values naming them', async () => {
    const a = io();
    expect(await main(['dev', '--prot', '9'], a.io)).toBe(2);
    expect(a.err()).toMatch(/--prot/);
    const b = io();
    expect(await main(['dev', '--port', 'ninety'], b.io)).toBe(2);
    expect(b.err()).toMatch(/--port must be a number/);
    const c = io();
    expect(await main(['dev', '--port', '99999', '--data-dir', '/tmp/unused'], c.io)).toBe(1);
    expect(c.err()).toMatch(/ingress\.port.*\[config_invalid\]/);
  });

  it('refuses an unknown ETL role naming it and the valid roles, before opening anything', async () => {
    const a = io();
    expect(await main(['etl', '--roles', 'dedup,publish', '--data-dir', '/tmp/unused-roles'], a.io)).toBe(1);
    expect(a.err()).toMatch(
      /etl\.roles.*unknown role "publish": roles are consume, close, dedup, load \(or all\).*\[config_invalid\]/,
    );
  });

  it('refuses to start without event types, or on an invalid one naming the file and the rule', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-cli-'));
    try {
      const a = io();
      expect(await main(['dev', '--schemas', dir, '--port', '0', '--data-dir', join(dir, 'data')], a.io)).toBe(1);
      expect(a.err()).toMatch(/no event types .* \[config_invalid\]/);
      const b = io();
      expect(
        await main(['dev', '--schemas', join(dir, 'missing'), '--port', '0', '--data-dir', join(dir, 'data')], b.io),
      ).toBe(1);
      expect(b.err()).toMatch(/does not exist/);
      await mkdir(join(dir, 'Broken'));
      await writeFile(join(dir, 'Broken', 'type.json'), JSON.stringify({ name: 'Broken', owner: 'o', tier: 'urgent' }));
      const c = io();
      expect(await main(['dev', '--schemas', dir, '--port', '0', '--data-dir', join(dir, 'data')], c.io)).toBe(1);
      expect(c.err()).toMatch(/Broken.*type\.json.*tier must be one of high, normal, low.*\[event_type_invalid\]/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('says plainly when the port is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as AddressInfo).port;
    const dir = await mkdtemp(join(tmpdir(), 'hourglass-cli-'));
    try {
      const a = io();
      expect(await main(['dev', '--port', String(port), '--data-dir', dir], a.io)).toBe(1);
      expect(a.err()).toMatch(/EADDRINUSE/);
    } finally {
      blocker.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prints the version', async () => {
    const a = io();
    expect(await main(['--version'], a.io)).toBe(0);
    expect(a.out()).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});
