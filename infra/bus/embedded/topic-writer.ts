/**
 * Appends frames to this process's current segment of one topic, with group commit: all publish
 * calls that arrive while a flush is running are written together with one `writev` to a file
 * opened with O_DSYNC, so the write returns only once the data is on stable storage (as write +
 * fdatasync would, in one system call). A call resolves only after the write that covers its frame.
 *
 * After any write error the segment is abandoned (truncated back to its last durable size when
 * possible) and the next flush starts a new segment, so a torn frame is always the last thing in
 * its segment.
 *
 * Defence in depth: after each write the writer checks that its segment is still linked (`fstat`
 * link count). A segment deleted while written (by a retention bug, or by hand) would swallow every
 * later append where no reader looks; the writer then fails the publish (the bus answers `bus_unavailable`, 503) and
 * starts a new segment, instead of answering as if the data were durable.
 */
import { randomBytes } from 'node:crypto';
import { constants, fstatSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDir } from './fs-util.js';
import { parseSegmentName, segmentName } from './writer-id.js';

/** The segment being appended to was unlinked: what was written to it can never be read. */
export class SegmentDeleted extends Error {
  readonly path: string;
  constructor(path: string) {
    super(`segment ${path} was deleted while being written; the write is not durable`);
    this.name = 'SegmentDeleted';
    this.path = path;
  }
}

interface Pending {
  readonly frame: Buffer;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export class TopicWriter {
  private queue: Pending[] = [];
  private flushing = false;
  private handle: FileHandle | null = null;
  private size = 0;
  /** Index of the segment being written (or about to be created); 0 before the first. */
  private index = 0;
  /** Every segment of this writer up to this index is finished: no more appends will come. */
  private finishedUpTo = 0;
  private closed = false;
  current: string | null = null;

  constructor(
    private readonly segmentsDir: string,
    readonly writerId: string,
    private readonly segmentBytes: number,
    private readonly onAppend: () => void,
  ) {}

  /** Frames waiting or being written (0 when idle). */
  get load(): number {
    return this.queue.length + (this.flushing ? 1 : 0);
  }

  append(frame: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new Error('writer closed'));
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame, resolve, reject });
      if (!this.flushing) void this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        try {
          await this.writeDurably(batch.map((p) => p.frame));
          for (const p of batch) p.resolve();
          this.onAppend();
        } catch (err) {
          await this.abandonSegment();
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async writeDurably(frames: Buffer[]): Promise<void> {
    if (this.handle === null || this.size >= this.segmentBytes) await this.roll();
    const handle = this.handle as FileHandle;
    let bytes = 0;
    for (const f of frames) bytes += f.length;
    let written = 0;
    while (written < bytes) {
      const { bytesWritten } = await handle.writev(
        written === 0 ? frames : remainder(frames, written),
        this.size + written,
      );
      if (bytesWritten <= 0) throw new Error('short write');
      written += bytesWritten;
    }
    this.size += bytes;
    // the write went to an inode that no directory names any more: nobody will read it
    if (fstatSync(handle.fd).nlink === 0) {
      throw new SegmentDeleted(join(this.segmentsDir, this.current ?? ''));
    }
  }

  /**
   * Whether a segment of this writer will get no more appends: true for every segment before the
   * one being written (or about to be created), and for all once closed. Decided by the segment's
   * number, so a file that is being created (listed by a reader before `open` returned) is never
   * taken for finished. undefined for another writer's segment.
   */
  isFinished(segment: string): boolean | undefined {
    const parsed = parseSegmentName(segment);
    if (parsed === null || parsed.writerId !== this.writerId) return undefined;
    return parsed.index <= this.finishedUpTo;
  }

  private async roll(): Promise<void> {
    if (this.handle !== null) {
      await this.handle.close();
      this.handle = null;
      this.finishedUpTo = this.index;
    }
    this.index += 1;
    const name = segmentName(this.writerId, this.index);
    // O_DSYNC: each write returns only once its data (and the file size) is on stable storage,
    // the same guarantee as write + fdatasync in one system call.
    const handle = await open(
      join(this.segmentsDir, name),
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DSYNC,
      0o600, // private, as every file of the data dir
    );
    try {
      await fsyncDir(this.segmentsDir);
    } catch (err) {
      await handle.close();
      throw err;
    }
    this.handle = handle;
    this.current = name;
    this.size = 0;
  }

  private async abandonSegment(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    this.finishedUpTo = this.index;
    if (handle === null) return;
    try {
      await handle.truncate(this.size);
    } catch {
      // the device refuses writes (read-only, gone): readers treat the torn tail as the end
    }
    try {
      await handle.close();
    } catch {
      // closing a handle on a failed device can fail too; nothing is left to release
    }
  }

  /** Waits for queued appends, then closes the segment. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 2));
    if (this.handle !== null) {
      await this.handle.close();
      this.handle = null;
    }
    this.finishedUpTo = this.index;
  }
}

function remainder(frames: Buffer[], skip: number): Buffer[] {
  const out: Buffer[] = [];
  let left = skip;
  for (const f of frames) {
    if (left >= f.length) {
      left -= f.length;
      continue;
    }
    out.push(left > 0 ? f.subarray(left) : f);
    left = 0;
  }
  return out;
}

/**
 * Several writers (lanes) for one topic in one process, each with its own segment files, so that
 * several durable writes are in flight at once: a publish goes to an idle lane when there is one,
 * else to the least loaded. Each lane stays a strictly sequential log (no holes after a crash).
 *
 * Lane writer ids are `<process writer id>.<random>.l<lane>`: the random part is drawn per
 * TopicLanes, so no two topics (nor two successive writers of one topic) in a process ever name a
 * segment alike.
 */
export class TopicLanes {
  private readonly lanes: TopicWriter[];

  constructor(segmentsDir: string, writerId: string, segmentBytes: number, lanes: number, onAppend: () => void) {
    const own = `${writerId}.${randomBytes(3).toString('hex')}`;
    this.lanes = Array.from(
      { length: lanes },
      (_, i) => new TopicWriter(segmentsDir, `${own}.l${i}`, segmentBytes, onAppend),
    );
  }

  append(frame: Buffer): Promise<void> {
    let best = this.lanes[0] as TopicWriter;
    for (const lane of this.lanes) {
      if (lane.load === 0) {
        best = lane;
        break;
      }
      if (lane.load < best.load) best = lane;
    }
    return best.append(frame);
  }

  /** true/false when the segment is one of these lanes', undefined otherwise. */
  isFinished(segment: string): boolean | undefined {
    for (const lane of this.lanes) {
      const answer = lane.isFinished(segment);
      if (answer !== undefined) return answer;
    }
    return undefined;
  }

  async close(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.close()));
  }
}
