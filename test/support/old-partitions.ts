/**
 * Final partitions as Hourglass wrote them before events had a producer: the same files without
 * the `event_producer` column, and a manifest without `idConflicts` (nor what came later: the id
 * index and the dedup window fields). Rewrites a published
 * partition of a filesystem object store in place (its objects are files: write-once holds for
 * the store's API, not for the test).
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import type { Manifest } from '../../etl/dedup.js';
import type { FsObjectStore } from '../../infra/store/fs/fs-object-store.js';

export async function asWrittenBeforeProducers(objects: FsObjectStore, manifestName: string): Promise<void> {
  const manifest = JSON.parse((await objects.get(manifestName)).toString()) as Manifest;
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    for (const f of manifest.files) {
      const path = objects.localPath(f.name);
      const sql = (s: string) => `'${s.replaceAll("'", "''")}'`;
      await c.run(
        `COPY (SELECT * EXCLUDE (event_producer) FROM read_parquet(${sql(path)}, hive_partitioning = false))
         TO ${sql(`${path}.old`)} (FORMAT parquet)`,
      );
      await rename(`${path}.old`, path);
    }
  } finally {
    c.closeSync();
    db.closeSync();
  }
  const { idConflicts: _, ...old } = asWithoutIdIndex(manifest);
  await writeFile(objects.localPath(manifestName), `${JSON.stringify(old, null, 2)}\n`);
  if (manifest.idIndex !== undefined) await rm(objects.localPath(manifest.idIndex.name));
}

/** A manifest as written before id indexes and dedup windows. */
function asWithoutIdIndex(manifest: Manifest): Manifest {
  const { idIndex: _i, duplicatesOfWindow: _d, dedupWindow: _w, ...old } = manifest;
  return old;
}

/**
 * A published partition as Hourglass wrote it before id indexes: its manifest without `idIndex`
 * and the dedup window fields, and no index object. Later partitions read its ids from its files.
 */
export async function asWrittenBeforeIdIndexes(objects: FsObjectStore, manifestName: string): Promise<void> {
  const manifest = JSON.parse((await objects.get(manifestName)).toString()) as Manifest;
  await writeFile(objects.localPath(manifestName), `${JSON.stringify(asWithoutIdIndex(manifest), null, 2)}\n`);
  if (manifest.idIndex !== undefined) await rm(objects.localPath(manifest.idIndex.name));
}
