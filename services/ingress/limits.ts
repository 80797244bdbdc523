/**
 * Limits of the ingress that must never leak: the budget of request bytes in flight, and the cap
 * on open connections.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Bytes of request bodies being handled. A request reserves its declared size when its headers
 * arrive and gets a release that frees it; calling the release more than once frees it once, so
 * every way a request can end may call it. A request that alone exceeds the limit still runs when
 * nothing else is in flight, so a large (but allowed) body can never starve.
 */
export class InFlightBudget {
  private used = 0;

  constructor(
    private readonly limit: number,
    /** The largest single reservation (the body limit): below that much room, the budget is exhausted. */
    private readonly largest: number,
    private readonly onChange: (bytes: number) => void = () => undefined,
  ) {}

  get bytes(): number {
    return this.used;
  }

  /** Reserves `bytes`, or returns null when they do not fit. */
  reserve(bytes: number): (() => void) | null {
    if (this.used + bytes > this.limit && this.used > 0) return null;
    this.used += bytes;
    this.onChange(this.used);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.used -= bytes;
      this.onChange(this.used);
    };
  }

  /** Whether a request of the largest size would be refused now. */
  exhausted(): boolean {
    return this.used > 0 && this.used + Math.min(this.largest, this.limit) > this.limit;
  }
}

export interface ConnectionLimits {
  /** Most open connections; further ones are closed on arrival (node's `server.maxConnections`). */
  readonly maxConnections: number;
  /**
   * A connection that has sent no byte this long after it opened is closed. Node's own headers
   * timeout only runs once a request has begun, so silent connections would otherwise hold their
   * slots for good.
   */
  readonly silentMs: number;
  /** Told of each connection refused at the cap. */
  readonly onDrop?: () => void;
}

export function limitConnections(server: Server, limits: ConnectionLimits): void {
  server.maxConnections = limits.maxConnections;
  server.on('drop', () => limits.onDrop?.());
  server.on('connection', (socket: Socket) => {
    const timer = setTimeout(() => {
      if (socket.bytesRead === 0) socket.destroy();
    }, limits.silentMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  });
}
