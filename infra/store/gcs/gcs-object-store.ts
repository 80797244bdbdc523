/**
 * The Google Cloud Storage object store, through the `@google-cloud/storage` v7 client.
 *
 * Names: a port name `n` is the object `<prefix>n` of the bucket; `list` strips the prefix again.
 *
 * Write-once: every upload carries the precondition `ifGenerationMatch: 0`, so Cloud Storage
 * creates the object only if no live object has the name, atomically (of concurrent writers
 * exactly one wins); a 412 becomes ObjectExists. A resumable upload carries it when the session
 * starts and Cloud Storage checks it again when the upload completes. An object appears only
 * when its upload completes, so a reader never sees a partial object.
 *
 * Uploads: bodies and files up to `resumableThresholdBytes` (default 8 MiB) are one multipart
 * request (`uploadType=multipart`: a JSON metadata part and the data); larger ones are resumable
 * uploads (`uploadType=resumable`: a session, then `PUT`s of `resumableChunkBytes`, default 8 MiB,
 * so a failed chunk is sent again from memory instead of restarting the upload). Integrity: the
 * library computes the CRC32C of what it sends and compares it with the object's CRC32C in the
 * answer (a mismatch deletes the object and fails); `put` also sends the CRC32C of the body in the
 * metadata, so Cloud Storage refuses a body damaged on the way. Downloads are checked against
 * the `x-goog-hash` CRC32C.
 *
 * Retries (the library's): 408, 429, 500, 502, 503, 504 and connection errors, with exponential
 * backoff, at most `retry.maxRetries` times and not after `retry.totalTimeoutRealMs`; never a
 * 412 or another 4xx. The client's default `idempotencyStrategy` (RetryConditional) retries an
 * object insert only when it carries `ifGenerationMatch`, which every upload here does: the
 * precondition makes a repeated insert harmless. Deletes go through a second client whose
 * strategy is RetryAlways (a repeated DELETE of an object already gone answers 404, which is
 * success here); with RetryConditional the v7 client would not retry them, and it switches
 * retries off and on again on the client shared by all calls while a delete runs.
 *
 * A retried upload whose first attempt did land (its answer was lost) meets its own object and
 * gets a 412. Each upload therefore carries a random write id in its custom metadata
 * (`hourglass-write-id`); on a 412 the store reads the object's metadata, and when the id is its
 * own the upload succeeded and `put` returns the object. Any other writer's object → ObjectExists.
 *
 * Connection: Google's endpoint with Application Default Credentials; or `apiEndpoint` (an
 * emulator, the test double) without credentials. The library itself reads
 * `STORAGE_EMULATOR_HOST` (no credentials either): when it is set, JSON API calls go to
 * `<STORAGE_EMULATOR_HOST>/b/…` (without `/storage/v1`, as emulators also serve them) whatever
 * `apiEndpoint` says, and uploads to `<apiEndpoint or STORAGE_EMULATOR_HOST>/upload/storage/v1/…`.
 *
 * Errors: 404 on `get` → ObjectNotFound (a missing bucket too); 404 on `delete` → success;
 * anything else → ObjectStoreFailed with the operation, the port name and the library's error.
 */
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { CRC32C, type File, IdempotencyStrategy, Storage, type StorageOptions } from '@google-cloud/storage';
import { ConfigInvalid, ObjectExists, ObjectNotFound, ObjectStoreFailed } from '../../../core/errors.js';
import {
  checkRange,
  type ListOptions,
  type ObjectInfo,
  type ObjectPage,
  type ObjectStore,
} from '../../../core/ports/object-store.js';

export interface GcsRetryOptions {
  /** Retries of one call after its first attempt; 0 turns retries off. Default 3 (the library's). */
  readonly maxRetries?: number;
  /**
   * Longest wait between two attempts, real ms, at least 1 s (the library's upload retries wait
   * at least 1 s and refuse a smaller bound). Default 64 s (the library's).
   */
  readonly maxDelayRealMs?: number;
  /** No retry starts later than this after the call's first attempt, real ms. Default 600 s. */
  readonly totalTimeoutRealMs?: number;
}

