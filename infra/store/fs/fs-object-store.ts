/**
 * The local-filesystem object store (embedded default). An object is a file under `root`.
 *
 * Write-once and atomic: the body goes to a staging file in `root/.staging/`, is fsynced, and is
 * then hard-linked to its name. `link` fails with EEXIST when the name exists, so of two writers
 * exactly one wins, and a reader never sees a partial object. Staging files left by a crashed
 * process (their name carries the pid) are removed when a store opens on the same root.
 *
 * Objects are private whatever the umask: files 0600, folders 0700.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, open, readdir, readFile, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ObjectExists, ObjectNotFound, ObjectStoreFailed } from '../../../core/errors.js';
import {
  checkRange,
  type ListOptions,
  type ObjectInfo,
  type ObjectPage,
  type ObjectStore,
} from '../../../core/ports/object-store.js';
import { fsyncDir } from '../../bus/embedded/fs-util.js';

const STAGING = '.staging';
const NAME = /^[A-Za-z0-9_=.-]+(\/[A-Za-z0-9_=.-]+)*$/;

export class FsObjectStore implements ObjectStore {
  readonly backend = 'fs';
  private ready: Promise<void> | null = null;

  constructor(readonly root: string) {}

  /** Creates the root and removes staging files of processes that no longer run. */
  private init(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(join(this.root, STAGING), { recursive: true, mode: 0o700 });
      for (const f of await readdir(join(this.root, STAGING))) {
        const pid = Number(f.split('-')[0]);
        if (!Number.isInteger(pid) || !alive(pid)) await rm(join(this.root, STAGING, f), { force: true });
      }
    })();
    return this.ready;
  }

  localPath(name: string): string {
    return join(this.root, checkName(name));
  }

  async put(name: string, body: Uint8Array): Promise<ObjectInfo> {
    return this.create(name, async (staging) => {
      const handle = await open(staging, 'wx', 0o600);
      try {
        await handle.writeFile(body);
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
  }

  /**
   * The file itself becomes the object where it is on the store's filesystem (a hard link: no
   * copy), so the caller must not change it afterwards; elsewhere it is copied.
   */
  async putFile(name: string, path: string): Promise<ObjectInfo> {
    return this.create(name, async (staging) => {
      try {
        await link(path, staging);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        await copyFile(path, staging);
      }
      const handle = await open(staging, 'r+');
      try {
        await handle.chmod(0o600); // a copy has the source's mode, a link is the source
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
  }

  private async create(name: string, write: (staging: string) => Promise<void>): Promise<ObjectInfo> {
    const target = this.localPath(name);
    await this.init();
    const staging = join(this.root, STAGING, `${process.pid}-${randomBytes(8).toString('hex')}`);
    try {
      await write(staging);
      await mkdir(dirname(target), { recursive: true, mode: 0o700 });
      try {
        await link(staging, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ObjectExists({ name });
        throw err;
      }
      await fsyncDir(dirname(target));
      const s = await stat(target);
      return { name, size: s.size, createdAt: s.mtimeMs };
    } catch (err) {
      if (err instanceof ObjectExists) throw err;
      throw new ObjectStoreFailed({ operation: 'put', name }, { cause: err });
    } finally {
      await unlink(staging).catch(() => undefined);
    }
  }

  async get(name: string): Promise<Buffer> {
    try {
      return await readFile(this.localPath(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFound({ name });
      throw new ObjectStoreFailed({ operation: 'get', name }, { cause: err });
    }
  }

  async getRange(name: string, offset: number, length: number): Promise<Buffer> {
    const bad = checkRange(offset, length);
    if (bad !== null) throw new ObjectStoreFailed({ operation: 'getRange', name }, { cause: new Error(bad) });
    let handle: import('node:fs/promises').FileHandle;
    try {
      handle = await open(this.localPath(name), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFound({ name });
      throw new ObjectStoreFailed({ operation: 'getRange', name }, { cause: err });
    }
    try {
      const buf = Buffer.alloc(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await handle.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got === length ? buf : buf.subarray(0, got);
    } catch (err) {
      throw new ObjectStoreFailed({ operation: 'getRange', name }, { cause: err });
    } finally {
      await handle.close();
    }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ObjectPage> {
    const pageSize = options.pageSize ?? 1000;
    const after = options.pageToken ?? '';
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    if (base !== '') checkName(base);
    const names: string[] = [];
    try {
      await walk(this.root, base, (n) => {
        if (n.startsWith(prefix) && n > after) names.push(n);
      });
    } catch (err) {
      throw new ObjectStoreFailed({ operation: 'list', name: prefix }, { cause: err });
    }
    names.sort();
    const page = names.slice(0, pageSize);
    const objects: ObjectInfo[] = [];
    for (const n of page) {
      const s = await stat(join(this.root, n)).catch(() => null);
      if (s !== null) objects.push({ name: n, size: s.size, createdAt: s.mtimeMs });
    }
    return names.length > pageSize ? { objects, nextPageToken: page[page.length - 1] as string } : { objects };
  }

  async delete(name: string): Promise<void> {
    try {
      await unlink(this.localPath(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new ObjectStoreFailed({ operation: 'delete', name }, { cause: err });
    }
  }
}

function checkName(name: string): string {
  if (!NAME.test(name) || name.split('/').some((p) => p === '.' || p === '..') || name.startsWith(STAGING)) {
    throw new ObjectStoreFailed({ operation: 'name', name }, { cause: new Error('invalid object name') });
  }
  return name;
}

async function walk(root: string, rel: string, visit: (name: string) => void): Promise<void> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(join(root, rel), { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
    throw err;
  }
  for (const e of entries) {
    const name = rel === '' ? e.name : `${rel}/${e.name}`;
    if (rel === '' && e.name === STAGING) continue;
    if (e.isDirectory()) await walk(root, name, visit);
    else if (e.isFile()) visit(name);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
