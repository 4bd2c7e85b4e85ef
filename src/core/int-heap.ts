/**
 * @module core/int-heap
 * A binary min-heap of small non-negative integers with a fixed capacity: the flat-view render
 * keeps paint numbers in one, the dump reader sibling positions. Internal (not exported from
 * `memtree/core`).
 */

/** A min-heap of at most `capacity` integers from 0 to 2^31 - 1. */
export class IntMinHeap {
  private readonly a: Int32Array;
  size = 0;

  constructor(capacity: number) {
    this.a = new Int32Array(capacity);
  }

  /** The smallest integer held (the heap must not be empty). */
  top(): number {
    return this.a[0]!;
  }

  /** Adds `v` (the heap holds at most `capacity` integers at a time). */
  push(v: number): void {
    const a = this.a;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= v) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = v;
  }

  /** Removes the smallest integer (the heap must not be empty). */
  pop(): void {
    const a = this.a;
    const last = a[--this.size]!;
    let i = 0;
    const n = this.size;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && a[c + 1]! < a[c]!) c++;
      if (a[c]! >= last) break;
      a[i] = a[c]!;
      i = c;
    }
    if (n > 0) a[i] = last;
  }
}
