/**
 * Fuzzing the stream reader (issue #11): random mutations of real streams, from a fixed seed and
 * within a bounded number of cases. Every input must either read or fail with a MigrationError:
 * no other exception, no hang; through the CLI, exit 0 or 1 and one line of error.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MemorySystem } from '../src/core/system.js';
import { ByteWriter } from '../src/migration/bytes.js';
import { MigrationError } from '../src/migration/errors.js';
import {
  MEMTREE_CAP_INTEGRITY,
  QEMU_VM_SECTION_END,
  QEMU_VM_SECTION_PART,
  QEMU_VM_SECTION_START,
  QemuStreamWriter,
  RAM_SECTION_VERSION,
  RamPageEncoder,
} from '../src/migration/qemu-stream.js';
import { inspectStream, loadRamStream, saveRamStream } from '../src/migration/ram-load.js';
import { mulberry32 } from './support/mulberry32.js';
import { runCli } from './support/run-cli.js';

/** A small machine whose RAM holds data, zero pages and a ROM. */
function machine(fill: boolean) {
  const ms = new MemorySystem();
  const ram = ms.ram('pc.ram', 256 * 1024);
  const bios = ms.rom('pc.bios', 64 * 1024);
  ms.ram('vga.vram', 64 * 1024, { owner: { devicePath: '0000:00:02.0' } });
  if (fill) {
    const page = new Uint8Array(4096);
    for (let off = 0; off < 64 * 1024; off += 4096) {
      page.fill((off >>> 12) + 1);
      ms.writeRam(ram, off, page);
    }
    ms.writeRam(bios, 0, new Uint8Array(64 * 1024).fill(0x90));
  }
  return ms;
}

async function plainStream(): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  await saveRamStream(machine(true), (c) => {
    parts.push(c.slice());
  });
  return new Uint8Array(Buffer.concat(parts));
}

/** The same RAM with a device section, EOF and QEMU's JSON description after it. */
function withDevices(ram: Uint8Array): Uint8Array {
  const be32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    return b;
  };
  const json = Buffer.from('{"page_size":4096,"devices":[{"name":"timer","instance_id":0}]}');
  return new Uint8Array(
    Buffer.concat([
      ram.subarray(0, ram.length - 1),
      Buffer.from([0x04]),
      be32(3),
      Buffer.from([5]),
      Buffer.from('timer'),
      be32(0),
      be32(2),
      Buffer.alloc(16, 7),
      Buffer.from([0x7e]),
      be32(3),
      Buffer.from([0x00, 0x06]),
      be32(json.length),
      json,
    ]),
  );
}

/** A memtree stream with the integrity check: capabilities, checksummed sections. */
async function integrityStream(): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const ms = machine(true);
  const w = new ByteWriter((c) => {
    parts.push(c.slice());
  });
  const s = new QemuStreamWriter(w);
  const enc = new RamPageEncoder(w);
  s.header('memtree');
  s.capabilities(MEMTREE_CAP_INTEGRITY);
  s.sectionStart(QEMU_VM_SECTION_START, 2, 'ram', 0, RAM_SECTION_VERSION);
  enc.setup(ms.ramList.blocks.map((b) => ({ id: b.idstr, length: b.usedLength })));
  s.footer(2);
  s.checksum();
  s.sectionPart(QEMU_VM_SECTION_PART, 2);
  for (const b of ms.ramList.blocks) for (let off = 0; off < b.usedLength; off += 4096) enc.page(b, off);
  enc.eos();
  s.footer(2);
  s.checksum();
  s.sectionPart(QEMU_VM_SECTION_END, 2);
  enc.eos();
  s.footer(2);
  s.checksum();
  s.eof();
  await w.flush();
  return new Uint8Array(Buffer.concat(parts));
}

/** mulberry32: a small seeded generator, so every run mutates the same way. */
function rng(seed: number) {
  const next = mulberry32(seed);
  return { next, int: (n: number) => Math.floor(next() * n) };
}

