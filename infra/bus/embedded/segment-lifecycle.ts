/**
 * When is a segment finished (no more appends will ever come)? When its writer in this process
 * has moved on or closed; when a later segment of the same writer exists (a writer creates its
 * next segment only after its last write to the previous one completed); or when the writer's
 * process is gone. A finished segment read to its end (or to a torn tail) is complete.
 */
import { parseSegmentName, writerMayBeAlive } from './writer-id.js';

export interface LocalWriters {
  /** Segments of this process's writers that will get no more appends. */
  isFinishedLocally(segment: string): boolean | undefined;
}

export function segmentIsFinished(segment: string, allSegments: readonly string[], local: LocalWriters): boolean {
  const localAnswer = local.isFinishedLocally(segment);
  if (localAnswer !== undefined) return localAnswer;
  const parsed = parseSegmentName(segment);
  if (parsed === null) return true;
  for (const other of allSegments) {
    const o = parseSegmentName(other);
    if (o !== null && o.writerId === parsed.writerId && o.index > parsed.index) return true;
  }
  return !writerMayBeAlive(parsed.writerId);
}

export function listSegmentNames(names: readonly string[]): string[] {
  return names.filter((n) => parseSegmentName(n) !== null).sort();
}
