// Generated `info mtree` dumps of a chosen size, shared by the reader's benchmarks
// (bench/mtree.bench.mjs) and its work-counting scale test (test/scale.test.ts), so that the test
// guards exactly the dumps the bench times.

/** A 64-bit address as `info mtree` prints it: 16 hex digits. */
export const hex16 = (v) => v.toString(16).padStart(16, '0');

/** One container holding `n` siblings of `type` (`i/o` or `ram`), named dev0…, 4 KiB apart. */
export function siblingsDump(n, type) {
  const lines = ['address-space: memory', '  0000000000000000-ffffffffffffffff (prio 0, i/o): system'];
  for (let i = 0; i < n; i++) {
    lines.push(`    ${hex16(i * 0x1000)}-${hex16(i * 0x1000 + 0xfff)} (prio 0, ${type}): dev${i}`);
  }
  return `${lines.join('\n')}\n\n`;
}

/** `n` address spaces, each with its own root and one RAM page. */
export function spacesDump(n) {
  const lines = [];
  for (let i = 0; i < n; i++) {
    lines.push(
      `address-space: as${i}`,
      `  0000000000000000-ffffffffffffffff (prio 0, i/o): root${i}`,
      `    0000000000000000-0000000000000fff (prio 0, ram): ram${i}`,
      '',
    );
  }
  return `${lines.join('\n')}\n`;
}
