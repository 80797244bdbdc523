/**
 * When is a segment finished (no more appends will ever come)? When its writer in this process
 * has moved on or closed; when a later segment of the same writer exists (a writer creates its
 * next segment only after its last write to the previous one completed); or when the writer's
 * process is gone. A finished segment read to its end (or to a torn tail) is complete.
 *
 * Every answer is about one topic's folder: only that topic's writers are asked about its
 * segments, so a segment of another topic can never decide it (segment names are unique per
 * topic writer as well, see TopicLanes).
 */
import { parseSegmentName, writerMayBeAlive } from './writer-id.js';

export interface LocalWriters {
  /**
   * Whether a segment of this topic's folder will get no more appends from this process's writers:
   * true/false for a segment this process wrote, undefined for another process's.
   */
  isFinishedLocally(segment: string): boolean | undefined;
}

/** Why a segment counts as finished, for the logs of whoever acts on it (retention). */
export type FinishedReason = 'local-writer-moved-on' | 'later-segment-exists' | 'writer-process-gone' | 'foreign-file';

export function whyFinished(
  segment: string,
  allSegments: readonly string[],
  local: LocalWriters,
): FinishedReason | null {
  const localAnswer = local.isFinishedLocally(segment);
  if (localAnswer !== undefined) return localAnswer ? 'local-writer-moved-on' : null;
  const parsed = parseSegmentName(segment);
  if (parsed === null) return 'foreign-file';
  for (const other of allSegments) {
    const o = parseSegmentName(other);
    if (o !== null && o.writerId === parsed.writerId && o.index > parsed.index) return 'later-segment-exists';
  }
  return writerMayBeAlive(parsed.writerId) ? null : 'writer-process-gone';
}

export function segmentIsFinished(segment: string, allSegments: readonly string[], local: LocalWriters): boolean {
  return whyFinished(segment, allSegments, local) !== null;
}

export function listSegmentNames(names: readonly string[]): string[] {
  return names.filter((n) => parseSegmentName(n) !== null).sort();
}