export interface GcsObjectStoreOptions {
  readonly bucket: string;
  /** Object name prefix inside the bucket: empty, or ending with "/". Default ''. */
  readonly prefix?: string;
  /** Google Cloud project; default: the library's discovery (GOOGLE_CLOUD_PROJECT, ADC). */
  readonly projectId?: string;
  /**
   * Another endpoint than Google's (an emulator, the test double), e.g. `http://127.0.0.1:9023`;
   * no credentials are sent to it. Default: `STORAGE_EMULATOR_HOST` as the library reads it, else
   * Google's.
   */
  readonly apiEndpoint?: string;
  /** Bodies and files larger than this are resumable uploads. Default 8 MiB. */
  readonly resumableThresholdBytes?: number;
  /** Bytes per request of a resumable upload, a multiple of 256 KiB. Default 8 MiB. */
  readonly resumableChunkBytes?: number;
  readonly retry?: GcsRetryOptions;
}

const MIB = 1024 * 1024;
const CHUNK_UNIT = 256 * 1024;
/** Custom metadata key of the random id of one upload (see the header). */
const WRITE_ID = 'hourglass-write-id';
const CONTENT_TYPE = 'application/octet-stream';
const DEFAULT_PAGE = 1000;

export class GcsObjectStore implements ObjectStore {
  readonly backend = 'gcs';
  readonly bucket: string;
  readonly prefix: string;
  private readonly storage: Storage;
  /** Deletes only (RetryAlways: see the header). */
  private readonly deleter: Storage;
  private readonly threshold: number;
  private readonly chunkBytes: number;

  constructor(options: GcsObjectStoreOptions) {
    this.bucket = options.bucket;
    this.prefix = options.prefix ?? '';
    if (this.prefix !== '' && !this.prefix.endsWith('/')) {
      throw new ConfigInvalid({ key: 'store.prefix', rule: 'empty, or a name prefix ending with "/"' });
    }
    this.threshold = options.resumableThresholdBytes ?? 8 * MIB;
    this.chunkBytes = options.resumableChunkBytes ?? 8 * MIB;
    if (!Number.isInteger(this.chunkBytes) || this.chunkBytes <= 0 || this.chunkBytes % CHUNK_UNIT !== 0) {
      throw new ConfigInvalid({ key: 'store.resumableChunkBytes', rule: 'a positive multiple of 262144 (256 KiB)' });
    }
    if (!Number.isFinite(this.threshold) || this.threshold < 0) {
      throw new ConfigInvalid({ key: 'store.resumableThresholdBytes', rule: 'a number of bytes, 0 or more' });
    }
    const retryOptions = libraryRetryOptions(options.retry ?? {});
    const common = {
      ...(options.projectId !== undefined ? { projectId: options.projectId } : {}),
      ...(options.apiEndpoint !== undefined ? { apiEndpoint: options.apiEndpoint } : {}),
    };
    this.storage = new Storage({
      ...common,
      retryOptions: { ...retryOptions, idempotencyStrategy: IdempotencyStrategy.RetryConditional },
    });
    this.deleter = new Storage({
      ...common,
      retryOptions: { ...retryOptions, idempotencyStrategy: IdempotencyStrategy.RetryAlways },
    });
  }

  /** The `gs://` URI of a port name (for BigQuery loads). */
  gsUri(name: string): string {
    return `gs://${this.bucket}/${this.prefix}${name}`;
  }

  localPath(): null {
    return null;
  }

  async put(name: string, body: Uint8Array): Promise<ObjectInfo> {
    const file = this.file('put', name);
    const data = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const writeId = randomUUID();
    const crc = new CRC32C();
    crc.update(data);
    try {
      const options = this.writeOptions(data.length, writeId);
      await file.save(data, { ...options, metadata: { ...options.metadata, crc32c: crc.toString() } });
      return this.info(name, file.metadata);
    } catch (err) {
      const outcome = await this.afterWriteError('put', name, file, writeId, err);
      if (outcome instanceof Error) throw outcome;
      return outcome;
    }
  }

