import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
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

  it('refuses names that escape the root', async () => {
    const store = new FsObjectStore(tmpdir());
    expect(() => store.localPath('../etc/passwd')).toThrow(/invalid object name/);
    expect(() => store.localPath('/abs')).toThrow(/invalid object name/);
  });
});
