/** Walks a folder and lists what other users could read or enter (for the private-files tests). */
import { lstatSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface WalkResult {
  /** Paths relative to the root (`.` for the root), each with its kind and octal mode. */
  readonly seen: string[];
  /** Folders looser than 0700 and anything else looser than 0600, as `path 0755 (dir)`. */
  readonly offenders: string[];
}

export function walkModes(root: string): WalkResult {
  const seen: string[] = [];
  const offenders: string[] = [];
  const visit = (path: string): void => {
    const s = lstatSync(path, { throwIfNoEntry: false });
    if (s === undefined) return; // removed while walking (a running process's temp file)
    const mode = s.mode & 0o777;
    const kind = s.isDirectory() ? 'dir' : s.isFile() ? 'file' : s.isSymbolicLink() ? 'symlink' : 'other';
    const line = `${relative(root, path) || '.'} 0${mode.toString(8)} (${kind})`;
    seen.push(line);
    // a folder: owner only (0700 or stricter); a file: owner read/write only (0600 or stricter)
    const allowed = kind === 'dir' ? 0o700 : 0o600;
    if (kind !== 'symlink' && (mode & ~allowed) !== 0) offenders.push(line);
    if (kind !== 'dir') return;
    let names: string[];
    try {
      names = readdirSync(path).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names) visit(join(path, name));
  };
  visit(root);
  return { seen, offenders };
}
