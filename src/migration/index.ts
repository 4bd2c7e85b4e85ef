/**
 * @module migration
 * RAM migration and snapshots on top of the core: QEMU's RAM stream format, precopy and postcopy
 * live migration over any duplex connection, RAM snapshots with increments. The Node adapters
 * (`socketConnection`, files) sit in node-io.ts and snapshot-file.ts.
 */

export { MigrationError, type MigrationFailure } from './errors.js';
export {
  type Connection,
  type IncomingOptions,
  type IncomingStats,
  migrateIncoming,
  PostcopyPages,
} from './incoming.js';
export { fileSource, readableChunks, socketConnection, streamSink } from './node-io.js';
export { migratePostcopy } from './postcopy.js';
export { type GuestControl, type MigrationStats, migrateOutgoing, type OutgoingOptions } from './precopy.js';
export {
  decodeStream,
  isZeroPage,
  QemuStreamWriter,
  RamPageEncoder,
  type StreamSummary,
} from './qemu-stream.js';
export { inspectStream, loadRamStream, saveRamStream } from './ram-load.js';
export { restoreSnapshots, type SnapshotStats, SnapshotTracker } from './snapshot.js';
export { restoreSnapshotFiles, saveSnapshotFile } from './snapshot-file.js';
