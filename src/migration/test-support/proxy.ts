/**
 * @module migration/test-support/proxy
 * A loopback TCP proxy for fault injection: it forwards a connection to a target port and can, in
 * either direction, cut the connection after N bytes, stop forwarding after N bytes (a stalled
 * path: the bytes are held, the connection stays open), or flip the bits of the byte at offset N.
 */

import { connect, createServer, type Server, type Socket } from 'node:net';

/** Faults of one direction; offsets count the bytes of that direction from the connection's start. */
export interface DirectionFaults {
  /** Destroys both sockets once this many bytes went through. */
  cutAfter?: number;
  /** Forwards this many bytes, then holds everything else (the connection stays open). */
  stallAfter?: number;
  /** Cuts right before the first occurrence of these bytes (like `cutAfter` at that offset). */
  cutBefore?: Uint8Array;
  /** With `cutBefore`: cut this many bytes after the start of the occurrence instead. */
  cutBeforeShift?: number;
  /** XORs the byte at this offset with `corruptMask` (default 0xff). */
  corruptAt?: number;
  corruptMask?: number;
}

/** Faults of one proxied connection: `forward` is client to target, `backward` target to client. */
export interface ProxyFaults {
  forward?: DirectionFaults;
  backward?: DirectionFaults;
}

/** A running proxy. */
export interface Proxy {
  readonly port: number;
  /** Bytes forwarded per direction over the last connection. */
  readonly counts: { forward: number; backward: number };
  /** Whether the last connection was cut by a `cutAfter` fault. */
  readonly cut: boolean;
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1 (a free port) and forwards each connection to `targetPort`; the n-th
 * connection (0-based) gets `faults(n)`.
 */
export function startProxy(
  targetPort: number,
  faults: (n: number) => ProxyFaults = () => ({}),
): Promise<Proxy> {
  const sockets = new Set<Socket>();
  const state = { counts: { forward: 0, backward: 0 }, cut: false };
  let n = 0;
  const server: Server = createServer((client) => {
    const f = faults(n++);
    state.counts = { forward: 0, backward: 0 };
    state.cut = false;
    const target = connect(targetPort, '127.0.0.1');
    for (const s of [client, target]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        target.destroy();
      });
    }
    let cut = false;
    const pipe = (from: Socket, to: Socket, dir: 'forward' | 'backward', faults: DirectionFaults = {}) => {
      const df = { ...faults };
      let tail = Buffer.alloc(0);
      from.on('data', (chunk: Buffer) => {
        if (cut) return;
        const at = state.counts[dir];
        if (df.cutBefore && df.cutAfter === undefined) {
          const hay = Buffer.concat([tail, chunk]);
          const i = hay.indexOf(df.cutBefore);
          if (i >= 0) df.cutAfter = at - tail.length + i + (df.cutBeforeShift ?? 0);
          else tail = hay.subarray(Math.max(0, hay.length - df.cutBefore.length + 1));
        }
        let c = chunk;
        if (df.corruptAt !== undefined && df.corruptAt >= at && df.corruptAt < at + c.length) {
          c = Buffer.from(c);
          c[df.corruptAt - at]! ^= df.corruptMask ?? 0xff;
        }
        const limit = Math.min(
          df.cutAfter ?? Number.POSITIVE_INFINITY,
          df.stallAfter ?? Number.POSITIVE_INFINITY,
        );
        const pass = Math.max(0, Math.min(c.length, limit - at));
        state.counts[dir] = at + pass;
        if (pass > 0 && !to.destroyed) to.write(pass === c.length ? c : c.subarray(0, pass));
        if (pass < c.length && df.cutAfter !== undefined && at + pass >= df.cutAfter) {
          state.cut = true;
          cut = true;
          // Let what went through reach the other end, then drop both sides.
          from.pause();
          to.end(() => {
            client.destroy();
            target.destroy();
          });
        }
      });
      from.on('end', () => {
        if (!to.destroyed) to.end();
      });
    };
    pipe(client, target, 'forward', f.forward);
    pipe(target, client, 'backward', f.backward);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve({
        port: typeof a === 'object' && a ? a.port : 0,
        get counts() {
          return state.counts;
        },
        get cut() {
          return state.cut;
        },
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
