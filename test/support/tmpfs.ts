/**
 * A small tmpfs of our own, to make real disk failures: remounted read-only (EROFS) or filled up
 * (ENOSPC). Needs root with mount rights (the CI machine has them); without them the suite fails.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Tmpfs {
  readonly path: string;
  unmount(): void;
}

export function mountTmpfs(sizeBytes: number): Tmpfs {
  const path = mkdtempSync(join(tmpdir(), 'hourglass-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'hourglass-test', path], { stdio: 'pipe' });
  } catch (err) {
    rmSync(path, { recursive: true, force: true });
    throw new Error(
      `cannot mount a tmpfs for disk-failure tests (needs root with mount rights): ${(err as Error).message}`,
    );
  }
  return {
    path,
    unmount() {
      try {
        execFileSync('umount', ['-l', path], { stdio: 'pipe' });
      } finally {
        rmSync(path, { recursive: true, force: true });
      }
    },
  };
}
