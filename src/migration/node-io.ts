/**
 * @module migration/node-io
 * Node adapters for the migration streams: files as chunk sources, sockets as sinks with
 * back-pressure, and a byte source over a socket that reports a dropped connection as a typed error.
 */

import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { MemtreeError } from '../core/errors.js';
import type { ByteSink } from './bytes.js';
import { escapeText, MigrationError } from './errors.js';

/**
 * Chunks of a file; a missing or unreadable file is an `ERR_IO` error naming it, whether the fault
 * shows when the file is opened or while it is read (e.g. EIO from `/proc/self/mem`). The file is
 * opened on the first read and closed when the reading ends, fails, or stops early (`return()` on
 * the iterator, as `ByteReader.close` does): no descriptor is left behind.
 */
export async function fileSource(path: string): Promise<AsyncIterable<Uint8Array>> {
  try {
    const s = await stat(path);
    if (s.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
  } catch (e) {
    throw ioError(path, e);
  }
  return {
    async *[Symbol.asyncIterator]() {
      const stream = createReadStream(path, { highWaterMark: 1 << 20 });
      try {
        for await (const c of stream) yield c as Uint8Array;
      } catch (e) {
        throw ioError(path, e);
      } finally {
        if (!stream.closed) {
          const closed = once(stream, 'close').catch(() => {});
          stream.destroy();
          await closed;
        }
      }
    },
  };
}

function ioError(path: string, e: unknown): MemtreeError {
  if (e instanceof MemtreeError) return e;
  const err = e as NodeJS.ErrnoException;
  const why = err.code === 'ENOENT' ? 'no such file' : (err.message ?? String(e));
  return new MemtreeError('ERR_IO', `cannot read ${escapeText(path)}: ${escapeText(why)}`);
}

/** A sink writing to a stream, waiting for `drain` when the stream's buffer is full. */
export function streamSink(out: Writable): ByteSink {
  return (chunk, release) => {
    if (out.destroyed || out.writableEnded) {
      throw new MigrationError('connection', 'the connection is closed');
    }
    // The write callback runs once the stream no longer needs the chunk's memory (it was handed
    // to the OS, or the write failed): only then may the writer reuse it.
    if (out.write(chunk, release && (() => release()))) return;
    return waitDrain(out);
  };
}

async function waitDrain(out: Writable): Promise<void> {
  const ac = new AbortController();
  try {
    await Promise.race([
      once(out, 'drain', { signal: ac.signal }),
      once(out, 'close', { signal: ac.signal }).then(() => {
        throw new MigrationError('connection', 'the connection closed while sending');
      }),
    ]);
  } catch (e) {
    if (e instanceof MigrationError) throw e;
    throw new MigrationError('connection', `the connection failed while sending: ${(e as Error).message}`);
  } finally {
    ac.abort();
  }
}

/** The chunks a readable delivers; an error or an early close becomes a `connection` error. */
export async function* readableChunks(input: Readable | Socket): AsyncIterable<Uint8Array> {
  try {
    for await (const c of input) yield c as Uint8Array;
  } catch (e) {
    throw new MigrationError('connection', `the connection failed: ${(e as Error).message}`);
  }
}

/** A {@link Connection} over a TCP (or any duplex) socket. */
export function socketConnection(socket: Socket): import('./incoming.js').Connection {
  socket.setNoDelay(true);
  return {
    input: readableChunks(socket),
    output: streamSink(socket),
    close: () =>
      new Promise<void>((resolve) => {
        if (socket.destroyed) return resolve();
        socket.end(() => resolve());
        socket.once('close', () => resolve());
      }),
    abort: () => {
      socket.destroy();
    },
  };
}