  /**
   * What every write sends: create only (`ifGenerationMatch: 0`), crc32c validation, our write id,
   * and a resumable upload in chunks above the threshold.
   */
  private writeOptions(size: number, writeId: string) {
    const resumable = size > this.threshold;
    return {
      resumable,
      ...(resumable ? { chunkSize: this.chunkBytes } : {}),
      validation: 'crc32c' as const,
      preconditionOpts: { ifGenerationMatch: 0 },
      metadata: {
        contentType: CONTENT_TYPE,
        metadata: { [WRITE_ID]: writeId },
        ...(resumable ? { contentLength: size } : {}),
      },
    };
  }

  async putFile(name: string, path: string): Promise<ObjectInfo> {
    const file = this.file('putFile', name);
    const writeId = randomUUID();
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (err) {
      throw new ObjectStoreFailed({ operation: 'putFile', name }, { cause: err });
    }
    try {
      const [, metadata] = await this.storage.bucket(this.bucket).upload(path, {
        destination: file,
        ...this.writeOptions(size, writeId),
      });
      return this.info(name, metadata ?? file.metadata);
    } catch (err) {
      const outcome = await this.afterWriteError('putFile', name, file, writeId, err);
      if (outcome instanceof Error) throw outcome;
      return outcome;
    }
  }

  async get(name: string): Promise<Buffer> {
    const file = this.file('get', name);
    try {
      const [data] = await file.download({ validation: 'crc32c' });
      return data;
    } catch (err) {
      if (statusOf(err) === 404) throw new ObjectNotFound({ name }, { cause: asError(err) });
      throw new ObjectStoreFailed({ operation: 'get', name }, { cause: asError(err) });
    }
  }

