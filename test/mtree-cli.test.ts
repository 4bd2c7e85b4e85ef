/**
 * @module test/mtree-cli
 * The `memtree` command line as a user meets it, through the built executable: exit codes (0, 1 for
 * bad input and for differences, 2 for usage), data on stdout, exactly one escaped line on stderr
 * for every error, capture folders wherever a dump is taken, one address syntax, --json, help.
 * Dumps are the repository's own QEMU 7.2 captures (fixtures/qemu-7.2), so nothing outside the
 * repository is needed.
 */

import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { compareMtreeText } from '../src/mtree/compare.js';
import { BIN, type BinResult, oneLineError, runBin } from './support/run-bin.js';

const PC = 'fixtures/qemu-7.2/pc-8g';
const ISAPC = 'fixtures/qemu-7.2/isapc';
const read = (p: string) => readFileSync(p, 'utf8');

const tmp = mkdtempSync(join(tmpdir(), 'memtree-cli-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const at = (name: string) => join(tmp, name);
writeFileSync(at('empty.txt'), '');
writeFileSync(at('blank.txt'), '\n  \n\n');
writeFileSync(
  at('binary.dat'),
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0x1b, 0x5b, 0x32, 0x4a, 0xff, 0xfe]),
);
writeFileSync(
  at('bad.txt'),
  'address-space: memory\n  0000000000000000-ffffffffffffffff (prio 0, i/o): system\n    zzz\n',
);
writeFileSync(
  at('only-sections.txt'),
  'memory-region: pc.ram\n  0000000000000000-0000000000000fff (prio 0, ram): pc.ram\n',
);
mkdirSync(at('empty-folder'));

const memtree = (args: string[], stdin?: string) => runBin(args, { stdin });

function assertOneLineError(r: BinResult, code: 1 | 2, pattern?: RegExp): void {
  const why = oneLineError(r, code);
  assert.equal(why, undefined, why);
  if (pattern) assert.match(r.err, pattern);
}

test('memtree alone prints the usage on stderr and exits 2; help and help CMD go to stdout', async () => {
  const bare = await memtree([]);
  assert.equal(bare.code, 2);
  assert.equal(bare.out, '');
  assert.match(bare.err, /^Usage: memtree COMMAND/);
  const help = await memtree(['help']);
  assert.equal(help.code, 0);
  assert.match(help.out, /^Usage: memtree COMMAND/);
  const lookupHelp = await memtree(['help', 'lookup']);
  assert.equal(lookupHelp.code, 0);
  assert.match(lookupHelp.out, /^Usage: memtree lookup DUMP ADDR/);
  assert.equal(lookupHelp.out, (await memtree(['lookup', '--help'])).out);
  assertOneLineError(await memtree(['help', 'nosuch']), 2, /no command 'nosuch'/);
  assertOneLineError(await memtree(['nosuch']), 2, /unknown command 'nosuch'/);
});

test('every command has an example in its help, and every data command offers --json', async () => {
  const list = (await memtree(['help'])).out;
  const names = [...list.matchAll(/^ {2}([a-z-]+) {2,}/gm)].map((m) => m[1]!);
  assert.ok(names.length >= 10, list);
  for (const name of names) {
    const h = (await memtree(['help', name])).out;
    assert.match(h, /^Examples?:\n {2}memtree /m, `${name} --help has no example`);
    // serve shows a page and run runs a guest: neither prints data.
    // migrate-extract writes a file, not data to print.
    const printsNoData = ['serve', 'run', 'migrate-extract'];
    if (!printsNoData.includes(name)) assert.match(h, /--json/, `${name} has no --json`);
  }
});

