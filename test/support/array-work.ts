/**
 * @module test/support/array-work
 * Counting work instead of timing it (test/scale.test.ts): while a function runs, every array
 * operation whose cost grows with the array adds its length to a counter. Deterministic, so a
 * growth bound on it is a test that does not depend on the machine's load.
 */

const SCANS = [
  'indexOf',
  'lastIndexOf',
  'includes',
  'find',
  'findIndex',
  'findLast',
  'findLastIndex',
  'some',
  'every',
  'filter',
  'map',
  'flatMap',
  'forEach',
  'reduce',
  'join',
  'fill',
  'concat',
  'slice',
  'reverse',
] as const;

/**
 * Runs `fn` and returns the array work it did: the length of the array for every scan, copy or
 * iteration, the elements moved by every splice, n·log2(n) for every sort.
 */
export function arrayWork(fn: () => void): number {
  const proto = Array.prototype as unknown as Record<PropertyKey, (...a: unknown[]) => unknown>;
  const saved = new Map<PropertyKey, (...a: unknown[]) => unknown>();
  let work = 0;
  const wrap = (key: PropertyKey, cost: (self: unknown[], args: unknown[]) => number) => {
    const original = proto[key]!;
    saved.set(key, original);
    proto[key] = function (this: unknown[], ...args: unknown[]) {
      work += cost(this, args);
      return Reflect.apply(original, this, args);
    };
  };
  for (const k of SCANS) wrap(k, (self) => self.length);
  wrap(Symbol.iterator, (self) => self.length);
  wrap('sort', (self) => self.length * Math.log2(self.length + 1));
  wrap('splice', (self, args) => {
    const n = self.length;
    let start = Number(args[0] ?? 0);
    if (start < 0) start = Math.max(0, n + start);
    return Math.max(0, n - Math.min(start, n));
  });
  try {
    fn();
  } finally {
    for (const [k, f] of saved) proto[k] = f;
  }
  return work;
}
