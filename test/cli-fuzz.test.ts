/**
 * @module test/cli-fuzz
 * Random command lines and randomly damaged dump files through the built `memtree` executable, with
 * a fixed seed and a fixed number of runs: whatever the input, memtree exits 0, 1 or 2, and a failed
 * run prints exactly one printable line on stderr and no stack trace. A failure prints the argv that
 * caused it, to replay by hand.
 */

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { mulberry32 } from './support/mulberry32.js';
import { oneLineError, runBin } from './support/run-bin.js';

const SEED = 0x6d656d74; // "memt"
const RUNS = 48;
const PARALLEL = 3;

const random = mulberry32(SEED);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

const FIX = 'fixtures/qemu-7.2';
const SOURCES = ['pc-8g', 'isapc', 'microvm', 'virt-secure'].flatMap((m) =>
  ['mtree-D.txt', 'flat.txt', 'mtree.txt'].map((f) => readFileSync(`${FIX}/${m}/${f}`, 'utf8')),
);

const NASTY = [
  '\n',
  '\r',
  '\t',
  '\x1b[2J',
  '\x00',
  '\x7f',
  '\u202e',
  '\ufeff',
  '\ud800',
  '"',
  '\\',
  '%ZZ',
  ' ',
];

/** Damages dump text the ways files get damaged: cut, lines lost or doubled, bytes flipped. */
function mutate(text: string): string {
  let lines = text.split('\n');
  const n = 1 + int(4);
  for (let k = 0; k < n; k++) {
    const i = int(lines.length);
    switch (int(9)) {
      case 0:
        lines.splice(i, 1 + int(5));
        break;
      case 1:
        lines.splice(i, 0, ...lines.slice(i, i + 1 + int(3)));
        break;
      case 2: {
        const l = lines[i] ?? '';
        const at = int(l.length + 1);
        lines[i] = l.slice(0, at) + pick([...NASTY, 'f', '0', '-', '@', ')', '(']) + l.slice(at + int(2));
        break;
      }
      case 3:
        lines = lines.slice(0, i);
        break;
      case 4:
        lines[i] = `${'  '.repeat(int(6))}${(lines[i] ?? '').trimStart()}`;
        break;
      case 5: {
        const j = int(lines.length);
        [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? ''];
        break;
      }
      case 6:
        lines[i] = (lines[i] ?? '').replace(/[0-9a-f]{16}/, () =>
          pick(['ffffffffffffffff', '0000000000000000', '8000000000000000']),
        );
        break;
      case 7:
        lines[i] = (lines[i] ?? '').replace(
          /prio -?\d+/,
          `prio ${pick(['-1', '2147483648', '99999999999', 'x'])}`,
        );
        break;
      default:
        lines[i] = (lines[i] ?? '').replace(/@\S+/, `@${pick(['system', 'pc.ram', 'nosuch', 'memory', ''])}`);
    }
  }
  return lines.join('\n');
}

const tmp = mkdtempSync(join(tmpdir(), 'memtree-fuzz-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

let files = 0;
/** A fresh input file: a damaged dump, random bytes, or nothing. */
function inputFile(): string {
  const p = join(tmp, `in${files++}.txt`);
  const kind = int(10);
  if (kind === 0) writeFileSync(p, Buffer.from(Array.from({ length: int(2000) }, () => int(256))));
  else if (kind === 1) writeFileSync(p, pick(['', '\n', 'FlatView #0\n', 'address-space: x\n', '{}']));
  else writeFileSync(p, mutate(pick(SOURCES)));
  return p;
}

function folder(): string {
  const p = join(tmp, `dir${files++}`);
  mkdirSync(p);
  if (random() < 0.7) writeFileSync(join(p, 'mtree-D.txt'), mutate(pick(SOURCES)));
  if (random() < 0.5) writeFileSync(join(p, 'flat.txt'), mutate(pick(SOURCES)));
  return p;
}

function word(): string {
  return pick([
    () => inputFile(),
    () => folder(),
    () => `${FIX}/${pick(['pc-8g', 'isapc', 'q35-pcie-rp'])}`,
    () => pick(['-', '--', '-x', '--json', '--flat', '--as', '--timeout', '--page-bits', '-D', '-d', '-h']),
    () => pick(['0x0', '0xfffffff0', '4G', 'fee00000', '18446744073709551616', '-1', '0x', '1_']),
    // A command line cannot hold NUL.
    () => `${pick(['memory', 'I/O', ''])}${pick(NASTY.filter((c) => c !== '\x00'))}`,
    () => join(tmp, `missing${int(9)}`),
    () => pick(['12', '10', '99', '-5', 'NaN', '1e3']),
  ])();
}

function argv(): string[] {
  const cmd = pick([
    'flat',
    'mtree',
    'lookup',
    'diff',
    'compare',
    'flat',
    'lookup',
    'mtree',
    'qmp',
    'capture',
    'migrate-info',
    'help',
    'nosuch',
    '--version',
  ]);
  const args: string[] = [cmd];
  switch (cmd) {
    case 'flat':
    case 'mtree':
      args.push(word());
      if (random() < 0.4) args.push('--flat', word());
      break;
    case 'lookup':
      args.push(word(), pick(['0x0', '0xffff0', '4G', 'fee00000', '0x1_0000_0000', word()]));
      if (random() < 0.4) args.push('--as', pick(['memory', 'I/O', word()]));
      break;
    case 'diff':
    case 'compare':
      args.push(word(), word());
      break;
    case 'qmp':
      args.push(join(tmp, 'no.sock'), pick(['flat', 'mtree', 'lookup', 'hmp', 'bogus']));
      break;
    case 'capture':
      args.push(join(tmp, `cap${files++}`), '--', pick(['/nonexistent/qemu', 'false']));
      break;
    case 'migrate-info':
      args.push(word());
      break;
    default:
      break;
  }
  for (let k = int(3); k > 0; k--) args.splice(1 + int(args.length), 0, word());
  if (random() < 0.5) args.push(pick(['--json', '-D', '-d', '--page-bits', '10']));
  return args;
}

test(`random command lines and damaged dumps (seed ${SEED}, ${RUNS} runs): exit 0/1/2, one clean error line`, {
  timeout: 180_000,
}, async () => {
  const cases = Array.from({ length: RUNS }, () => argv());
  const problems: string[] = [];
  for (let i = 0; i < cases.length; i += PARALLEL) {
    const batch = cases.slice(i, i + PARALLEL);
    const results = await Promise.all(
      batch.map((a) => runBin(a, { stdin: mutate(pick(SOURCES)), killAfterMs: 60_000 })),
    );
    results.forEach((r, k) => {
      const a = batch[k]!;
      const shown = JSON.stringify(a);
      if (r.code !== 0 && r.code !== 1 && r.code !== 2) {
        problems.push(`${shown}: exit ${r.code} signal ${r.signal}: ${r.err.slice(0, 300)}`);
        return;
      }
      if (r.code === 0) return;
      // A failed run: nothing on stdout except compare/diff reporting differences (exit 1).
      const differs = (a[0] === 'compare' || a[0] === 'diff') && r.code === 1 && r.err === '';
      if (differs) return;
      const why = oneLineError({ ...r, out: '' }, r.code as 1 | 2);
      if (why) problems.push(`${shown}: ${why}`);
    });
  }
  assert.deepEqual(problems, []);
});
