/**
 * Structured logs (pino) to stderr; components take a child logger with their stage. On a terminal
 * (`logFormat` auto) or with `logFormat` pretty, each record is one readable line (time, level,
 * message, fields: pino-pretty); otherwise one JSON object per line, for machines.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';
import type { LogFormat } from './config.js';

export type { Logger };

/** The format `format` means for logs written to `out`: `auto` is pretty on a terminal, JSON elsewhere. */
export function resolveLogFormat(format: LogFormat, out: NodeJS.WritableStream): 'pretty' | 'json' {
  if (format !== 'auto') return format;
  return (out as Partial<NodeJS.WriteStream>).isTTY === true ? 'pretty' : 'json';
}

/**
 * Records as readable lines, written synchronously as they come (so they keep their order with
 * what the command prints, and none is lost when the process ends). Colours on a terminal unless
 * `NO_COLOR` is set.
 */
export function prettyDestination(out: NodeJS.WritableStream, env = process.env): DestinationStream {
  const colorize = (out as Partial<NodeJS.WriteStream>).isTTY === true && (env.NO_COLOR ?? '') === '';
  const prettify = prettyFactory({
    colorize,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
    singleLine: true,
  });
  return { write: (line: string) => void out.write(prettify(line)) };
}

export function createLogger(
  level: string,
  format: LogFormat = 'auto',
  out: NodeJS.WritableStream = process.stderr,
): Logger {
  const options = { level, base: { pid: process.pid } };
  if (resolveLogFormat(format, out) === 'pretty') return pino(options, prettyDestination(out));
  return pino(
    options,
    out === process.stderr ? pino.destination({ fd: 2, sync: false }) : (out as unknown as DestinationStream),
  );
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
