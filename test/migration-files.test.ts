/**
 * Nothing lost on bad input (issue #11): `migrate-extract` never damages OUT or its input, a stream
 * that does not end with QEMU's EOF record is truncated (library and CLI), reading a stream leaves no
 * file descriptor open, and text from a stream cannot split an error line or reach the terminal.
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  linkSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MemorySystem } from '../src/core/system.js';
import { MigrationError } from '../src/migration/errors.js';
import { fileSource } from '../src/migration/node-io.js';
import { inspectStream, loadRamStream, saveRamStream } from '../src/migration/ram-load.js';
import { buildMachine } from '../src/migration/test-support/machine.js';
import { runCli } from './support/run-cli.js';

async function streamOf(ms: MemorySystem): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  await saveRamStream(ms, (c) => {
    parts.push(c.slice());
  });
  return new Uint8Array(Buffer.concat(parts));
}

const be32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};

/** A FULL device section as QEMU frames it: header, opaque payload, footer. */
function deviceSection(id: number, name: string, payload: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from([0x04]),
    be32(id),
    Buffer.from([name.length]),
    Buffer.from(name),
    be32(0), // instance
    be32(1), // version
    payload,
    Buffer.from([0x7e]),
    be32(id),
  ]);
}

/**
 * A memtree RAM stream followed by device state the way QEMU 7.2 ends a precopy stream: two FULL
 * device sections, the EOF byte, then the JSON description (0x06, u32 length, JSON).
 */
function withDevices(ram: Uint8Array, describe = true): { bytes: Uint8Array; ramEnd: number } {
  assert.equal(ram[ram.length - 1], 0x00, 'a memtree stream ends with the EOF byte');
  const body = Buffer.from(ram.subarray(0, ram.length - 1));
  const json = Buffer.from(
    JSON.stringify({
      page_size: 4096,
      devices: [
        { name: 'timer', instance_id: 0, vmsd_name: 'timer', version: 2 },
        { name: 'globalstate', instance_id: 0, vmsd_name: 'globalstate', version: 1 },
      ],
    }),
  );
  const bytes = Buffer.concat([
    body,
    deviceSection(3, 'timer', Buffer.alloc(24, 0x11)),
    deviceSection(4, 'globalstate', Buffer.from([0, 0, 0, 8, ...Buffer.from('running\0')])),
    Buffer.from([0x00]),
    ...(describe ? [Buffer.from([0x06]), be32(json.length), json] : []),
  ]);
  return { bytes: new Uint8Array(bytes), ramEnd: body.length };
}

/** Open file descriptors of this process. */
const fds = () => readdirSync('/proc/self/fd').length;
const haveProcFd = existsSync('/proc/self/fd');

