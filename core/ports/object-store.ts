/**
 * The object store port: where raw hourly files and final partitions live. Backends: the local
 * filesystem (embedded default) and Google Cloud Storage. Every backend passes the shared contract
 * suite in `test/contracts/object-store.contract.ts`.
 *
 * Names are `/`-separated keys (`raw/EndSong/date=2026-11-22/hour=10/….avro`). Objects are
 * **write-once**: `put` and `putFile` create a name only if it does not exist yet and throw
 * ObjectExists otherwise, atomically (two concurrent writers of one name: exactly one wins).
 * A reader never sees a partially written object.
 */
export interface ObjectInfo {
  readonly name: string;
  readonly size: number;
  /** Creation time, epoch ms (real time). */
  readonly createdAt: number;
}

export interface ListOptions {
  /** At most this many objects per page (default 1,000). */
  readonly pageSize?: number;
  /** The `nextPageToken` of the previous page. */
  readonly pageToken?: string;
}

export interface ObjectPage {
  /** Sorted by name. */
  readonly objects: ObjectInfo[];
  /** Present when more objects follow. */
  readonly nextPageToken?: string;
}

export interface ObjectStore {
  readonly backend: string;
  /** Creates `name` with `body` if absent; throws ObjectExists if the name exists. */
  put(name: string, body: Uint8Array): Promise<ObjectInfo>;
  /**
   * Creates `name` from a local file if absent (large objects); throws ObjectExists. The caller
   * must not change the file afterwards (a store may keep it as the object); it may remove it.
   */
  putFile(name: string, path: string): Promise<ObjectInfo>;
  /** The object's bytes; throws ObjectNotFound. */
  get(name: string): Promise<Buffer>;
  /**
   * Bytes `[offset, offset + length)` of the object: fewer when it ends before (none at or past
   * its end). Throws ObjectNotFound; ObjectStoreFailed for a negative offset or length.
   * Objects are write-once, so ranges read one after another come from the same bytes.
   */
  getRange(name: string, offset: number, length: number): Promise<Buffer>;
  /** Objects whose names start with `prefix`, sorted by name, a page at a time. */
  list(prefix: string, options?: ListOptions): Promise<ObjectPage>;
  /** Deletes `name`; deleting a missing object is not an error. */
  delete(name: string): Promise<void>;
  /**
   * A local path where the object can be read directly (filesystem backend), or null: callers
   * that need a file then copy it with `get`.
   */
  localPath(name: string): string | null;
}

/** Refuses a range `getRange` cannot serve (a backend calls it first). */
export function checkRange(offset: number, length: number): string | null {
  if (!Number.isSafeInteger(offset) || offset < 0) return 'offset must be a whole number, 0 or more';
  if (!Number.isSafeInteger(length) || length < 0) return 'length must be a whole number, 0 or more';
  return null;
}

/** Every object under `prefix`, across pages. */
export async function listAll(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  let pageToken: string | undefined;
  do {
    const page = await store.list(prefix, { pageToken });
    out.push(...page.objects);
    pageToken = page.nextPageToken;
  } while (pageToken !== undefined);
  return out;
}
