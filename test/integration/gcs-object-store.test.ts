/**
 * The Cloud Storage object store through the real `@google-cloud/storage` v7 client.
 *
 * Target of the contract suite and of the first describe block (which checks the double's
 * request log only when the double is the target):
 * - by default the JSON API test double (test/fixtures/gcs-double.ts), one per file;
 * - `GCS_TEST_ENDPOINT=http://HOST:PORT`: that endpoint instead (an emulator serving the JSON API
 *   under `/storage/v1` and uploads under `/upload/storage/v1`), passed as `apiEndpoint`;
 * - `STORAGE_EMULATOR_HOST=…`: that emulator, as the client library reads it.
 * With either variable the bucket `GCS_TEST_BUCKET` (default `hourglass-test`) must exist. Each
 * test writes under a fresh name prefix and deletes what it wrote. The retry and failure tests
 * need the double's failure injection and always run against the double, except with
 * `STORAGE_EMULATOR_HOST` set: the library then sends every JSON API call to that host whatever
 * `apiEndpoint` says, so they are not registered.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listAll } from '../../core/ports/object-store.js';
import { GcsObjectStore, type GcsObjectStoreOptions } from '../../infra/store/gcs/gcs-object-store.js';
import { objectStoreContract } from '../contracts/object-store.contract.js';
import { type GcsDouble, type GcsDoubleRequest, startGcsDouble } from '../fixtures/gcs-double.js';

const BUCKET = process.env.GCS_TEST_BUCKET ?? 'hourglass-test';
const EMULATOR_HOST = process.env.STORAGE_EMULATOR_HOST;
const TEST_ENDPOINT = process.env.GCS_TEST_ENDPOINT;
/** The double is the target of the contract suite. */
const useDouble = EMULATOR_HOST === undefined && TEST_ENDPOINT === undefined;
/** The double can be reached at all (STORAGE_EMULATOR_HOST redirects the client's JSON API calls). */
const doubleReachable = EMULATOR_HOST === undefined;
/** The shortest waits between retries the library takes (1 s), so a retry test takes seconds. */
const FAST_RETRY = { maxRetries: 3, maxDelayRealMs: 1_000, totalTimeoutRealMs: 5_000 } as const;
const KIB = 1024;

let double: GcsDouble;
let serial = 0;

beforeAll(async () => {
  double = await startGcsDouble({ buckets: [BUCKET] });
});
afterAll(async () => {
  await double.stop();
});

function freshPrefix(): string {
  serial += 1;
  return `t${serial}-${randomBytes(4).toString('hex')}/`;
}

/** A store on the suite's target (the double unless an endpoint is given). */
function targetStore(options: Partial<GcsObjectStoreOptions> = {}): GcsObjectStore {
  const endpoint = TEST_ENDPOINT ?? (EMULATOR_HOST === undefined ? double.endpoint : undefined);
  return new GcsObjectStore({
    bucket: BUCKET,
    prefix: freshPrefix(),
    projectId: 'hourglass-test',
    retry: FAST_RETRY,
    ...(endpoint !== undefined ? { apiEndpoint: endpoint } : {}),
    ...options,
  });
}

/** A store on the double, whatever the target. */
function doubleStore(options: Partial<GcsObjectStoreOptions> = {}): GcsObjectStore {
  return new GcsObjectStore({
    bucket: BUCKET,
    prefix: freshPrefix(),
    projectId: 'hourglass-test',
    apiEndpoint: double.endpoint,
    retry: FAST_RETRY,
    ...options,
  });
}

async function removeAll(store: GcsObjectStore): Promise<void> {
  for (const o of await listAll(store, '')) await store.delete(o.name);
}

/** The double's log entries about one object (uploads name it in the query, others in the path). */
function about(store: GcsObjectStore, name: string, since = 0): GcsDoubleRequest[] {
  const full = `${store.prefix}${name}`;
  const inPath = `/o/${encodeURIComponent(full)}`;
  return double.requests.slice(since).filter((r) => r.query.name === full || r.path.endsWith(inPath));
}

objectStoreContract('gcs', async () => {
  const store = targetStore();
  return { store, cleanup: () => removeAll(store) };
});

