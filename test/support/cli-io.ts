/** Captures what a CLI command writes, for tests that call `main` in-process. */
import { PassThrough } from 'node:stream';

export function captureIo(): {
  io: { stdout: PassThrough; stderr: PassThrough };
  out: () => string;
  err: () => string;
} {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return { io: { stdout, stderr }, out: () => out, err: () => err };
}
