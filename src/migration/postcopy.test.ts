/**
 * Postcopy page requests as the source reads them (QEMU `ram_save_queue_pages`): a request without
 * a block name means the block of the previous named request (`last_req_rb`), whatever the queue
 * holds at that moment.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemorySystem } from '../core/system.js';
import type { Connection } from './incoming.js';
import { migratePostcopy } from './postcopy.js';

const MIG_RP_MSG_SHUT = 1;
const MIG_RP_MSG_PONG = 2;
const MIG_RP_MSG_REQ_PAGES_ID = 3;
const MIG_RP_MSG_REQ_PAGES = 4;

/** One return-path message: u16 type, u16 length, payload (big-endian). */
function rpMessage(type: number, payload: Uint8Array): Uint8Array {
  const m = new Uint8Array(4 + payload.length);
  const dv = new DataView(m.buffer);
  dv.setUint16(0, type);
  dv.setUint16(2, payload.length);
  m.set(payload, 4);
  return m;
}

/** REQ_PAGES(_ID) payload: u64 start, u32 length, then (with a name) u8 length and the name. */
function reqPages(start: number, length: number, block: string | null): Uint8Array {
  const name = new TextEncoder().encode(block ?? '');
  const p = new Uint8Array(12 + (block === null ? 0 : 1 + name.length));
  const dv = new DataView(p.buffer);
  dv.setBigUint64(0, BigInt(start));
  dv.setUint32(8, length);
  if (block !== null) {
    p[12] = name.length;
    p.set(name, 13);
  }
  return rpMessage(block === null ? MIG_RP_MSG_REQ_PAGES : MIG_RP_MSG_REQ_PAGES_ID, p);
}

function u32Message(type: number, v: number): Uint8Array {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, v);
  return rpMessage(type, p);
}

function endsWith(data: number[], tail: number[]): boolean {
  if (data.length < tail.length) return false;
  return tail.every((b, i) => data[data.length - tail.length + i] === b);
}

function includes(data: number[], seq: number[]): boolean {
  outer: for (let i = 0; i + seq.length <= data.length; i++) {
    for (let j = 0; j < seq.length; j++) if (data[i + j] !== seq[j]) continue outer;
    return true;
  }
  return false;
}

/**
 * A scripted destination: asks for page 0 of pc.ram by name at once, answers the ping after RUN,
 * and once the whole stream has arrived (the request queue long served and empty) asks for page 1
 * without a name, then reports success.
 */
function scriptedDestination(): Connection {
  const queue: Uint8Array[] = [];
  let wake: (() => void) | null = null;
  let ended = false;
  const push = (m: Uint8Array | null) => {
    if (m === null) ended = true;
    else queue.push(m);
    wake?.();
  };
  const seen: number[] = [];
  let ponged = false;
  let done = false;
  push(reqPages(0, 4096, 'pc.ram'));
  const input = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (queue.length) yield queue.shift()!;
        else if (ended) return;
        else await new Promise<void>((r) => (wake = r));
      }
    },
  };
  const ping = [0x08, 0, 2, 0, 4, 0, 0, 0, 1]; // QEMU_VM_COMMAND, MIG_CMD_PING, length 4, value 1
  const end = [0x7e, 0, 0, 0, 2, 0x00]; // footer of the RAM section, then QEMU_VM_EOF
  return {
    input,
    output: (chunk: Uint8Array) => {
      for (const b of chunk) seen.push(b);
      if (!ponged && includes(seen, ping)) {
        ponged = true;
        push(u32Message(MIG_RP_MSG_PONG, 1));
      }
      if (ponged && !done && endsWith(seen, end)) {
        done = true;
        push(reqPages(4096, 4096, null));
        push(u32Message(MIG_RP_MSG_SHUT, 0));
        push(null);
      }
    },
    close: () => push(null),
  };
}

describe('postcopy page requests (issue #10 bug 5)', () => {
  it('a request without a block name uses the block of the previous request, even with the queue empty', async () => {
    const ms = new MemorySystem();
    const root = ms.container('system', 2n ** 32n);
    root.addSubregion(0, ms.ram('pc.ram', 16 * 4096));
    ms.addressSpace(root, 'memory');
    const stats = await migratePostcopy(ms, scriptedDestination(), { iterationMs: 1000 });
    assert.equal(stats.postcopy, true);
  });
});
