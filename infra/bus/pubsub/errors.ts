/**
 * The one seam where errors of the Pub/Sub client (gRPC status errors from google-gax) become the
 * product's typed errors, keeping the original as the cause.
 */
import { HourglassError, PublishFailed, SubscriptionNotFound, TopicNotFound } from '../../../core/errors.js';

/** gRPC status codes the bus reacts to (google.rpc.Code). */
export const GrpcStatus = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
} as const;

export function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export const isNotFound = (err: unknown): boolean => grpcCode(err) === GrpcStatus.NOT_FOUND;
export const isAlreadyExists = (err: unknown): boolean => grpcCode(err) === GrpcStatus.ALREADY_EXISTS;

/** Where a call failed: the port names involved, and which of them NOT_FOUND refers to. */
export interface FailureSite {
  readonly topic?: string;
  readonly subscription?: string;
  /** What the service did not find when it answers NOT_FOUND. */
  readonly missing: 'topic' | 'subscription';
  /** Messages of a failed publish. */
  readonly messages?: number;
}

/**
 * NOT_FOUND → TopicNotFound / SubscriptionNotFound (per `site.missing`); anything else (unavailable,
 * deadline exceeded, permission denied, invalid argument …) → PublishFailed, the bus's "not
 * available" error, retriable. Errors that are already typed pass unchanged.
 */
export function busError(err: unknown, site: FailureSite): HourglassError {
  if (err instanceof HourglassError) return err;
  if (isNotFound(err)) {
    if (site.missing === 'subscription' && site.subscription !== undefined) {
      return new SubscriptionNotFound({ subscription: site.subscription }, { cause: err });
    }
    if (site.missing === 'topic' && site.topic !== undefined) {
      return new TopicNotFound({ topic: site.topic }, { cause: err });
    }
  }
  const what = site.topic ?? `the topic of subscription ${site.subscription ?? '?'}`;
  return new PublishFailed(site.messages === undefined ? { topic: what } : { topic: what, messages: site.messages }, {
    cause: err,
  });
}
