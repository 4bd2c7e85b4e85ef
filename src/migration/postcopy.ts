/**
 * @module migration/postcopy
 * Postcopy live migration: the source sends every page once while the guest runs, then stops the
 * guest, tells the destination which pages were dirtied after they were sent (discard), and lets the
 * destination run at once (RUN). The rest of RAM follows in the background; a page the destination
 * needs earlier is requested on the return path and sent ahead of the background stream. The source
 * side lives in precopy.ts (`postcopy: true`), the destination side in incoming.ts
 * ({@link PostcopyPages}); this module is the entry point that names the mode.
 */

import type { MemorySystem } from '../core/system.js';
import type { Connection } from './incoming.js';
import { type MigrationStats, migrateOutgoing, type OutgoingOptions } from './precopy.js';

export { type IncomingStats, migrateIncoming, PostcopyPages } from './incoming.js';

/**
 * Migrates `ms` in postcopy mode. Unlike precopy, a failure once LISTEN was sent does not resume the
 * source: the guest's newest memory may be split between the two ends. With `reconnect` the source
 * recovers over a new connection (QEMU's postcopy recovery); without it the migration fails as
 * `paused` and the source stays stopped.
 */
export function migratePostcopy(
  ms: MemorySystem,
  conn: Connection,
  options: Omit<OutgoingOptions, 'postcopy'> = {},
): Promise<MigrationStats> {
  return migrateOutgoing(ms, conn, { ...options, postcopy: true });
}
