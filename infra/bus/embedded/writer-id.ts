/**
 * Writer identities of the embedded bus. Every process that publishes writes its own segment
 * files, named `<writerId>-<n>.log`, so several processes can publish to one data dir without
 * locks. A writer id names its host and pid, so readers can tell when its process is gone.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

const HOST = hostname().replace(/[^A-Za-z0-9]/g, '') || 'host';

export function newWriterId(): string {
  return `${Date.now().toString(36)}.${HOST}.${process.pid}.${randomBytes(3).toString('hex')}`;
}

/** Whether the process that owns the writer id may still be running. */
export function writerMayBeAlive(writerId: string): boolean {
  const [, host, pidText] = writerId.split('.');
  if (host !== HOST) return true; // another machine: cannot tell, assume alive
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  return processAlive(pid);
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `<writerId>-<n>.log` → parts, or null for foreign files. */
export function parseSegmentName(name: string): { writerId: string; index: number } | null {
  const m = /^(.+)-(\d{8})\.log$/.exec(name);
  if (!m) return null;
  return { writerId: m[1] as string, index: Number(m[2]) };
}

export function segmentName(writerId: string, index: number): string {
  return `${writerId}-${String(index).padStart(8, '0')}.log`;
}