describe('migrate-extract never loses data', () => {
  let dir = '';
  let good = '';
  let bios = new Uint8Array(0);
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'memtree-extract-'));
    const m = buildMachine({}, true);
    bios = new Uint8Array(256 * 1024);
    m.ms.readRam(m.bios, 0, bios);
    good = join(dir, 'good.mig');
    writeFileSync(good, await streamOf(m.ms));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const listing = () => readdirSync(dir).sort();

  it('leaves an existing OUT untouched when the stream is bad (was: emptied)', async () => {
    const bad = join(dir, 'bad.mig');
    writeFileSync(bad, 'this is not a migration stream\n');
    const precious = join(dir, 'precious.txt');
    writeFileSync(precious, 'keep me\n');
    const before = listing();
    const r = await runCli(['migrate-extract', bad, 'pc.bios', precious]);
    assert.equal(r.code, 1);
    assert.match(r.err, /^memtree migrate-extract: not a migration stream/);
    assert.equal(r.err.split('\n').length, 2, 'one line');
    assert.equal(readFileSync(precious, 'utf8'), 'keep me\n');
    assert.deepEqual(listing(), before, 'no temporary file left behind');
  });

  it('refuses OUT that is the input itself, by any name (was: erased its input)', async () => {
    const copy = join(dir, 'self.mig');
    writeFileSync(copy, readFileSync(good));
    const link = join(dir, 'self-link.mig');
    const sym = join(dir, 'self-sym.mig');
    linkSync(copy, link);
    symlinkSync(copy, sym);
    const before = listing();
    for (const out of [copy, link, sym, join(dir, '.', 'self.mig')]) {
      const r = await runCli(['migrate-extract', copy, 'pc.bios', out]);
      assert.equal(r.code, 1, out);
      assert.match(r.err, /is the input stream .*refusing to overwrite it\n$/);
    }
    assert.deepEqual(readFileSync(copy), readFileSync(good));
    assert.deepEqual(listing(), before);
  });

  it('writes nothing for a stream cut in the middle of a block (was: 256 KiB of wrong bytes)', async () => {
    const cut = join(dir, 'cut.mig');
    writeFileSync(cut, readFileSync(good).subarray(0, 200_000));
    const out = join(dir, 'cut-out.bin');
    const r = await runCli(['migrate-extract', cut, 'pc.bios', out]);
    assert.equal(r.code, 1);
    assert.match(r.err, /truncated/);
    assert.equal(existsSync(out), false);
    // An existing OUT keeps its bytes, and a block that lies before the cut changes nothing either.
    writeFileSync(out, 'old');
    const r2 = await runCli(['migrate-extract', cut, 'pc.ram', out]);
    assert.equal(r2.code, 1);
    assert.equal(readFileSync(out, 'utf8'), 'old');
    rmSync(out);
    rmSync(cut);
  });

  it('replaces OUT only on success, keeping its permissions', async () => {
    const out = join(dir, 'bios.bin');
    writeFileSync(out, 'previous', { mode: 0o640 });
    const before = listing();
    const r = await runCli(['migrate-extract', good, 'pc.bios', out]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(new Uint8Array(readFileSync(out)), bios);
    assert.equal(statSync(out).mode & 0o777, 0o640);
    assert.deepEqual(listing(), before);
    const missing = await runCli(['migrate-extract', good, 'nope', out]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /block "nope" is not in/);
    assert.deepEqual(new Uint8Array(readFileSync(out)), bios, 'a failed extract left OUT alone');
    assert.deepEqual(listing(), before);
    rmSync(out);
  });

  it('cannot write into a directory OUT or a missing directory: exit 1, nothing created', async () => {
    const r = await runCli(['migrate-extract', good, 'pc.bios', dir]);
    assert.equal(r.code, 1);
    assert.match(r.err, /cannot write/);
    const r2 = await runCli(['migrate-extract', good, 'pc.bios', join(dir, 'no', 'such', 'x.bin')]);
    assert.equal(r2.code, 1);
    assert.match(r2.err, /cannot write/);
  });
});

