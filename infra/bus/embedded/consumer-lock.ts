/**
 * One consumer process per subscription, with a lock the kernel releases: the holder listens on a
 * Unix socket in Linux's abstract namespace, named after the subscription folder's real path. The
 * kernel frees the name the moment the holder's descriptors close (exit, SIGKILL, crash), before
 * its parent has reaped it, so a successor started at once never meets a stale lock, and a reused
 * pid cannot wedge it. `consumer.lock` in the folder only tells people who holds it.
 *
 * Where abstract sockets do not exist (not Linux), the lock falls back to the pid file: a holder
 * whose pid is not running is taken for dead.
 *
 * Within one process, several bus instances may consume the same subscription one after another
 * (tests do): a lock the process already holds is shared, and freed with its last holder.
 */
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { SubscriptionBusy } from '../../../core/errors.js';
import { processAlive } from './writer-id.js';

export interface ConsumerLock {
  release(): Promise<void>;
}

const held = new Map<string, { server: Server | null; holders: number }>();
const abstractSockets = process.platform === 'linux';

function socketName(subDir: string): string {
  const digest = createHash('sha256').update(realpathSync(subDir)).digest('hex').slice(0, 40);
  return `\0hourglass-consumer-${digest}`;
}

function holderText(path: string): string {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as { pid?: number; host?: string };
    return typeof h.pid === 'number' ? `pid ${h.pid}` : 'another process';
  } catch {
    return 'another process';
  }
}

function listen(name: string): Promise<Server | 'busy'> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') resolve('busy');
      else reject(err);
    });
    server.listen({ path: name, exclusive: true }, () => {
      server.unref();
      resolve(server);
    });
  });
}

/**
 * Takes the subscription's consumer lock. A holder that is dying (killed, its memory still being
 * torn down) keeps it for a moment: the lock is tried again until `waitMs` has passed, then
 * SubscriptionBusy is thrown.
 */
export async function acquireConsumerLock(
  subDir: string,
  subscription: string,
  writerId: string,
  waitMs: number,
): Promise<ConsumerLock> {
  const deadline = performance.now() + waitMs;
  for (;;) {
    try {
      return await tryConsumerLock(subDir, subscription, writerId);
    } catch (err) {
      if (!(err instanceof SubscriptionBusy) || performance.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function tryConsumerLock(subDir: string, subscription: string, writerId: string): Promise<ConsumerLock> {
  const infoPath = join(subDir, 'consumer.lock');
  const key = realpathSync(subDir);
  const mine = held.get(key);
  if (mine) {
    mine.holders += 1;
    return releaser(key, infoPath);
  }
  let server: Server | null = null;
  if (abstractSockets) {
    const got = await listen(socketName(subDir));
    if (got === 'busy') {
      const ours = held.get(key); // taken by this process while we were listening
      if (ours === undefined) throw new SubscriptionBusy({ subscription, holder: holderText(infoPath) });
      ours.holders += 1;
      return releaser(key, infoPath);
    }
    server = got;
  } else {
    const holder = (() => {
      try {
        return JSON.parse(readFileSync(infoPath, 'utf8')) as { pid?: number };
      } catch {
        return {};
      }
    })();
    if (typeof holder.pid === 'number' && holder.pid !== process.pid && processAlive(holder.pid)) {
      throw new SubscriptionBusy({ subscription, holder: `pid ${holder.pid}` });
    }
  }
  // a lock raced for in this process while listening
  const raced = held.get(key);
  if (raced) {
    server?.close();
    raced.holders += 1;
    return releaser(key, infoPath);
  }
  held.set(key, { server, holders: 1 });
  await writeFile(infoPath, JSON.stringify({ pid: process.pid, writerId, at: new Date().toISOString() }), {
    mode: 0o600,
  });
  return releaser(key, infoPath);
}

function releaser(key: string, infoPath: string): ConsumerLock {
  let released = false;
  return {
    async release(): Promise<void> {
      if (released) return;
      released = true;
      const entry = held.get(key);
      if (entry === undefined) return;
      entry.holders -= 1;
      if (entry.holders > 0) return;
      held.delete(key);
      await unlink(infoPath).catch(() => undefined);
      if (entry.server) await new Promise<void>((r) => entry.server?.close(() => r()));
    },
  };
}