describe('gcs object store', () => {
  let dir: string;
  const stores: GcsObjectStore[] = [];
  const track = (s: GcsObjectStore): GcsObjectStore => {
    stores.push(s);
    return s;
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hourglass-gcs-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    double.failNext(0, 200);
    for (const s of stores.splice(0)) await removeAll(s);
  });

  it('uploads a file above the threshold as a resumable upload, read back byte-identical', async () => {
    const store = track(targetStore({ resumableThresholdBytes: 256 * KIB, resumableChunkBytes: 256 * KIB }));
    const body = randomBytes(1024 * KIB);
    const path = join(dir, 'big.bin');
    await writeFile(path, body);
    const since = double.requests.length;
    const info = await store.putFile('big/one.bin', path);
    expect(info).toMatchObject({ name: 'big/one.bin', size: body.length });
    expect(Number.isFinite(info.createdAt)).toBe(true);
    expect((await store.get('big/one.bin')).equals(body)).toBe(true);
    if (useDouble) {
      const log = about(store, 'big/one.bin', since);
      expect(log[0]).toMatchObject({ method: 'POST', status: 200, query: { uploadType: 'resumable' } });
      expect(log[0]?.path).toBe(`/upload/storage/v1/b/${BUCKET}/o`);
      expect(log[0]?.query.ifGenerationMatch).toBe('0');
      const puts = log.filter((r) => r.method === 'PUT');
      expect(puts.map((r) => [r.contentRange, r.status])).toEqual([
        ['bytes 0-262143/1048576', 308],
        ['bytes 262144-524287/1048576', 308],
        ['bytes 524288-786431/1048576', 308],
        ['bytes 786432-1048575/1048576', 200],
      ]);
      expect(log.filter((r) => r.query.uploadType === 'multipart')).toEqual([]);
    }
  });

  it('uploads small bodies and files as one multipart request', async () => {
    const store = track(targetStore());
    const path = join(dir, 'small.bin');
    await writeFile(path, Buffer.from('small file'));
    const since = double.requests.length;
    await store.put('s/body', Buffer.from('small body'));
    await store.putFile('s/file', path);
    expect((await store.get('s/file')).toString()).toBe('small file');
    if (useDouble) {
      for (const name of ['s/body', 's/file']) {
        const uploads = about(store, name, since).filter((r) => r.method === 'POST');
        expect(uploads).toHaveLength(1);
        expect(uploads[0]).toMatchObject({ status: 200, query: { uploadType: 'multipart', ifGenerationMatch: '0' } });
      }
    }
  });

  it('puts a body above the threshold as a resumable upload too', async () => {
    const store = track(targetStore({ resumableThresholdBytes: 256 * KIB, resumableChunkBytes: 256 * KIB }));
    const body = randomBytes(600 * KIB);
    const since = double.requests.length;
    expect(await store.put('big/body', body)).toMatchObject({ size: body.length });
    expect((await store.get('big/body')).equals(body)).toBe(true);
    if (useDouble) {
      const puts = about(store, 'big/body', since).filter((r) => r.method === 'PUT');
      expect(puts.map((r) => r.status)).toEqual([308, 308, 200]);
    }
  });

  it('answers ObjectExists to a second write of a name, for both kinds of upload', async () => {
    const store = track(targetStore({ resumableThresholdBytes: 256 * KIB, resumableChunkBytes: 256 * KIB }));
    await store.put('dup/small', Buffer.from('first'));
    const path = join(dir, 'dup.bin');
    await writeFile(path, randomBytes(300 * KIB));
    await store.putFile('dup/big', path);
    const since = double.requests.length;
    await expect(store.put('dup/small', Buffer.from('second'))).rejects.toMatchObject({ code: 'object_exists' });
    await expect(store.putFile('dup/big', path)).rejects.toMatchObject({ code: 'object_exists' });
    expect((await store.get('dup/small')).toString()).toBe('first');
    if (useDouble) {
      // one upload request each, answered 412 and not retried; then the write-id check reads the metadata
      const small = about(store, 'dup/small', since);
      expect(small.filter((r) => r.query.uploadType !== undefined).map((r) => r.status)).toEqual([412]);
      const big = about(store, 'dup/big', since);
      expect(big.filter((r) => r.query.uploadType !== undefined).map((r) => [r.method, r.status])).toEqual([
        ['POST', 412],
      ]);
    }
  });

  it('lists with the API pagination, names without the store prefix', async () => {
    const store = track(targetStore());
    for (const n of ['p/c', 'p/a', 'p/b', 'q/x']) await store.put(n, Buffer.from(n));
    const since = double.requests.length;
    const first = await store.list('p/', { pageSize: 2 });
    expect(first.objects.map((o) => o.name)).toEqual(['p/a', 'p/b']);
    expect(first.objects[0]?.size).toBe(3);
    expect(first.nextPageToken).toBeTypeOf('string');
    const second = await store.list('p/', { pageSize: 2, pageToken: first.nextPageToken });
    expect(second.objects.map((o) => o.name)).toEqual(['p/c']);
    expect(second.nextPageToken).toBeUndefined();
    if (useDouble) {
      const lists = double.requests.slice(since).filter((r) => r.path === `/storage/v1/b/${BUCKET}/o`);
      expect(lists[0]?.query).toMatchObject({ prefix: `${store.prefix}p/`, maxResults: '2' });
      expect(lists[1]?.query).toMatchObject({ pageToken: first.nextPageToken });
    }
  });

  it('refuses names that are not port names', async () => {
    const store = targetStore();
    for (const bad of ['', '/abs', 'a//b', 'a/../b', 'line\nbreak']) {
      await expect(store.put(bad, Buffer.from('x'))).rejects.toMatchObject({ code: 'object_store_unavailable' });
    }
    expect(() => new GcsObjectStore({ bucket: BUCKET, prefix: 'no-slash' })).toThrow(/store.prefix/);
    expect(() => new GcsObjectStore({ bucket: BUCKET, resumableChunkBytes: 1000 })).toThrow(/256 KiB/);
    expect(store.localPath()).toBeNull();
    expect(store.gsUri('a/b')).toBe(`gs://${BUCKET}/${store.prefix}a/b`);
  });
});

