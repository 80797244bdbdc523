/**
 * Delivery state of one subscription, persisted as `state.json` in the subscription's folder.
 *
 * Per segment: `offset`, the end of the longest prefix of fully acked frames; `acked`, the acked
 * message indices of frames after that prefix that are partly acked; `done` once the segment is
 * finished (no more appends) and every frame in it is acked. A segment missing from the state is
 * read from offset 0. The state is saved atomically; a lost save means redelivery, never loss.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './fs-util.js';

export interface SegmentCursor {
  offset: number;
  acked: Record<string, number[]>;
  done: boolean;
}

export interface SubscriptionState {
  segments: Record<string, SegmentCursor>;
}

export interface SubscriptionMeta {
  readonly name: string;
  readonly topic: string;
  readonly createdAt: number;
  readonly ackDeadlineMs: number;
}

export function loadMeta(subDir: string): SubscriptionMeta | null {
  try {
    return JSON.parse(readFileSync(join(subDir, 'subscription.json'), 'utf8')) as SubscriptionMeta;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export function loadState(subDir: string): SubscriptionState {
  try {
    const parsed = JSON.parse(readFileSync(join(subDir, 'state.json'), 'utf8')) as SubscriptionState;
    return { segments: parsed.segments ?? {} };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { segments: {} };
    throw err;
  }
}

export async function saveState(subDir: string, state: SubscriptionState): Promise<void> {
  await writeFileAtomic(join(subDir, 'state.json'), JSON.stringify(state));
}
