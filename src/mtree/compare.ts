/**
 * @module mtree/compare
 * Canonical comparison of two `info mtree` texts (tree or flat form). QEMU prints address-space
 * groups, `memory-region:` sections and FlatViews in hash-table order, numbers FlatViews in that
 * order, and lists the address spaces of a FlatView in creation order; none of that is a property
 * of the machine. So both texts are cut into blocks (at blank lines), FlatView blocks lose their
 * `#n` and get their ` AS "…"` lines sorted, and the two texts are equal when they hold the same
 * multiset of blocks. Everything else inside a block is compared byte for byte.
 */

/** The outcome of {@link compareMtreeText}. */
export interface CompareResult {
  readonly equal: boolean;
  /** When not equal: the first block found only on one side, with the lines that differ. */
  readonly firstDifference?: string;
}

/** A block of a dump in canonical form. */
interface Block {
  /** Canonical text of the block (the multiset key). */
  readonly key: string;
  /** Canonical lines. */
  readonly lines: string[];
  /** Short label: the first line (without a FlatView number). */
  readonly label: string;
}

/** Splits a dump into canonical blocks. */
export function canonicalBlocks(text: string): Block[] {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const blocks: Block[] = [];
  let cur: string[] = [];
  const flush = () => {
    if (!cur.length) return;
    let ls = cur;
    if (/^FlatView #\d+$/.test(ls[0]!)) {
      const as = ls.filter((l) => l.startsWith(' AS "')).sort();
      const rest = ls.slice(1).filter((l) => !l.startsWith(' AS "'));
      ls = ['FlatView', ...as, ...rest];
    }
    const label =
      ls[0] === 'FlatView'
        ? `FlatView (${
            ls
              .slice(1)
              .find((l) => l.startsWith(' Root memory region:'))
              ?.trim() ?? '?'
          })`
        : ls[0]!;
    blocks.push({ key: ls.join('\n'), lines: ls, label });
    cur = [];
  };
  for (const l of lines) {
    if (l === '') flush();
    else cur.push(l);
  }
  flush();
  return blocks;
}

function describe(only: Block, side: string, other: Block[]): string {
  // The most similar block on the other side: same first line (or same root line) if any.
  const peer =
    other.find(
      (b) => b.label === only.label && b.lines.slice(0, 4).join() === only.lines.slice(0, 4).join(),
    ) ?? other.find((b) => b.label === only.label);
  const head = `block only in ${side}: ${only.label}`;
  if (!peer)
    return `${head}\n${only.lines
      .slice(0, 6)
      .map((l) => `  ${l}`)
      .join('\n')}`;
  const n = Math.max(only.lines.length, peer.lines.length);
  for (let i = 0; i < n; i++) {
    const a = only.lines[i];
    const b = peer.lines[i];
    if (a !== b) {
      const sa = side;
      const sb = side === 'A' ? 'B' : 'A';
      return `${head}\n  line ${i + 1} of the block:\n  ${sa}: ${a ?? '(end of block)'}\n  ${sb}: ${b ?? '(end of block)'}`;
    }
  }
  return head;
}

/**
 * Compares two `info mtree` texts (both tree form or both flat form) as QEMU's output should be
 * compared: block order, FlatView numbers and the order of a FlatView's ` AS` lines are ignored.
 */
export function compareMtreeText(a: string, b: string): CompareResult {
  const ba = canonicalBlocks(a);
  const bb = canonicalBlocks(b);
  const count = new Map<string, number>();
  for (const x of bb) count.set(x.key, (count.get(x.key) ?? 0) + 1);
  const onlyA: Block[] = [];
  for (const x of ba) {
    const n = count.get(x.key) ?? 0;
    if (n > 0) count.set(x.key, n - 1);
    else onlyA.push(x);
  }
  const onlyB = bb.filter((x) => {
    const n = count.get(x.key) ?? 0;
    if (n > 0) {
      count.set(x.key, n - 1);
      return true;
    }
    return false;
  });
  if (!onlyA.length && !onlyB.length) return { equal: true };
  const firstDifference = onlyA.length ? describe(onlyA[0]!, 'A', onlyB) : describe(onlyB[0]!, 'B', onlyA);
  return { equal: false, firstDifference };
}