/** One random mutation: flips, overwrites with edge values, cuts, inserts, deletes, duplicates. */
function mutate(src: Uint8Array, r: ReturnType<typeof rng>): Uint8Array {
  const b = Buffer.from(src);
  // Most interesting bytes sit in the first few hundred (header, block list) or near records.
  const pos = () => (r.next() < 0.5 ? r.int(Math.min(b.length, 400)) : r.int(b.length));
  switch (r.int(7)) {
    case 0: {
      const n = 1 + r.int(8);
      for (let i = 0; i < n; i++) {
        const p = pos();
        b[p] = b[p]! ^ (1 << r.int(8));
      }
      return new Uint8Array(b);
    }
    case 1: {
      const p = pos();
      const v = [0x00, 0xff, 0x7f, 0x80, 0x01, 0x10, 0x20, 0x08][r.int(8)]!;
      for (let i = 0; i < 1 + r.int(8) && p + i < b.length; i++) b[p + i] = v;
      return new Uint8Array(b);
    }
    case 2:
      return new Uint8Array(b.subarray(0, pos()));
    case 3: {
      const p = pos();
      const ins = Buffer.alloc(1 + r.int(16));
      for (let i = 0; i < ins.length; i++) ins[i] = r.int(256);
      return new Uint8Array(Buffer.concat([b.subarray(0, p), ins, b.subarray(p)]));
    }
    case 4: {
      const p = pos();
      return new Uint8Array(Buffer.concat([b.subarray(0, p), b.subarray(p + 1 + r.int(64))]));
    }
    case 5: {
      const p = pos();
      const n = 1 + r.int(64);
      return new Uint8Array(Buffer.concat([b.subarray(0, p + n), b.subarray(p, p + n), b.subarray(p + n)]));
    }
    default: {
      // A big-endian u32 or u64 field replaced by an extreme value.
      const p = pos();
      const v = [0xffffffff, 0x80000000, 0x7fffffff, 0x00001000][r.int(4)]!;
      if (p + 4 <= b.length) b.writeUInt32BE(v, p);
      return new Uint8Array(b);
    }
  }
}

/** Reads `bytes` every way the library offers; only a MigrationError may come out. */
async function readAllWays(bytes: Uint8Array, label: string): Promise<void> {
  const attempts: Array<() => Promise<unknown>> = [
    () => inspectStream(bytes, { readTail: true }),
    () => inspectStream(bytes, { extract: 'pc.ram' }),
    () => loadRamStream(machine(false), bytes, { readTail: true }),
    // A chunked source: record boundaries fall between chunks.
    () =>
      loadRamStream(
        machine(false),
        (async function* () {
          for (let i = 0; i < bytes.length; i += 1000) yield bytes.subarray(i, i + 1000);
        })(),
      ),
  ];
  for (const run of attempts) {
    try {
      await run();
    } catch (e) {
      if (!(e instanceof MigrationError)) {
        assert.fail(`${label}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
      }
      assert.ok(![...e.message].some((c) => c < ' '), `${label}: one line, no control characters`);
    }
  }
}

describe('fuzzing the stream reader', () => {
  it('mutated streams read or fail with a MigrationError (fixed seed, 300 cases)', async () => {
    const plain = await plainStream();
    const bases = [plain, withDevices(plain), await integrityStream()];
    for (const [i, b] of bases.entries()) await readAllWays(b, `base ${i}`);
    const r = rng(0x5eed11);
    let failures = 0;
    for (let n = 0; n < 300; n++) {
      const base = bases[n % bases.length]!;
      let m = mutate(base, r);
      if (r.next() < 0.3) m = mutate(m, r);
      try {
        await readAllWays(m, `case ${n}`);
      } catch (e) {
        failures++;
        if (failures === 1) throw e;
      }
    }
  });

  it('a block list declaring absurd sizes is a MigrationError, not a RangeError (was: crash)', async () => {
    for (const length of [2 ** 40, 2 ** 52, 2 ** 53 + 3 * 4096]) {
      const parts: Uint8Array[] = [];
      const w = new ByteWriter((c) => {
        parts.push(c.slice());
      });
      const s = new QemuStreamWriter(w);
      s.header('x');
      s.sectionStart(QEMU_VM_SECTION_START, 2, 'ram', 0, RAM_SECTION_VERSION);
      new RamPageEncoder(w).setup([{ id: 'big', length }]);
      s.footer(2);
      s.eof();
      await w.flush();
      const bytes = new Uint8Array(Buffer.concat(parts));
      await assert.rejects(inspectStream(bytes, { extract: 'big' }), MigrationError, `length ${length}`);
      await assert.rejects(loadRamStream(machine(false), bytes), MigrationError, `length ${length}`);
    }
  });

  it('garbled integrity-checked streams never load silently', async () => {
    const good = await integrityStream();
    const r = rng(0xc0ffee);
    for (let n = 0; n < 150; n++) {
      // One flipped bit anywhere after the capabilities command.
      const b = good.slice();
      const p = 40 + r.int(b.length - 40);
      b[p]! ^= 1 << r.int(8);
      await assert.rejects(loadRamStream(machine(false), b), MigrationError, `bit flip at ${p}`);
    }
  });

  it('through the CLI: exit 0 or 1, one line of error, never a stack trace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'memtree-fuzz-'));
    try {
      const base = withDevices(await plainStream());
      const r = rng(42);
      for (let n = 0; n < 60; n++) {
        const f = join(dir, 'x.mig');
        writeFileSync(f, mutate(base, r));
        for (const args of [
          ['migrate-info', f],
          ['migrate-extract', f, 'pc.bios', join(dir, 'out.bin')],
        ]) {
          const res = await runCli(args);
          assert.ok(res.code === 0 || res.code === 1, `case ${n} ${args[0]}: exit ${res.code}: ${res.err}`);
          if (res.code === 1) assert.equal(res.err.split('\n').length, 2, `case ${n}: ${res.err}`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