test('parseArgs mistakes are usage errors (exit 2, one line), never a stack trace', async () => {
  for (const args of [
    ['qmp', '--bogus', 'S', 'flat'],
    ['qmp', '--timeout'],
    ['qmp', '--timeout', '-5', 'S', 'flat'],
    ['qmp', '--timeout=-5', 'S', 'flat'],
    ['capture', '--bogus', 'out', '--', 'qemu-system-x86_64'],
    ['capture', '--timeout', 'x', 'out', '--', 'qemu-system-x86_64'],
    ['serve', '--bogus'],
    ['serve', '--port'],
    ['flat', PC, '--bogus'],
    ['flat', PC, '--page-bits', '99'],
    ['mtree', PC, '--flat'],
    ['lookup', PC],
    ['diff', PC],
    ['compare', PC],
    ['migrate-info', '--bogus', 'x'],
    ['migrate-extract', '--bogus'],
  ]) {
    const r = await memtree(args);
    const why = oneLineError(r, 2);
    assert.equal(why, undefined, `memtree ${args.join(' ')}: ${why}`);
  }
});

test('file errors are one line and exit 1, whatever the file system says', async () => {
  assertOneLineError(await memtree(['flat', at('nope.txt')]), 1, /cannot read .*nope\.txt: no such file/);
  // EIO after a successful open: the kernel refuses to read unmapped memory.
  assertOneLineError(await memtree(['migrate-info', '/proc/self/mem']), 1);
  assertOneLineError(await memtree(['flat', at('empty-folder')]), 1, /a folder without mtree-D\.txt/);
  assertOneLineError(await memtree(['compare', at('empty-folder'), PC]), 1);
});

test('empty, blank, binary or wrong input is refused with one line, not accepted silently', async () => {
  assertOneLineError(await memtree(['flat', at('empty.txt')]), 1, /empty\.txt: empty input/);
  assertOneLineError(await memtree(['flat', at('blank.txt')]), 1, /empty input/);
  assertOneLineError(await memtree(['flat', '-'], ''), 1, /<stdin>: empty input/);
  assertOneLineError(await memtree(['mtree', '-'], ''), 1, /empty input/);
  assertOneLineError(await memtree(['lookup', at('empty.txt'), '0x0']), 1, /empty input/);
  assertOneLineError(await memtree(['diff', at('empty.txt'), `${PC}/flat.txt`]), 1, /empty input/);
  assertOneLineError(await memtree(['compare', at('empty.txt'), `${PC}/flat.txt`]), 1, /empty input/);
  // The binary's bytes (ESC [ 2 J among them) are not echoed.
  const bin = await memtree(['flat', at('binary.dat')]);
  assertOneLineError(bin, 1, /binary\.dat: binary data, not the text of an `info mtree` dump/);
  // A dump without any address space has nothing to look up in.
  assertOneLineError(
    await memtree(['lookup', at('only-sections.txt'), '0x0']),
    1,
    /no `address-space:` block/,
  );
  assertOneLineError(await memtree(['flat', at('bad.txt')]), 1, /bad\.txt:3: /);
  // A tree dump and a flat dump are not "different": they are different kinds of text.
  assertOneLineError(
    await memtree(['compare', `${PC}/flat.txt`, `${PC}/mtree-D.txt`]),
    1,
    /is an `info mtree -f` dump and .* is an `info mtree` tree dump: compare needs two of the same kind/,
  );
});

test('text from outside is escaped in error lines: newlines, ESC and other controls', async () => {
  const as = await memtree(['lookup', PC, '0x0', '--as', 'evil\nsecond line\x1b[31m\x07']);
  assertOneLineError(as, 1, /no address space named "evil\\nsecond line\\e\[31m\\x07"/);
  const path = await memtree(['flat', at('no\x1b]0;title\x07such\r.txt')]);
  assertOneLineError(path, 1, /no\\e\]0;title\\x07such\\r\.txt: no such file/);
  const cmd = await memtree(['no\nsuch']);
  assertOneLineError(cmd, 2, /unknown command 'no\\nsuch'/);
  const addr = await memtree(['lookup', PC, '0x\x1b[2J']);
  assertOneLineError(addr, 2, /"0x\\u001b\[2J" is not an address/);
});

