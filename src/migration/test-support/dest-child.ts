/**
 * @module migration/test-support/dest-child
 * The destination process of the migration tests: builds the machine described by argv[2] (JSON),
 * listens on 127.0.0.1, prints `{"port":N}`, then accepts connections and prints one JSON line per
 * attempt: `{"ok":true,...,"hashes":{...}}` or `{"ok":false,"failure":...,"started":false}`. Options:
 * `dropAfterBytes` closes the first connection abruptly after that many bytes; `attempts` is how many
 * connections to serve; `touchMissing` (postcopy) reads that many not-yet-received pages on start.
 */

import { createServer, type Socket } from 'node:net';
import { MigrationError } from '../errors.js';
import { migrateIncoming, type PostcopyPages } from '../incoming.js';
import { readableChunks, streamSink } from '../node-io.js';
import { blockHashes, buildMachine, type MachineSpec } from './machine.js';

interface ChildOptions extends MachineSpec {
  dropAfterBytes?: number;
  attempts?: number;
  touchMissing?: number;
}

const opts = JSON.parse(process.argv[2] ?? '{}') as ChildOptions;
const m = buildMachine(opts);
let attempt = 0;
const out = (v: object) => process.stdout.write(`${JSON.stringify(v)}\n`);

async function* limited(sock: Socket, limit: number): AsyncIterable<Uint8Array> {
  let n = 0;
  for await (const c of readableChunks(sock)) {
    n += c.length;
    if (n > limit) {
      sock.destroy();
      throw new MigrationError('connection', 'test: connection dropped on purpose');
    }
    yield c;
  }
}

const server = createServer(async (sock) => {
  attempt++;
  sock.setNoDelay(true);
  const drop = attempt === 1 && opts.dropAfterBytes !== undefined;
  let started = false;
  let touched = 0;
  try {
    const stats = await migrateIncoming(
      m.ms,
      {
        input: drop ? limited(sock, opts.dropAfterBytes!) : readableChunks(sock),
        output: streamSink(sock),
        close: () => new Promise<void>((r) => (sock.destroyed ? r() : sock.end(() => r()))),
        abort: () => sock.destroy(),
      },
      {
        start: async (pages: PostcopyPages | null) => {
          started = true;
          if (pages && opts.touchMissing) {
            // The guest runs now and reads pages it does not have yet.
            const missing = pages.missing('pc.ram', opts.touchMissing);
            for (const off of missing) await pages.ensure('pc.ram', off, 4096);
            touched = missing.length;
          }
        },
      },
    );
    out({ ok: true, started, touched, ...stats, hashes: blockHashes(m.ms) });
  } catch (e) {
    const err = e as MigrationError;
    out({
      ok: false,
      started,
      failure: err.failure,
      message: err.message,
      block: err.block,
      offset: err.offset,
    });
  }
  if (attempt >= (opts.attempts ?? 1)) server.close();
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  out({ port: typeof a === 'object' && a ? a.port : 0 });
});
