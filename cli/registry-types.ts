/**
 * The event types `hourglass send` generates traffic for: from the type folders under --schemas,
 * and, for a type that is not there (or every type with --registry), from the registry API
 * (`GET /v1/event-types/:name` with a registry token), whose latest schema drives the generator.
 */
import { type EventType, latestVersion, loadEventTypes, parseSchema, type SchemaVersion } from '../core/event-types.js';
import { type CliIo, CommandFailed, UsageError } from './usage.js';

export interface TypeSources {
  readonly names: readonly string[];
  readonly schemasDir: string;
  /** Read every type from the registry, not from the folder. */
  readonly registryOnly: boolean;
  /** Base URL of the registry API. */
  readonly registryUrl: string;
  /** A registry token, or null when none was found. */
  readonly token: string | null;
}

/** How a command is told where a registry token comes from. */
export const TOKEN_SOURCES = '--token, $HOURGLASS_TOKEN or the dev-token `hourglass dev` saved in the data dir';

/** The named types: from the folder where they are, the others from the registry. */
export async function resolveEventTypes(s: TypeSources, io: CliIo): Promise<EventType[]> {
  const local = s.registryOnly ? [] : await folderTypes(s.schemasDir);
  const found = new Map(local.map((t) => [t.name, t]));
  const missing = s.names.filter((n) => !found.has(n));
  if (missing.length > 0) {
    if (s.token === null) {
      throw new UsageError(
        s.registryOnly
          ? `--registry needs a registry token (${TOKEN_SOURCES})`
          : `--type ${missing.join(',')}: no such event type under ${s.schemasDir}${local.length > 0 ? ` (have ${local.map((t) => t.name).join(', ')})` : ''}; to read it from the registry give a registry token (${TOKEN_SOURCES})`,
      );
    }
    for (const name of missing) {
      const t = await fetchEventType(s.registryUrl, s.token, name);
      io.stderr.write(`${name}: schema version ${latestVersion(t).version} from the registry at ${s.registryUrl}\n`);
      found.set(name, t);
    }
  }
  return s.names.map((n) => found.get(n) as EventType);
}

/** The folder's types; none when the folder does not exist. */
async function folderTypes(dir: string): Promise<EventType[]> {
  try {
    return await loadEventTypes(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UsageError(`cannot load event types from ${dir}: ${(err as Error).message}`);
  }
}

/** One type as the registry API describes it. */
export async function fetchEventType(registryUrl: string, token: string, name: string): Promise<EventType> {
  const url = new URL(`/v1/event-types/${encodeURIComponent(name)}`, registryUrl);
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    throw new CommandFailed('registry_unreachable', `cannot reach the registry at ${registryUrl}: ${cause}`, {
      cause: err,
    });
  }
  const body = (await res.json().catch(() => null)) as { code?: string; message?: string } | null;
  const said = body?.message !== undefined ? `: ${body.message}${body.code ? ` [${body.code}]` : ''}` : '';
  if (res.status === 404) throw new UsageError(`--type ${name}: no such event type in the registry at ${registryUrl}`);
  if (res.status === 401 || res.status === 403) {
    throw new UsageError(`the registry at ${registryUrl} refused the token for ${name} (${res.status})${said}`);
  }
  if (!res.ok) {
    throw new CommandFailed(
      'registry_failed',
      `the registry at ${registryUrl} answered ${res.status} for ${name}${said}`,
    );
  }
  return eventTypeFromApi(name, body);
}

/** An `EventType` from the registry API's answer; refuses an answer of another shape. */
export function eventTypeFromApi(name: string, body: unknown): EventType {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const versions = Array.isArray(b.versions) ? (b.versions as { version?: unknown; schema?: unknown }[]) : [];
  if (b.name !== name || versions.length === 0 || versions.some((v) => typeof v?.version !== 'number')) {
    throw new CommandFailed('registry_failed', `the registry's answer for ${name} is not an event type with versions`);
  }
  const parsed: SchemaVersion[] = versions
    .map((v) => parseSchema(name, v.version as number, v.schema))
    .sort((x, y) => x.version - y.version);
  return {
    name,
    owner: String(b.owner ?? ''),
    description: String(b.description ?? ''),
    tier: b.tier as EventType['tier'],
    partitioning: b.partitioning as EventType['partitioning'],
    storage: b.storage as EventType['storage'],
    retentionDays: Number(b.retentionDays),
    status: b.status as EventType['status'],
    ...(typeof b.dedupWindow === 'string' ? { dedupWindow: b.dedupWindow } : {}),
    versions: parsed,
  };
}