test('a capture folder works wherever a dump does: flat, mtree, lookup, diff, compare', async () => {
  // flat FOLDER reads mtree-D.txt with flat.txt as --flat, and must print what QEMU printed.
  const flat = await memtree(['flat', PC]);
  assert.equal(flat.code, 0, flat.err);
  const cmp = compareMtreeText(flat.out, read(`${PC}/flat.txt`));
  assert.ok(cmp.equal, cmp.firstDifference);
  assert.equal(flat.out, (await memtree(['flat', `${PC}/mtree-D.txt`, '--flat', `${PC}/flat.txt`])).out);

  const mt = await memtree(['mtree', PC, '-D']);
  assert.equal(mt.code, 0, mt.err);
  assert.ok(compareMtreeText(mt.out, read(`${PC}/mtree-D.txt`)).equal);

  // 4 GiB in the 8 GiB PC is pc.ram's byte 0xc0000000 (flat.txt: 0000000100000000-... pc.ram @c0000000).
  const lk = await memtree(['lookup', PC, '0x100000000', '--as', 'memory']);
  assert.equal(lk.code, 0, lk.err);
  assert.match(lk.out, /region {2}pc\.ram, offset 0xc0000000\n/);

  assert.equal((await memtree(['compare', PC, PC])).code, 0);
  assert.equal((await memtree(['compare', PC, `${PC}/flat.txt`])).out, 'equal\n');

  // A copy of the capture where pc.bios at the top of 4 GiB became ROM of another name.
  const other = at('pc-8g-changed');
  mkdirSync(other);
  for (const f of ['mtree-D.txt', 'mtree.txt', 'flat-d.txt', 'cmdline.txt'])
    copyFileSync(`${PC}/${f}`, join(other, f));
  writeFileSync(
    join(other, 'flat.txt'),
    read(`${PC}/flat.txt`).replaceAll(
      '00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios\n',
      '00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bioz\n',
    ),
  );
  const d = await memtree(['diff', PC, other]);
  assert.equal(d.code, 1, d.err);
  assert.match(
    d.out,
    / ~ 00000000fffc0000-00000000ffffffff \(prio 0, rom\): pc\.bios\n {6}now \(prio 0, rom\): pc\.bioz\n/,
  );
  const c = await memtree(['compare', PC, other]);
  assert.equal(c.code, 1);
  assert.match(c.out, /^mtree-D\.txt: equal\n/m);
  assert.match(c.out, /^flat\.txt: different: /m);
});

test('diff exits 1 when the maps differ (as diff(1)) and 0 when they do not', async () => {
  const same = await memtree(['diff', `${PC}/flat.txt`, PC]);
  assert.equal(same.code, 0, same.err);
  assert.equal(same.out, 'no differences\n');
  // The ISA PC has no PCI hole and 32 MiB of RAM: its RAM range differs from the 8 GiB PC's.
  const r = await memtree(['diff', ISAPC, PC]);
  assert.equal(r.code, 1, r.err);
  assert.match(r.out, /pc\.ram/);
  const j = await memtree(['diff', ISAPC, PC, '--json']);
  assert.equal(j.code, 1);
  assert.ok(JSON.parse(j.out).differences.length > 0);
});

test('one address syntax: 0x, _ separators, bare dump hex, units and decimal mean the same address', async () => {
  const answer = async (addr: string) => {
    const r = await memtree(['lookup', PC, addr, '--as', 'memory', '--json']);
    assert.equal(r.code, 0, `${addr}: ${r.err}`);
    return JSON.parse(r.out);
  };
  const want = await answer('0x100000000');
  assert.equal(want.answers[0].region, 'pc.ram');
  assert.equal(want.answers[0].offset, '0xc0000000');
  for (const a of ['0x1_0000_0000', '4G', '4GiB', '4294967296', '0000000100000000']) {
    assert.deepEqual(await answer(a), want, a);
  }
  // Bare hex with a letter, as copied from a dump: pc.bios at the top of 4 GiB.
  assert.equal((await answer('fffffff0')).answers[0].offset, '0x3fff0');
  assertOneLineError(await memtree(['lookup', PC, '0x1_0000_0000_0000_0000']), 2, /beyond the 64-bit/);
  assertOneLineError(await memtree(['lookup', PC, 'xyz']), 2, /is not an address/);
});