  /**
   * A ranged download (`Range: bytes=a-b`). The library cannot check a part against the object's
   * CRC32C, so a range is not checked; a range past the end (416) is no bytes.
   */
  async getRange(name: string, offset: number, length: number): Promise<Buffer> {
    const bad = checkRange(offset, length);
    if (bad !== null) throw new ObjectStoreFailed({ operation: 'getRange', name }, { cause: new Error(bad) });
    const file = this.file('getRange', name);
    if (length === 0) {
      await this.exists(file, name);
      return Buffer.alloc(0);
    }
    try {
      const [data] = await file.download({ start: offset, end: offset + length - 1, validation: false });
      return data;
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) throw new ObjectNotFound({ name }, { cause: asError(err) });
      if (status === 416) {
        await this.exists(file, name);
        return Buffer.alloc(0);
      }
      throw new ObjectStoreFailed({ operation: 'getRange', name }, { cause: asError(err) });
    }
  }

  /** Throws ObjectNotFound unless the object exists. */
  private async exists(file: File, name: string): Promise<void> {
    try {
      const [found] = await file.exists();
      if (!found) throw new ObjectNotFound({ name });
    } catch (err) {
      if (err instanceof ObjectNotFound) throw err;
      throw new ObjectStoreFailed({ operation: 'getRange', name }, { cause: asError(err) });
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ObjectPage> {
    const pageSize = options.pageSize ?? DEFAULT_PAGE;
    try {
      const [files, , response] = await this.storage.bucket(this.bucket).getFiles({
        prefix: this.prefix + prefix,
        maxResults: pageSize,
        autoPaginate: false,
        ...(options.pageToken !== undefined ? { pageToken: options.pageToken } : {}),
      });
      const next = (response as { nextPageToken?: unknown } | undefined)?.nextPageToken;
      const objects = files.map((f) => this.info(f.name.slice(this.prefix.length), f.metadata));
      return typeof next === 'string' && next !== '' ? { objects, nextPageToken: next } : { objects };
    } catch (err) {
      throw new ObjectStoreFailed({ operation: 'list', name: prefix }, { cause: asError(err) });
    }
  }

  async delete(name: string): Promise<void> {
    const file = this.deleter.bucket(this.bucket).file(this.objectName('delete', name));
    try {
      await file.delete({ ignoreNotFound: true });
    } catch (err) {
      if (statusOf(err) === 404) return;
      throw new ObjectStoreFailed({ operation: 'delete', name }, { cause: asError(err) });
    }
  }

  private file(operation: string, name: string): File {
    return this.storage.bucket(this.bucket).file(this.objectName(operation, name));
  }

  /** `<prefix>name`, refusing names Cloud Storage or the other backends would not take. */
  private objectName(operation: string, name: string): string {
    const full = this.prefix + name;
    const bad =
      name === '' ||
      name.startsWith('/') ||
      name.split('/').some((p) => p === '' || p === '.' || p === '..') ||
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
      /[\u0000-\u001f\u007f]/.test(name) ||
      Buffer.byteLength(full) > 1024;
    if (bad) throw new ObjectStoreFailed({ operation, name }, { cause: new Error('invalid object name') });
    return full;
  }

  private info(name: string, metadata: { size?: unknown; timeCreated?: unknown } | undefined): ObjectInfo {
    return {
      name,
      size: Number(metadata?.size ?? Number.NaN),
      createdAt: Date.parse(String(metadata?.timeCreated ?? '')),
    };
  }

  /**
   * The error of a failed upload: a 412 is ObjectExists, unless the object is this upload's own
   * (an earlier attempt landed and its answer was lost), which is returned as success instead.
   */
  private async afterWriteError(
    operation: string,
    name: string,
    file: File,
    writeId: string,
    err: unknown,
  ): Promise<ObjectExists | ObjectStoreFailed | ObjectInfo> {
    if (statusOf(err) !== 412) return new ObjectStoreFailed({ operation, name }, { cause: asError(err) });
    try {
      const [metadata] = await file.getMetadata();
      if (metadata.metadata?.[WRITE_ID] === writeId) return this.info(name, metadata);
    } catch {
      // the object exists (412) whatever its metadata says; a failed read changes nothing
    }
    return new ObjectExists({ name }, { cause: asError(err) });
  }
}

/** Maps the adapter's retry options to the library's (seconds; a zero count is "use default"). */
function libraryRetryOptions(retry: GcsRetryOptions): NonNullable<StorageOptions['retryOptions']> {
  const maxRetries = retry.maxRetries ?? 3;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) {
    throw new ConfigInvalid({ key: 'store.retry.maxRetries', rule: 'a whole number, 0 or more' });
  }
  if (retry.maxDelayRealMs !== undefined && !(retry.maxDelayRealMs >= 1000)) {
    throw new ConfigInvalid({ key: 'store.retry.maxDelayRealMs', rule: 'at least 1000 (ms)' });
  }
  if (retry.totalTimeoutRealMs !== undefined && !(retry.totalTimeoutRealMs > 0)) {
    throw new ConfigInvalid({ key: 'store.retry.totalTimeoutRealMs', rule: 'more than 0 (ms)' });
  }
  return {
    autoRetry: maxRetries > 0,
    ...(maxRetries > 0 ? { maxRetries } : {}),
    maxRetryDelay: (retry.maxDelayRealMs ?? 64_000) / 1000,
    totalTimeout: (retry.totalTimeoutRealMs ?? 600_000) / 1000,
  };
}

/** The HTTP status of a library error: ApiError `code`, a Gaxios error's response, or a JSON error body. */
function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.code === 'string' && /^\d{3}$/.test(e.code)) return Number(e.code);
  if (typeof e.status === 'number') return e.status;
  if (typeof e.response?.status === 'number') return e.response.status;
  return undefined;
}

/** Library failures are not always Error instances (a resumable upload can fail with a JSON error body). */
function asError(err: unknown): Error {
  if (err instanceof Error) return err;
  const message = (err as { message?: unknown } | null)?.message;
  const wrapped = new Error(typeof message === 'string' ? message : String(err));
  Object.assign(wrapped, { detail: err });
  return wrapped;
}
