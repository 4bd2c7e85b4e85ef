/**
 * @module qmp/capture.test
 * The command-line handling of capture (what is added to QEMU's argv, how cmdline.txt quotes it).
 * Running QEMU itself is tested in test/qmp-live.test.ts.
 */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { machineArgvForCapture, shellQuote } from './capture.js';

test('-S and -display none are added after the program name, in the fixtures order', () => {
  assert.deepEqual(machineArgvForCapture(['qemu-system-x86_64', '-nodefaults', '-M', 'pc']), [
    'qemu-system-x86_64',
    '-S',
    '-display',
    'none',
    '-nodefaults',
    '-M',
    'pc',
  ]);
  // Present already (in either spelling), so nothing is added; -nographic excludes -display.
  assert.deepEqual(machineArgvForCapture(['q', '--S', '-display', 'vnc=:1']), [
    'q',
    '--S',
    '-display',
    'vnc=:1',
  ]);
  assert.deepEqual(machineArgvForCapture(['q', '-S', '-nographic']), ['q', '-S', '-nographic']);
  assert.throws(() => machineArgvForCapture([]), { code: 'ERR_INVALID_ARGUMENT' });
});

test('cmdline quoting matches the recorded fixtures and survives a POSIX shell', async () => {
  // The fixtures' cmdline.txt is the argv joined with spaces; plain words stay bare.
  const fixture = await readFile('fixtures/qemu-7.2/pc-debugcon-tie/cmdline.txt', 'utf8');
  const argv = fixture.trimEnd().split(' ');
  assert.equal(shellQuote(argv), fixture.trimEnd());
  // Words with shell metacharacters are single-quoted, with ' written as '\''.
  const odd = ['a b', "it's", '', '$x', 'id=c1,iobase=0x402'];
  assert.equal(shellQuote(odd), `'a b' 'it'\\''s' '' '$x' id=c1,iobase=0x402`);
  const echoed = execFileSync('sh', ['-c', `printf '[%s]' ${shellQuote(odd)}`], { encoding: 'utf8' });
  assert.equal(echoed, odd.map((a) => `[${a}]`).join(''));
});
