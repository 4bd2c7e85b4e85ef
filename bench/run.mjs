// `npm run bench [-- --json]`: every benchmark, as ratios of memtree's speed to a baseline measured
// in the same run (1.0 = as fast as the baseline; higher is better).

import { existsSync } from 'node:fs';
import os from 'node:os';
import { run as core } from './core.bench.mjs';

const json = process.argv.includes('--json');
const results = [...core()];
for (const extra of ['./migration.bench.mjs', './mtree.bench.mjs', './machines.bench.mjs']) {
  if (existsSync(new URL(extra, import.meta.url))) {
    const mod = await import(extra);
    results.push(...(await mod.run()));
  }
}

if (json) {
  process.stdout.write(`${JSON.stringify(results)}\n`);
} else {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`memtree benchmarks — Node ${process.version}, ${cpu}, ${os.cpus().length} cores`);
  console.log('ratio = memtree speed / baseline speed in the same run (1.0 = as fast; higher is better)\n');
  const w = Math.max(...results.map((r) => r.name.length));
  console.log(`${'benchmark'.padEnd(w)}  ratio   target  memtree      baseline`);
  for (const r of results) {
    const ok = r.target === undefined ? ' ' : r.ratio >= r.target ? '✓' : '✗';
    const target = r.target === undefined ? '' : String(Number(r.target.toFixed(2)));
    const detail =
      r.ns !== undefined
        ? `${r.ns.toFixed(1).padStart(8)} ns  ${r.baselineNs.toFixed(1).padStart(8)} ns`
        : r.ms !== undefined
          ? `${r.ms.toFixed(r.ms < 10 ? 3 : 0).padStart(8)} ms  ${r.baseline}`
          : '';
    console.log(
      `${r.name.padEnd(w)}  ${r.ratio.toFixed(2).padStart(5)}  ${ok} ${target.padStart(4)}  ${detail}`,
    );
  }
}
