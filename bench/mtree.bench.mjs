// `info mtree` reader benchmark (issue #11): a dump of 100,000 `i/o` siblings, read, rebuilt and
// printed back as `info mtree -f`, against reading it alone (parseMtreeText). The ratio shows what
// the rebuild and the render add to the parse; every step must stay O(N log N).

import { formatFlat, parseMtreeText, rebuild } from '../dist/mtree/index.js';
import { timeMs } from './harness.mjs';

export function run() {
  const n = 100_000;
  const lines = ['address-space: memory', '  0000000000000000-ffffffffffffffff (prio 0, i/o): system'];
  for (let i = 0; i < n; i++) {
    const s = (i * 0x1000).toString(16).padStart(16, '0');
    const e = (i * 0x1000 + 0xfff).toString(16).padStart(16, '0');
    lines.push(`    ${s}-${e} (prio 0, i/o): dev${i}`);
  }
  const text = `${lines.join('\n')}\n\n`;
  const parse = timeMs(() => parseMtreeText(text), 1);
  const full = timeMs(() => formatFlat(rebuild(parseMtreeText(text)).system), 1);
  return [
    {
      name: 'mtree-flat-100k-region-dump',
      ratio: parse / full,
      ms: full,
      baseline: `${parse.toFixed(0)} ms to parse alone`,
    },
  ];
}
