/**
 * @module cli/commands/run-options.test
 * `memtree run`'s --rtc (QEMU's -rtc, configure_rtc) and --rng-seed, with values worked out by hand
 * (`date -u -d 2006-06-17T16:01:21 +%s` is 1150560081).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memoryIo } from '../../../test/support/run-cli.js';
import { main } from '../main.js';
import { parseRngSeed, parseRtc } from './run.js';

const S = 1_000_000_000n;

test("--rtc base=: QEMU's two date forms (read as UTC), utc as now to the second, clock=vm only", () => {
  assert.equal(parseRtc('base=2006-06-17T16:01:21', 0), 1150560081n * S);
  assert.equal(parseRtc('base=2006-06-17', 0), 1150502400n * S);
  assert.equal(parseRtc('base=2006-06-17T16:01:21,clock=vm,driftfix=none', 0), 1150560081n * S);
  // goldfish_rtc_realize starts from whole seconds (mktimegm of qemu_get_timedate)
  assert.equal(parseRtc('base=utc', 1150560081_999), 1150560081n * S);
  assert.equal(parseRtc('clock=vm', 1150560081_500), 1150560081n * S);
  // mktimegm normalizes: month 13 of 2005 is January 2006
  assert.equal(parseRtc('base=2005-13-01', 0), parseRtc('base=2006-01-01', 0));
  for (const bad of [
    'base=17.6.2006',
    'base=2006-06-17T16:01',
    'clock=host',
    'clock=rt',
    'speed=2',
    'base=10000-01-01',
  ]) {
    assert.throws(() => parseRtc(bad, 0), { code: 'ERR_USAGE' }, bad);
  }
});

test('--rng-seed: 64 hex digits become the 32 bytes in order; anything else is a usage error', () => {
  const seed = parseRngSeed(`00ff10${'ab'.repeat(28)}7e`);
  assert.equal(seed.length, 32);
  assert.deepEqual([seed[0], seed[1], seed[2], seed[3], seed[31]], [0x00, 0xff, 0x10, 0xab, 0x7e]);
  for (const bad of ['', 'ab'.repeat(31), 'ab'.repeat(33), `${'ab'.repeat(31)}zz`]) {
    assert.throws(() => parseRngSeed(bad), { code: 'ERR_USAGE' }, bad);
  }
});

// With -bios none and nothing loaded, the reset vector jumps to zeroed RAM: an illegal instruction
// traps to mtvec 0, where nothing is mapped, so the hart faults there forever and retires nothing.
// --max-insns counts those traps: before it did, this run never ended.
test('memtree run: a bad --rtc or --rng-seed, or --append/--initrd without --kernel, is one line and exit 2; a --max-insns stop (in a loop of traps) says how to run the same boot again', {
  timeout: 60_000,
}, async () => {
  for (const args of [
    ['run', 'riscv-virt', '--rtc', 'base=yesterday'],
    ['run', 'riscv-virt', '-rtc', 'clock=host'],
    ['run', 'riscv-virt', '--rng-seed', '1234'],
    // QEMU: "-append only allowed with -kernel option" (and the same for -initrd)
    ['run', 'riscv-virt', '--append', 'console=ttyS0'],
    ['run', 'riscv-virt', '--initrd', '/etc/hostname'],
  ]) {
    const io = memoryIo();
    assert.equal(await main(args, io), 2, args.join(' '));
    assert.equal(io.err.trimEnd().split('\n').length, 1, io.err);
    if (args[2] === '--append' || args[2] === '--initrd') assert.match(io.err, /needs --kernel/);
  }
  const seed = 'c0ffee'.padEnd(64, '0');
  const io = memoryIo();
  const code = await main(
    [
      'run',
      'riscv-virt',
      '--bios',
      'none',
      '--rtc',
      'base=2006-06-17',
      '--rng-seed',
      seed,
      '--max-insns',
      '1000',
    ],
    io,
  );
  assert.equal(code, 3);
  assert.match(
    io.err,
    /stopped after 1000 guest instructions and traps \(--max-insns\) hart 0 at pc 0x0 in M-mode;/,
  );
  assert.match(
    io.err,
    new RegExp(`the same boot again: --rtc base=2006-06-17T00:00:00 --rng-seed ${seed}\\n$`),
  );
});
