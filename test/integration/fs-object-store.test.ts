import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsObjectStore } from '../../infra/store/fs/fs-object-store.js';
import { objectStoreContract } from '../contracts/object-store.contract.js';

objectStoreContract('filesystem', async () => {
  const root = await mkdtemp(join(tmpdir(), 'hourglass-store-'));
  return { store: new FsObjectStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
});

describe('filesystem object store', () => {
  it('removes staging files of crashed processes on open, and never lists them', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hourglass-store-'));
    try {
      await mkdir(join(root, '.staging'), { recursive: true });
      await writeFile(join(root, '.staging', '999999999-deadbeef'), 'partial');
      const store = new FsObjectStore(root);
      await store.put('a/b', Buffer.from('x'));
      expect(await readdir(join(root, '.staging'))).toEqual([]);
      expect((await store.list('')).objects.map((o) => o.name)).toEqual(['a/b']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('keeps a file on its filesystem as the object (no copy), and copies one from another filesystem', async () => {
    const root = await mkdtemp(join(tmpdir(), 'hourglass-store-'));
    // /dev/shm is a tmpfs of its own where it exists (Linux): a link from there fails with EXDEV
    const elsewhere = await mkdtemp(join('/dev/shm', 'hourglass-put-'));
    try {
      const store = new FsObjectStore(root);
      const local = join(root, 'work.bin');
      await writeFile(local, 'same filesystem', { mode: 0o644 });
      await store.putFile('a/local', local);
      expect((await stat(store.localPath('a/local'))).ino).toBe((await stat(local)).ino);
      expect((await stat(local)).mode & 0o777).toBe(0o600);
      const other = join(elsewhere, 'work.bin');
      await writeFile(other, 'other filesystem');
      await store.putFile('a/other', other);
      expect((await stat(store.localPath('a/other'))).ino).not.toBe((await stat(other)).ino);
      await rm(other);
      expect((await store.get('a/other')).toString()).toBe('other filesystem');
      expect(await readdir(join(root, '.staging'))).toEqual([]);
    } finally {
      await rm(root, { recursive: true, force: true });
      await rm(elsewhere, { recursive: true, force: true });
    }
  });

  it('refuses names that escape the root', async () => {
    const store = new FsObjectStore(tmpdir());
    expect(() => store.localPath('../etc/passwd')).toThrow(/invalid object name/);
    expect(() => store.localPath('/abs')).toThrow(/invalid object name/);
  });
});
