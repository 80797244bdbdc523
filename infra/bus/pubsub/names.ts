/**
 * Port names (topics, subscriptions) ↔ Pub/Sub resource names.
 *
 * A port name `n` is the Pub/Sub id `<topicPrefix>n`, in `projects/<projectId>/topics/…` or
 * `projects/<projectId>/subscriptions/…`. Both rules hold: the port's (BUS_NAME_PATTERN) for `n`,
 * and Pub/Sub's for the whole id (letters, digits, `-_.~+%`, 3–255 characters, starting with a
 * letter, not starting with `goog`).
 */
import { ConfigInvalid, InvalidName } from '../../../core/errors.js';
import { BUS_NAME_PATTERN } from '../../../core/ports/bus.js';

const PUBSUB_ID = /^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$/;
const PUBSUB_ID_RULE =
  'Pub/Sub ids are letters, digits, "-", "_", ".", "~", "+" or "%", 3 to 255 characters, starting with a letter and not with "goog"';
const PORT_RULE = 'letters, digits, ".", "_" or "-", 3 to 200 characters, starting with a letter';
const PREFIX = /^(?:[A-Za-z][A-Za-z0-9\-_.~+%]{0,240})?$/;

export type ResourceKind = 'topic' | 'subscription';

export class PubSubNames {
  private readonly topicRoot: string;
  private readonly subscriptionRoot: string;

  constructor(
    readonly projectId: string,
    readonly prefix: string,
  ) {
    // loose on purpose: emulators take any id; the service itself refuses a wrong one
    if (!/^[A-Za-z0-9][A-Za-z0-9.:_-]{0,99}$/.test(projectId)) {
      throw new ConfigInvalid({
        key: 'bus.pubsub.projectId',
        rule: `a Google Cloud project id (letters, digits, "-", ".", ":", "_"), got ${JSON.stringify(projectId)}`,
      });
    }
    if (!PREFIX.test(prefix) || prefix.startsWith('goog')) {
      throw new ConfigInvalid({
        key: 'bus.pubsub.topicPrefix',
        rule: `empty, or letters, digits, "-", "_", ".", "~", "+" or "%" starting with a letter (not "goog"), at most 241 characters; got ${JSON.stringify(prefix)}`,
      });
    }
    this.topicRoot = `projects/${projectId}/topics/`;
    this.subscriptionRoot = `projects/${projectId}/subscriptions/`;
  }

  /** True when `name` can be a port name of this bus (both rules hold). */
  valid(name: string): boolean {
    return BUS_NAME_PATTERN.test(name) && validId(this.prefix + name);
  }

  /** Throws InvalidName (with the rule broken) unless `name` can be a port name of this bus. */
  check(kind: ResourceKind, name: string): void {
    if (!BUS_NAME_PATTERN.test(name)) throw new InvalidName({ kind, name, rule: PORT_RULE });
    if (!validId(this.prefix + name)) {
      throw new InvalidName({ kind, name, rule: `as ${JSON.stringify(this.prefix + name)}: ${PUBSUB_ID_RULE}` });
    }
  }

  topic(name: string): string {
    return this.topicRoot + this.prefix + name;
  }

  subscription(name: string): string {
    return this.subscriptionRoot + this.prefix + name;
  }

  /** The port name of a full Pub/Sub topic name, or null when it is not one of this bus's. */
  topicName(resource: string): string | null {
    return this.portName(this.topicRoot, resource);
  }

  /** The port name of a full Pub/Sub subscription name, or null when it is not one of this bus's. */
  subscriptionName(resource: string): string | null {
    return this.portName(this.subscriptionRoot, resource);
  }

  private portName(root: string, resource: string): string | null {
    if (!resource.startsWith(root + this.prefix)) return null;
    const name = resource.slice(root.length + this.prefix.length);
    return BUS_NAME_PATTERN.test(name) ? name : null;
  }
}

function validId(id: string): boolean {
  return PUBSUB_ID.test(id) && !id.startsWith('goog');
}
