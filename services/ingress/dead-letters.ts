/**
 * Buffers rejected events and writes them to the state store's bounded dead-letter area in
 * batches. The buffer itself is bounded: past `maxBuffered` rejections awaiting a write, further
 * ones are counted as dropped (metric) instead of growing memory.
 */
import type { Logger } from 'pino';
import type { NewDeadLetter, StateStore } from '../../core/ports/state-store.js';

export class DeadLetterSink {
  private buffer: NewDeadLetter[] = [];
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> | null = null;
  dropped = 0;

  constructor(
    private readonly store: StateStore,
    private readonly maxPerType: number,
    private readonly logger: Logger,
    private readonly maxBuffered = 10_000,
    private readonly flushEveryRealMs = 250,
  ) {}

  add(items: NewDeadLetter[]): void {
    for (const item of items) {
      if (this.buffer.length >= this.maxBuffered) {
        this.dropped++;
        continue;
      }
      this.buffer.push(item);
    }
    if (this.timer === null && this.buffer.length > 0) {
      this.timer = setTimeout(() => void this.flush(), this.flushEveryRealMs);
      this.timer.unref();
    }
  }

  async flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.writing) await this.writing;
    const items = this.buffer;
    this.buffer = [];
    if (items.length === 0) return;
    this.writing = this.store
      .addDeadLetters(items, this.maxPerType)
      .catch((err: unknown) => {
        this.dropped += items.length;
        this.logger.error({ err, count: items.length }, 'storing rejected events failed; they are counted as dropped');
      })
      .finally(() => {
        this.writing = null;
      });
    await this.writing;
  }
}

/**
 * JSON of a value cut to about `maxBytes`, safe for any input: deep nesting is cut at depth 16,
 * long strings and arrays are shortened.
 */
export function boundedJson(value: unknown, maxBytes: number): string {
  const text = JSON.stringify(prune(value, 0));
  return text.length > maxBytes ? `${text.slice(0, maxBytes)}…` : text;
}

function prune(v: unknown, depth: number): unknown {
  if (typeof v === 'string') return v.length > 1024 ? `${v.slice(0, 1024)}…` : v;
  if (typeof v !== 'object' || v === null) return v;
  if (depth >= 16) return '…';
  if (Array.isArray(v)) {
    const out = v.slice(0, 100).map((x) => prune(x, depth + 1));
    if (v.length > 100) out.push(`… ${v.length - 100} more`);
    return out;
  }
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const [k, x] of Object.entries(v)) {
    if (n++ >= 100) {
      out['…'] = 'more fields';
      break;
    }
    out[k.length > 128 ? `${k.slice(0, 128)}…` : k] = prune(x, depth + 1);
  }
  return out;
}