describe("a stream must end with QEMU's EOF record", () => {
  let ram: Uint8Array = new Uint8Array(0);
  let dir = '';
  before(async () => {
    ram = await streamOf(buildMachine({}, true).ms);
    dir = mkdtempSync(join(tmpdir(), 'memtree-eof-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a complete stream with device sections and lists every described device', async () => {
    const { bytes } = withDevices(ram);
    const r = await inspectStream(bytes, { readTail: true });
    assert.equal(r.reachedEof, true);
    assert.deepEqual(
      r.skipped.map((s) => s.idstr),
      ['timer', 'globalstate'],
    );
    // Without the JSON description (suppress-vmdesc machines) the footer + EOF ending is accepted.
    const bare = withDevices(ram, false).bytes;
    assert.equal((await inspectStream(bare, { readTail: true })).reachedEof, true);
    const f = join(dir, 'full.mig');
    writeFileSync(f, bytes);
    const cli = await runCli(['migrate-info', f]);
    assert.equal(cli.code, 0, cli.err);
    assert.match(cli.out, /skipped 2 device sections: timer, globalstate\n$/);
  });

  it('reports a stream cut anywhere after the RAM section as truncated (was: exit 0)', async () => {
    const { bytes, ramEnd } = withDevices(ram);
    const cuts = [ramEnd + 1, ramEnd + 20, ramEnd + 50, bytes.length - 200, bytes.length - 1];
    for (const n of cuts) {
      const cut = bytes.subarray(0, n);
      await assert.rejects(
        inspectStream(cut, { readTail: true }),
        (e: unknown) => e instanceof MigrationError && e.failure === 'truncated',
        `cut at ${n}`,
      );
      const f = join(dir, `cut-${n}.mig`);
      writeFileSync(f, cut);
      const cli = await runCli(['migrate-info', f]);
      assert.equal(cli.code, 1, `migrate-info of a stream cut at ${n} of ${bytes.length}`);
      assert.match(cli.err, /truncated/);
      assert.equal(cli.err.split('\n').length, 2);
    }
    // Cut before the EOF byte of a stream without description: the last section's footer is there
    // but not the EOF.
    const bare = withDevices(ram, false).bytes;
    await assert.rejects(
      inspectStream(bare.subarray(0, bare.length - 1), { readTail: true }),
      (e: unknown) => e instanceof MigrationError && e.failure === 'truncated',
    );
  });

  it('an unreadable file is one ERR_IO line, not a crash (/proc/self/mem: EIO after stat)', async () => {
    if (!existsSync('/proc/self/mem')) return;
    const r = await runCli(['migrate-info', '/proc/self/mem']);
    assert.equal(r.code, 1);
    assert.match(r.err, /^memtree migrate-info: cannot read \/proc\/self\/mem: /);
    assert.equal(r.err.split('\n').length, 2);
  });
});

describe('file descriptors', { skip: haveProcFd ? false : 'no /proc/self/fd' }, () => {
  let dir = '';
  let good = '';
  let corrupt = '';
  let cut = '';
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'memtree-fd-'));
    const bytes = await streamOf(buildMachine({ ramMiB: 4 }, true).ms);
    good = join(dir, 'good.mig');
    writeFileSync(good, bytes);
    const bad = Buffer.from(bytes);
    bad[40] = bad[40]! ^ 0xff; // inside the MEM_SIZE list
    corrupt = join(dir, 'corrupt.mig');
    writeFileSync(corrupt, bad);
    cut = join(dir, 'cut.mig');
    writeFileSync(cut, bytes.subarray(0, 100_000));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('inspectStream, loadRamStream and migrate-extract close the file on every path (was: one leak per call)', async () => {
    const run = async () => {
      for (const f of [corrupt, cut]) {
        await assert.rejects(inspectStream(await fileSource(f)), MigrationError);
        await assert.rejects(
          loadRamStream(buildMachine({ ramMiB: 4 }).ms, await fileSource(f)),
          MigrationError,
        );
      }
      await inspectStream(await fileSource(good), { readTail: true });
      await loadRamStream(buildMachine({ ramMiB: 4 }).ms, await fileSource(good));
      // A source that is never read opens nothing.
      await fileSource(good);
      assert.equal((await runCli(['migrate-extract', good, 'pc.bios', join(dir, 'o.bin')])).code, 0);
      assert.equal((await runCli(['migrate-extract', corrupt, 'pc.bios', join(dir, 'o.bin')])).code, 1);
      assert.equal((await runCli(['migrate-info', cut])).code, 1);
    };
    await run(); // warm-up: lazily opened handles of the runtime itself
    const before = fds();
    for (let i = 0; i < 20; i++) await run();
    const leaked = fds() - before;
    // 20 rounds of 9 reads each: a leak per read would show as 180 descriptors.
    assert.ok(leaked < 5, `${leaked} descriptors leaked`);
  });
});

describe('text from a stream in messages', () => {
  it('escapes control characters of block ids: the error stays one line, no ESC reaches the terminal', async () => {
    const ms = new MemorySystem();
    ms.ram('evil\n\x1b[2Jblock', 64 * 1024);
    const bytes = await streamOf(ms);
    await assert.rejects(loadRamStream(new MemorySystem(), bytes), (e: unknown) => {
      assert.ok(e instanceof MigrationError);
      assert.equal(e.block, 'evil\n\x1b[2Jblock', 'the field keeps the real id');
      assert.equal(e.message, 'Unknown ramblock "evil\\x0a\\x1b[2Jblock", cannot accept migration');
      return true;
    });
    const dir = mkdtempSync(join(tmpdir(), 'memtree-esc-'));
    try {
      const f = join(dir, 'evil.mig');
      writeFileSync(f, bytes);
      const info = await runCli(['migrate-info', f]);
      assert.equal(info.code, 0, info.err);
      assert.ok(!info.out.includes('\x1b'));
      assert.match(info.out, /evil\\x0a\\x1b\[2Jblock 0x0000000000010000/);
      const ex = await runCli(['migrate-extract', f, 'x\x1by', join(dir, 'o')]);
      assert.equal(ex.code, 1);
      assert.ok(!ex.err.includes('\x1b'));
      assert.equal(ex.err.split('\n').length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
