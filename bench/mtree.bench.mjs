// `info mtree` reader benchmarks (issue #11): what each CLI command does with a large dump, against
// reading the same dump alone (parseMtreeText) in the same run. Every command must stay
// O(N log N) in the dump's lines, so each ratio stays near a constant as N grows; the complexity of
// every step is in docs/architecture.md.
//
// Dumps: 100,000 `i/o` siblings in one container; 100,000 RAM siblings (every one a RAM block placed
// in ram_addr space); 10,000 address spaces with a root and one RAM region each.

import {
  diffFlatDumps,
  explainAddress,
  formatFlat,
  formatMtree,
  parseFlatText,
  parseMtreeText,
  rebuild,
} from '../dist/mtree/index.js';
import { siblingsDump, spacesDump } from './dumps.mjs';
import { timeMs } from './harness.mjs';

/** What `memtree diff` does with two tree dumps: rebuild, render and read back each, then compare. */
function diffTrees(a, b) {
  const asFlat = (text) => parseFlatText(formatFlat(rebuild(parseMtreeText(text)).system));
  return diffFlatDumps(asFlat(a), asFlat(b));
}

function row(name, text, what, fn) {
  const parse = timeMs(() => parseMtreeText(text), 1);
  const full = timeMs(() => fn(text), 1);
  return { name, ratio: parse / full, ms: full, baseline: `${parse.toFixed(0)} ms to parse alone (${what})` };
}

export function run() {
  const io = siblingsDump(100_000, 'i/o');
  // The last sibling, which a lookup reaches after trying every other one.
  const lookupAddr = 99_999n * 0x1000n + 0x10n;
  const io2 = io.replace('(prio 0, i/o): dev500\n', '(prio 0, ram): dev500\n');
  return [
    row('mtree-flat-100k-region-dump', io, 'flat', (t) => formatFlat(rebuild(parseMtreeText(t)).system)),
    row('mtree-print-100k-region-dump', io, 'mtree -D', (t) =>
      formatMtree(rebuild(parseMtreeText(t)).system, { disabled: true }),
    ),
    row('mtree-lookup-100k-region-dump', io, 'lookup', (t) =>
      explainAddress(rebuild(parseMtreeText(t)).spaces[0], lookupAddr),
    ),
    row('mtree-diff-100k-region-dumps', io, 'diff, two dumps', (t) => diffTrees(t, io2)),
    row('mtree-flat-100k-ram-dump', siblingsDump(100_000, 'ram'), 'flat', (t) =>
      formatFlat(rebuild(parseMtreeText(t)).system),
    ),
    row('mtree-flat-10k-address-spaces', spacesDump(10_000), 'flat', (t) =>
      formatFlat(rebuild(parseMtreeText(t)).system),
    ),
  ];
}