test('--json: flat, mtree and lookup print the documented shapes', async () => {
  const flat = JSON.parse((await memtree(['flat', PC, '--json'])).out);
  const mem = flat.views.find((v: { spaces: { name: string }[] }) =>
    v.spaces.some((s) => s.name === 'memory'),
  );
  // flat.txt line 20: 00000000fffc0000-00000000ffffffff (prio 0, rom): pc.bios
  assert.ok(
    mem.ranges.some(
      (r: Record<string, unknown>) =>
        r.start === '0x00000000fffc0000' && r.end === '0x00000000ffffffff' && r.region === 'pc.bios',
    ),
  );
  const tree = JSON.parse((await memtree(['mtree', PC, '-D', '--json'])).out);
  const smm = tree.blocks.find((b: { names: string[] }) => b.names.includes('cpu-smm-0'));
  // mtree-D.txt lines 2-4: the root `memory`, then its two aliases one level down.
  assert.deepEqual(
    smm.regions.slice(0, 3).map((r: { depth: number; name: string }) => [r.depth, r.name]),
    [
      [1, 'memory'],
      [2, 'smram'],
      [2, 'memory'],
    ],
  );
  assert.deepEqual(smm.regions[1].alias, { target: 'smram', offset: '0x0', offsetEnd: '0xffffffff' });
  const pam = tree.blocks.flatMap((b: { regions: { name: string; disabled: boolean }[] }) => b.regions);
  assert.ok(pam.some((r: { name: string; disabled: boolean }) => r.name === 'pam-ram' && r.disabled));
  const lk = JSON.parse((await memtree(['lookup', PC, '0xffff0', '--as', 'memory', '--json'])).out);
  assert.equal(lk.address, '0xffff0');
  assert.equal(lk.answers[0].region, 'pc.bios');
  assert.equal(lk.answers[0].offset, '0x3fff0');
  const cmp = JSON.parse((await memtree(['compare', PC, PC, '--json'])).out);
  assert.equal(cmp.equal, true);
  assert.equal(cmp.files.length, 4);
});

test('serve answers a malformed URL with 400, not 500', async (t) => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['dist/cli/bin.js', 'serve', PC, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill());
  const url = await new Promise<string>((ok, fail) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      out += s;
      const m = /memtree viewer: (http:\S+)/.exec(out);
      if (m) ok(m[1]!);
    });
    child.once('exit', (code) => fail(new Error(`serve exited ${code}`)));
  });
  const status = (path: string) =>
    new Promise<number>((ok, fail) => {
      const req = request(new URL(path, url), (res) => {
        res.resume();
        ok(res.statusCode ?? 0);
      });
      req.on('error', fail);
      req.end();
    });
  assert.equal(await status('/%ZZ'), 400);
  assert.equal(await status('/api/%E0%A4%A'), 400);
  assert.equal(await status('/api/dumps'), 200);
});

test('a reader that closes the pipe early (memtree mtree BIG | head) ends memtree quietly with status 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'memtree-epipe-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  // 50k lines printed back: several MB, far more than a pipe holds.
  const lines = ['address-space: memory', '  0000000000000000-ffffffffffffffff (prio 0, i/o): system'];
  for (let i = 0; i < 50_000; i++) {
    const a = (i * 0x1000).toString(16).padStart(16, '0');
    const b = (i * 0x1000 + 0xfff).toString(16).padStart(16, '0');
    lines.push(`    ${a}-${b} (prio 0, i/o): d${i}`);
  }
  const file = join(dir, 'big.txt');
  writeFileSync(file, `${lines.join('\n')}\n\n`);
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [BIN, 'mtree', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  // Read the first chunk, then close our end, as `head -1` does.
  await new Promise<void>((res) => child.stdout.once('data', () => res()));
  child.stdout.destroy();
  const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  assert.equal(err, '');
  assert.equal(code, 0);
});
