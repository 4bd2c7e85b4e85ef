// Timing helpers for the benchmarks: every figure is a ratio of memtree's speed to a baseline
// measured in the same run, alternating the two so that frequency scaling and GC hit both alike.

/** Runs `fn(iterations)` and returns the time per iteration in nanoseconds. */
function timeOnce(fn, iterations) {
  const t0 = process.hrtime.bigint();
  fn(iterations);
  return Number(process.hrtime.bigint() - t0) / iterations;
}

/**
 * Compares `subject` with `baseline`: both are called as f(iterations) and must do `iterations`
 * units of work. Returns the median time per unit of each over `rounds` alternating rounds.
 */
export function compare(subject, baseline, { iterations = 1_000_000, rounds = 9, warmup = 3 } = {}) {
  for (let i = 0; i < warmup; i++) {
    subject(iterations);
    baseline(iterations);
  }
  const s = [];
  const b = [];
  for (let i = 0; i < rounds; i++) {
    globalThis.gc?.();
    if (i % 2 === 0) {
      s.push(timeOnce(subject, iterations));
      b.push(timeOnce(baseline, iterations));
    } else {
      b.push(timeOnce(baseline, iterations));
      s.push(timeOnce(subject, iterations));
    }
  }
  const median = (a) => a.sort((x, y) => x - y)[a.length >> 1];
  const sNs = median(s);
  const bNs = median(b);
  return { ns: sNs, baselineNs: bNs, ratio: bNs / sNs };
}

/** Median time of `fn()` in milliseconds over `rounds` runs. */
export function timeMs(fn, rounds = 21) {
  const t = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return t.sort((x, y) => x - y)[t.length >> 1];
}

/** A deterministic pseudo-random generator (xorshift32), so every run uses the same addresses. */
export function rng(seed = 0x9e3779b9) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
