import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { createLogger, resolveLogFormat } from './logger.js';

const pipe = (): { out: PassThrough; text: () => string } => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => {
    text += d.toString();
  });
  return { out, text: () => text };
};
const terminal = (): PassThrough => Object.assign(new PassThrough(), { isTTY: true });

describe('logs', () => {
  it('are pretty on a terminal and JSON elsewhere by default; pretty or json when asked', () => {
    expect(resolveLogFormat('auto', terminal())).toBe('pretty');
    expect(resolveLogFormat('auto', new PassThrough())).toBe('json');
    expect(resolveLogFormat('json', terminal())).toBe('json');
    expect(resolveLogFormat('pretty', new PassThrough())).toBe('pretty');
  });

  it('take the format from the config: logFormat, HOURGLASS_LOG_FORMAT, default auto', () => {
    expect(loadConfig({}).logFormat).toBe('auto');
    expect(loadConfig({ env: { HOURGLASS_LOG_FORMAT: 'json' } }).logFormat).toBe('json');
    expect(loadConfig({ env: { HOURGLASS_LOG_FORMAT: 'json' }, overrides: { logFormat: 'pretty' } }).logFormat).toBe(
      'pretty',
    );
  });

  it('write one readable line per record in pretty, without colours off a terminal', () => {
    const p = pipe();
    const logger = createLogger('info', 'pretty', p.out);
    logger.child({ component: 'etl' }).warn({ type: 'EndSong' }, 'hour closing');
    logger.debug('not shown');
    expect(p.text()).toMatch(
      /^\[\d{2}:\d{2}:\d{2}\.\d{3}\] WARN: hour closing \{"component":"etl","type":"EndSong"\}\n$/,
    );
  });

  it('write one JSON object per line in json', () => {
    const p = pipe();
    createLogger('info', 'json', p.out).info({ type: 'EndSong' }, 'hour closed');
    expect(JSON.parse(p.text())).toMatchObject({ level: 30, msg: 'hour closed', type: 'EndSong' });
  });
});
