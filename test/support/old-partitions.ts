/**
 * Final partitions as Hourglass wrote them before events had a producer: the same files without
 * the `event_producer` column, and a manifest without `idConflicts`. Rewrites a published
 * partition of a filesystem object store in place (its objects are files: write-once holds for
 * the store's API, not for the test).
 */
import { rename, writeFile } from 'node:fs/promises';
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
  const { idConflicts: _, ...old } = manifest;
  await writeFile(objects.localPath(manifestName), `${JSON.stringify(old, null, 2)}\n`);
}
