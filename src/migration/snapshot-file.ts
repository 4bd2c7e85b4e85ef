/**
 * @module migration/snapshot-file
 * Snapshots as files: {@link saveSnapshotFile} writes the tracker's next snapshot (base or increment)
 * to a path, {@link restoreSnapshotFiles} restores a base file and its increments.
 */

import { open } from 'node:fs/promises';
import type { MemorySystem } from '../core/system.js';
import { fileSource } from './node-io.js';
import { restoreSnapshots, type SnapshotStats, type SnapshotTracker } from './snapshot.js';

/** Writes the next snapshot of `tracker` to `path` (replacing it). */
export async function saveSnapshotFile(tracker: SnapshotTracker, path: string): Promise<SnapshotStats> {
  const fh = await open(path, 'w');
  try {
    return await tracker.save(async (chunk) => {
      await fh.write(chunk);
    });
  } finally {
    await fh.close();
  }
}

/** Restores `paths[0]` (a base) and the increments after it into `ms`. */
export async function restoreSnapshotFiles(ms: MemorySystem, paths: string[]): Promise<void> {
  await restoreSnapshots(
    ms,
    paths.map((p) => ({ name: p, open: () => fileSource(p) })),
  );
}