if (doubleReachable) {
  describe('gcs object store against the double: retries and failures', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'hourglass-gcs-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });
    afterEach(() => {
      double.failNext(0, 200);
    });

    it('retries a 503 on the first attempt of an upload, and succeeds', async () => {
      const store = doubleStore();
      const since = double.requests.length;
      double.failNext(1, 503);
      await store.put('r/one', Buffer.from('retried'));
      expect((await store.get('r/one')).toString()).toBe('retried');
      const uploads = about(store, 'r/one', since).filter((r) => r.method === 'POST');
      expect(uploads.map((r) => r.status)).toEqual([503, 200]);
    });

    it('retries 503s of a resumable upload: at the session start and on a chunk', async () => {
      const store = doubleStore({ resumableThresholdBytes: 256 * KIB, resumableChunkBytes: 256 * KIB });
      const body = randomBytes(1024 * KIB);
      const path = join(dir, 'chunky.bin');
      await writeFile(path, body);
      const since = double.requests.length;
      // the session start fails once, then the second chunk is lost once: the client asks the
      // session how far it got and sends that chunk again
      const hit = { start: false, chunk: false };
      double.failNext(2, 503, {
        when: (r) => {
          if (!hit.start && r.method === 'POST') {
            hit.start = true;
            return true;
          }
          if (!hit.chunk && r.contentRange?.startsWith('bytes 262144-') === true) {
            hit.chunk = true;
            return true;
          }
          return false;
        },
      });
      await store.putFile('r/chunky', path);
      expect((await store.get('r/chunky')).equals(body)).toBe(true);
      const log = about(store, 'r/chunky', since);
      expect(log.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([503, 200]);
      const puts = log.filter((r) => r.method === 'PUT').map((r) => [r.contentRange, r.status]);
      expect(puts).toContainEqual(['bytes 262144-524287/1048576', 503]);
      expect(puts).toContainEqual(['bytes */*', 308]);
      expect(puts[puts.length - 1]).toEqual(['bytes 786432-1048575/1048576', 200]);
    });

    it('retries a 429 of a download and of a list', async () => {
      const store = doubleStore();
      await store.put('r/read', Buffer.from('read me'));
      double.failNext(1, 429);
      expect((await store.get('r/read')).toString()).toBe('read me');
      double.failNext(1, 429);
      expect((await store.list('r/')).objects.map((o) => o.name)).toEqual(['r/read']);
    });

    it('takes a retried upload that meets its own object (a lost answer) as success', async () => {
      const store = doubleStore();
      const since = double.requests.length;
      double.failNext(1, 503, { afterEffect: true });
      const info = await store.put('r/lost', Buffer.from('landed once'));
      expect(info).toMatchObject({ name: 'r/lost', size: 11 });
      expect((await store.get('r/lost')).toString()).toBe('landed once');
      const uploads = about(store, 'r/lost', since).filter((r) => r.method === 'POST');
      expect(uploads.map((r) => r.status)).toEqual([503, 412]);
      // another writer's object is still ObjectExists
      await expect(store.put('r/lost', Buffer.from('landed once'))).rejects.toMatchObject({ code: 'object_exists' });
    });

    it('ends a 503 that persists in ObjectStoreFailed within a bounded time', async () => {
      const store = doubleStore({ retry: { maxRetries: 2, maxDelayRealMs: 1_000, totalTimeoutRealMs: 4_000 } });
      const path = join(dir, 'small.bin');
      await writeFile(path, Buffer.from('never'));
      const since = double.requests.length;
      double.failNext(1_000, 503);
      const started = performance.now();
      const outcomes = await Promise.allSettled([
        store.put('f/put', Buffer.from('never')),
        store.putFile('f/file', path),
        store.get('f/put'),
        store.list('f/'),
        store.delete('f/put'),
      ]);
      expect(performance.now() - started).toBeLessThan(10_000);
      double.failNext(0, 200);
      const operations = ['put', 'putFile', 'get', 'list', 'delete'];
      for (const [i, outcome] of outcomes.entries()) {
        expect(outcome.status).toBe('rejected');
        if (outcome.status === 'rejected') {
          expect(outcome.reason).toMatchObject({
            code: 'object_store_unavailable',
            retriable: true,
            context: { operation: operations[i] },
            cause: expect.any(Error),
          });
        }
      }
      // the first attempt and maxRetries more, then no more requests
      const uploads = about(store, 'f/put', since).filter((r) => r.method === 'POST');
      expect(uploads.map((r) => r.status)).toEqual([503, 503, 503]);
    });

    it('does not retry when retries are off', async () => {
      const store = doubleStore({ retry: { maxRetries: 0 } });
      const since = double.requests.length;
      double.failNext(1, 503);
      await expect(store.put('n/one', Buffer.from('x'))).rejects.toMatchObject({ code: 'object_store_unavailable' });
      expect(about(store, 'n/one', since).map((r) => r.status)).toEqual([503]);
    });

    it('sends object names URL-encoded, with the CRC32C of the body for the server to check', async () => {
      const store = doubleStore();
      const since = double.requests.length;
      await store.put('raw/T/date=2026-11-22/a b.avro', Buffer.from('x'));
      await store.get('raw/T/date=2026-11-22/a b.avro');
      await store.delete('raw/T/date=2026-11-22/a b.avro');
      await store.delete('raw/T/date=2026-11-22/a b.avro');
      const encoded = encodeURIComponent(`${store.prefix}raw/T/date=2026-11-22/a b.avro`);
      const paths = double.requests.slice(since).map((r) => `${r.method} ${r.path} ${r.status}`);
      expect(encoded).toContain('%2F');
      expect(paths).toContain(`GET /storage/v1/b/${BUCKET}/o/${encoded} 200`);
      expect(paths).toContain(`DELETE /storage/v1/b/${BUCKET}/o/${encoded} 204`);
      expect(paths).toContain(`DELETE /storage/v1/b/${BUCKET}/o/${encoded} 404`);
    });

    it('answers a missing bucket with ObjectStoreFailed on writes and lists', async () => {
      const store = doubleStore({ bucket: 'no-such-bucket' });
      await expect(store.put('a', Buffer.from('x'))).rejects.toMatchObject({ code: 'object_store_unavailable' });
      await expect(store.list('')).rejects.toMatchObject({ code: 'object_store_unavailable' });
    });
  });
}
