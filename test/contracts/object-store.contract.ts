/**
 * The object-store contract: every backend (filesystem now, Cloud Storage later) runs this suite.
 */
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ObjectStoreFailed } from '../../core/errors.js';
import { listAll, type ObjectStore } from '../../core/ports/object-store.js';

export function objectStoreContract(
  name: string,
  make: () => Promise<{ store: ObjectStore; cleanup: () => Promise<void> }>,
): void {
  describe(`object store contract: ${name}`, () => {
    let store: ObjectStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await make());
    });
    afterEach(async () => {
      await cleanup();
    });

    it('puts and gets an object', async () => {
      const info = await store.put('raw/T/date=2026-11-22/hour=10/a.avro', Buffer.from('hello'));
      expect(info).toMatchObject({ name: 'raw/T/date=2026-11-22/hour=10/a.avro', size: 5 });
      expect((await store.get('raw/T/date=2026-11-22/hour=10/a.avro')).toString()).toBe('hello');
    });

    it('is write-once: a second put of the same name fails and keeps the first body', async () => {
      await store.put('x/one', Buffer.from('first'));
      await expect(store.put('x/one', Buffer.from('second'))).rejects.toMatchObject({ code: 'object_exists' });
      expect((await store.get('x/one')).toString()).toBe('first');
    });

    it('lets exactly one of many concurrent writers of a name win', async () => {
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => store.put('race/obj', Buffer.from(`writer ${i}`))),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'object_exists' });
      }
    });

    it('puts from a local file, write-once too', async () => {
      const path = join(tmpdir(), `hourglass-put-${process.pid}-${Date.now()}`);
      await writeFile(path, Buffer.alloc(3 * 1024 * 1024, 7));
      try {
        const info = await store.putFile('big/file.bin', path);
        expect(info.size).toBe(3 * 1024 * 1024);
        expect((await store.get('big/file.bin')).equals(Buffer.alloc(3 * 1024 * 1024, 7))).toBe(true);
        await expect(store.putFile('big/file.bin', path)).rejects.toMatchObject({ code: 'object_exists' });
        // the caller may remove its file: the object stays
        await rm(path, { force: true });
        expect((await store.get('big/file.bin')).equals(Buffer.alloc(3 * 1024 * 1024, 7))).toBe(true);
      } finally {
        await rm(path, { force: true });
      }
    });

    it('reads byte ranges, shorter at the end and empty past it', async () => {
      const body = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff));
      await store.put('range/obj', body);
      expect((await store.getRange('range/obj', 0, 10)).equals(body.subarray(0, 10))).toBe(true);
      expect((await store.getRange('range/obj', 123_457, 65_536)).equals(body.subarray(123_457, 188_993))).toBe(true);
      expect((await store.getRange('range/obj', 299_990, 100)).equals(body.subarray(299_990))).toBe(true);
      expect((await store.getRange('range/obj', 300_000, 10)).length).toBe(0);
      expect((await store.getRange('range/obj', 5, 0)).length).toBe(0);
      await expect(store.getRange('range/missing', 0, 10)).rejects.toMatchObject({ code: 'object_not_found' });
      await expect(store.getRange('range/missing', 0, 0)).rejects.toMatchObject({ code: 'object_not_found' });
      await expect(store.getRange('range/obj', -1, 10)).rejects.toBeInstanceOf(ObjectStoreFailed);
    });

    it('answers object_not_found for a missing object', async () => {
      await expect(store.get('nope/missing')).rejects.toMatchObject({ code: 'object_not_found' });
    });

    it('lists by prefix, sorted, with pagination', async () => {
      const names = Array.from({ length: 25 }, (_, i) => `list/a/f${String(i).padStart(2, '0')}`);
      for (const n of names) await store.put(n, Buffer.from(n));
      await store.put('list/b/other', Buffer.from('b'));
      await store.put('listing/x', Buffer.from('x'));
      const pages: string[][] = [];
      let token: string | undefined;
      do {
        const page = await store.list('list/a/', { pageSize: 10, pageToken: token });
        pages.push(page.objects.map((o) => o.name));
        token = page.nextPageToken;
      } while (token !== undefined);
      expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
      expect(pages.flat()).toEqual(names);
      expect((await listAll(store, 'list/')).map((o) => o.name)).toEqual([...names, 'list/b/other']);
      expect((await listAll(store, 'list')).length).toBe(27);
      expect(await listAll(store, 'absent/')).toEqual([]);
    });

    it('deletes, and deleting a missing object is not an error', async () => {
      await store.put('del/me', Buffer.from('x'));
      await store.delete('del/me');
      await store.delete('del/me');
      await expect(store.get('del/me')).rejects.toMatchObject({ code: 'object_not_found' });
      expect(await listAll(store, 'del/')).toEqual([]);
      await store.put('del/me', Buffer.from('again'));
      expect((await store.get('del/me')).toString()).toBe('again');
    });
  });
}
