/**
 * @module mtree/parse
 * Readers for the text of QEMU 7.2's `info mtree` monitor command: the tree form (`info mtree`,
 * `info mtree -D`) and the flat form (`info mtree -f`, optionally with `-d`).
 *
 * The readers only split the text into its parts (address-space groups, `memory-region:`
 * sections, region lines, FlatView blocks, flat ranges); turning a tree dump back into regions is
 * the job of `mtree/rebuild`. Names are free-form in QEMU (spaces, brackets and `@` all occur), so
 * every line is read from both ends (spec R14.2): the fixed-format head (`start-end (prio P,
 * TYPE): `) from the left, the optional ` [disabled]` and the alias window from the right, and what
 * is left is the name.
 */

import { MemtreeError } from '../core/errors.js';

/** A dump could not be read: the message names the source, the line number and the line. */
export class ParseError extends MemtreeError {
  /** 1-based line number of the offending line (0 when the problem is not tied to one line). */
  readonly line: number;
  /** Name of the input (file name, `-`, or whatever the caller passed). */
  readonly source: string;

  constructor(source: string, line: number, text: string, why: string) {
    super('ERR_PARSE', line > 0 ? `${source}:${line}: ${why}: ${JSON.stringify(text)}` : `${source}: ${why}`);
    this.line = line;
    this.source = source;
  }
}

/** The type string of a region line (spec 13.3). */
export type MtreeType = 'ram' | 'rom' | 'romd' | 'ramd' | 'i/o';

/** One region line of a tree dump. */
export interface RegionLine {
  /** 1-based line number in the source. */
  readonly lineNo: number;
  /** The line as printed (without the `[DETECTED OVERFLOW!] ` prefixes). */
  readonly text: string;
  /** Nesting depth: 1 for the top line of a block. */
  readonly level: number;
  /** Printed start (absolute within the block's tree). */
  readonly start: bigint;
  /** Printed end (inclusive; equal to start for both 1-byte and 0-byte regions). */
  readonly end: bigint;
  readonly priority: number;
  /** `nv-` prefix: the region's own non-volatile flag. */
  readonly nonvolatile: boolean;
  /** Printed type; for an alias, the type of the region at the end of its chain. */
  readonly type: MtreeType;
  /** Printed name (`(null)` for an unnamed region). */
  readonly name: string;
  /** Present for alias lines. */
  readonly alias?: {
    /** Printed name of the alias target. */
    readonly target: string;
    /** Printed alias window, inclusive. */
    readonly offset: bigint;
    readonly offsetEnd: bigint;
  };
  /** ` [disabled]` suffix (only printed with `-D`). */
  readonly disabled: boolean;
  /**
   * Printed as `container`: QEMU 11 prints so a region (or an alias of one) that is in no
   * container; it says nothing about whether the region terminates. `type` reads it as `i/o`.
   */
  readonly container?: boolean;
  /** The owner suffix of `info mtree -o` (` owner:{…}`, ` parent:{…}`, ` orphan`), without the leading space. */
  readonly owner?: string;
  /** Number of `[DETECTED OVERFLOW!] ` markers in front of the line. */
  readonly overflow: number;
}

/** A region line with its children, as nested in the text. */
export interface TreeNode {
  readonly line: RegionLine;
  readonly children: TreeNode[];
}

/** An `address-space:` group or a `memory-region:` section. */
export interface TreeBlock {
  readonly kind: 'address-space' | 'memory-region';
  /** Address-space names of the group (sorted as printed), or the one section name. */
  readonly names: string[];
  /** Line number of the first header line. */
  readonly lineNo: number;
  /**
   * Top-level lines of the tree. Normally exactly one; without `-D` a hidden disabled top region
   * leaves its children at level 2 with no level-1 line, and the reader keeps them here as
   * `hiddenTop` children.
   */
  readonly root: TreeNode | null;
  /** Children of a top region that was hidden (disabled, printed without `-D`). */
  readonly hiddenTop: TreeNode[];
}

/** A parsed tree dump (`info mtree` or `info mtree -D`). */
export interface MtreeDump {
  readonly source: string;
  readonly blocks: TreeBlock[];
  /** Whether any line carries ` [disabled]` (then the dump was surely taken with `-D`). */
  readonly hasDisabled: boolean;
  /** Whether any region is printed with the `container` type (newer QEMU). */
  readonly hasContainerType: boolean;
  /** Whether the lines carry `-o` owner suffixes. */
  readonly hasOwners: boolean;
}

/** One flat range line of `info mtree -f`. */
export interface FlatRangeLine {
  readonly lineNo: number;
  readonly text: string;
  readonly start: bigint;
  readonly end: bigint;
  readonly priority: number;
  readonly nonvolatile: boolean;
  /** Printed type (`rom` also for read-only ranges of RAM). */
  readonly type: MtreeType;
  readonly name: string;
  /** Offset in the region (0 when not printed). */
  readonly offset: bigint;
  /** The owner suffix of `info mtree -f -o`, without the leading space. */
  readonly owner?: string;
  /** The accelerator suffix (` KVM`, once per address space of the view that KVM maps it in). */
  readonly accel?: string;
}

/** One ` AS "..", root: ..` line. */
export interface FlatAsLine {
  readonly name: string;
  readonly root: string;
  /** Printed when the address space's root is an alias: the alias target's name. */
  readonly rootAlias?: string;
}

/** One `FlatView #n` block. */
export interface FlatViewBlock {
  readonly lineNo: number;
  /** The printed number (arbitrary in QEMU). */
  readonly number: number;
  readonly spaces: FlatAsLine[];
  /** ` Root memory region:` name, null for `(none)`. */
  readonly root: string | null;
  readonly ranges: FlatRangeLine[];
  /** The raw lines of the ` Dispatch` subsection (`-f -d`), if any. */
  readonly dispatch: string[];
}

/** A parsed flat dump (`info mtree -f [-d]`). */
export interface FlatDump {
  readonly source: string;
  readonly views: FlatViewBlock[];
}

const OVERFLOW = '[DETECTED OVERFLOW!] ';
const HEAD = /^([0-9a-f]{16})-([0-9a-f]{16}) \(prio (-?\d+), (nv-)?(ram|rom|romd|ramd|i\/o|container)\): /;
/** `-o` owner suffixes (QEMU `mtree_print_mr_owner`): ` orphan`, ` owner:{…}`, ` parent:{…}`. */
const OWNER = / (?:orphan|owner:\{[^{}]*\}(?: parent:\{[^{}]*\})?|parent:\{[^{}]*\})$/;
const WINDOW = / ([0-9a-f]{16})-([0-9a-f]{16})$/;
const DISABLED = ' [disabled]';

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

function stripOverflow(raw: string): { line: string; overflow: number } {
  let line = raw;
  let overflow = 0;
  while (line.startsWith(OVERFLOW)) {
    line = line.slice(OVERFLOW.length);
    overflow++;
  }
  return { line, overflow };
}

interface RawRegion {
  lineNo: number;
  text: string;
  level: number;
  start: bigint;
  end: bigint;
  priority: number;
  nonvolatile: boolean;
  type: MtreeType;
  container: boolean;
  rest: string;
  owner: string | undefined;
  overflow: number;
}

/** Splits an `-o` owner suffix off the end of a line's rest. */
function splitOwner(rest: string): { rest: string; owner: string | undefined } {
  const o = OWNER.exec(rest);
  return o ? { rest: rest.slice(0, o.index), owner: o[0].slice(1) } : { rest, owner: undefined };
}

/**
 * Reads an `info mtree [-D]` dump. `source` names the input in error messages. Alias lines are
 * split at the ` @` whose right side names a region known to the dump (a `memory-region:` section
 * or a printed region), preferring the rightmost.
 */
export function parseMtreeText(text: string, source = '<input>'): MtreeDump {
  const lines = splitLines(text);
  type RawBlock = { kind: TreeBlock['kind']; names: string[]; lineNo: number; regions: RawRegion[] };
  const raw: RawBlock[] = [];
  let cur: RawBlock | null = null;
  let hasContainerType = false;
  let hasOwners = false;
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const { line, overflow } = stripOverflow(lines[i]!);
    if (line === '') {
      cur = null;
      continue;
    }
    const fail = (why: string): never => {
      throw new ParseError(source, lineNo, lines[i]!, why);
    };
    const header = /^(address-space|memory-region): (.*)$/.exec(line);
    if (header) {
      const kind = header[1] as TreeBlock['kind'];
      if (cur && cur.regions.length === 0 && cur.kind === 'address-space' && kind === 'address-space') {
        cur.names.push(header[2]!);
        continue;
      }
      if (cur) fail('header line inside a block (missing blank line?)');
      cur = { kind, names: [header[2]!], lineNo, regions: [] };
      raw.push(cur);
      continue;
    }
    if (line.startsWith('FlatView #')) fail('this is an `info mtree -f` dump, not a tree dump');
    const indent = /^ */.exec(line)![0].length;
    const body = line.slice(indent);
    const m = HEAD.exec(body);
    if (!m) fail('not a region line, header or blank line');
    if (!cur) fail('region line outside an address-space: or memory-region: block');
    if (indent === 0 || indent % 2 !== 0) fail('indentation is not a positive multiple of two spaces');
    const container = m![5] === 'container';
    const { rest, owner } = splitOwner(body.slice(m![0].length));
    if (container) hasContainerType = true;
    if (owner !== undefined) hasOwners = true;
    cur!.regions.push({
      lineNo,
      text: line,
      level: indent / 2,
      start: BigInt(`0x${m![1]}`),
      end: BigInt(`0x${m![2]}`),
      priority: Number(m![3]),
      nonvolatile: m![4] !== undefined,
      type: container ? 'i/o' : (m![5] as MtreeType),
      container,
      rest,
      owner,
      overflow,
    });
  }

  // Names a ` @` split may point at: section names and the names of non-alias lines.
  const known = new Set<string>();
  for (const b of raw) {
    if (b.kind === 'memory-region') known.add(b.names[0]!);
    for (const r of b.regions) if (!r.rest.startsWith('alias ')) known.add(stripDisabled(r.rest).name);
  }

  let hasDisabled = false;
  const blocks: TreeBlock[] = raw.map((b) => {
    const stack: TreeNode[] = [];
    let root: TreeNode | null = null;
    const hiddenTop: TreeNode[] = [];
    for (const r of b.regions) {
      const line = toRegionLine(r, known, source);
      if (line.disabled) hasDisabled = true;
      const node: TreeNode = { line, children: [] };
      // The parent is the nearest open line of a smaller level. A jump of more than one level
      // means hidden (disabled) regions in between; their children are kept under the nearest
      // visible ancestor and marked by their level (the rebuild inserts placeholders).
      while (stack.length && stack[stack.length - 1]!.line.level >= line.level) stack.pop();
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(node);
      else if (line.level === 1) {
        if (root) {
          throw new ParseError(source, r.lineNo, r.text, 'a second top-level region in one block');
        }
        root = node;
      } else {
        if (root) throw new ParseError(source, r.lineNo, r.text, 'region line after the block tree ended');
        hiddenTop.push(node);
      }
      stack.push(node);
    }
    if (!root && hiddenTop.length === 0) {
      if (b.kind === 'address-space') {
        throw new ParseError(
          source,
          b.lineNo,
          `address-space: ${b.names[0]}`,
          'address-space group without a tree',
        );
      }
    }
    return { kind: b.kind, names: b.names, lineNo: b.lineNo, root, hiddenTop };
  });
  return { source, blocks, hasDisabled, hasContainerType, hasOwners };
}

function stripDisabled(rest: string): { name: string; disabled: boolean } {
  return rest.endsWith(DISABLED)
    ? { name: rest.slice(0, -DISABLED.length), disabled: true }
    : { name: rest, disabled: false };
}

function toRegionLine(r: RawRegion, known: Set<string>, source: string): RegionLine {
  const { name: body, disabled } = stripDisabled(r.rest);
  const base = {
    lineNo: r.lineNo,
    text: r.text,
    level: r.level,
    start: r.start,
    end: r.end,
    priority: r.priority,
    nonvolatile: r.nonvolatile,
    type: r.type,
    disabled,
    overflow: r.overflow,
    ...(r.container ? { container: true } : {}),
    ...(r.owner !== undefined ? { owner: r.owner } : {}),
  };
  if (!body.startsWith('alias ')) return { ...base, name: body };
  const w = WINDOW.exec(body);
  const at = w ? body.slice('alias '.length, w.index) : '';
  const splits: number[] = [];
  for (let k = at.lastIndexOf(' @'); k >= 0; k = k === 0 ? -1 : at.lastIndexOf(' @', k - 1)) splits.push(k);
  if (!w || splits.length === 0) {
    // A region whose name begins with "alias " but is not an alias line.
    if (!w && !body.includes(' @')) return { ...base, name: body };
    throw new ParseError(source, r.lineNo, r.text, 'alias line without "NAME @TARGET START-END"');
  }
  const k = splits.find((s) => known.has(at.slice(s + 2))) ?? splits[0]!;
  return {
    ...base,
    name: at.slice(0, k),
    alias: { target: at.slice(k + 2), offset: BigInt(`0x${w[1]}`), offsetEnd: BigInt(`0x${w[2]}`) },
  };
}

const FLAT_RANGE =
  /^ {2}([0-9a-f]{16})-([0-9a-f]{16}) \(prio (-?\d+), (nv-)?(ram|rom|romd|ramd|i\/o|container)\): (.*)$/;
/** Accelerator marks after a flat range (QEMU `mtree_info_flatview`: ` KVM` per address space). */
const ACCEL = /(?: KVM)+$/;
const OFFSET = / @([0-9a-f]{16})$/;

/** Reads an `info mtree -f` dump (with or without the `-d` Dispatch subsections). */
export function parseFlatText(text: string, source = '<input>'): FlatDump {
  const lines = splitLines(text);
  const views: FlatViewBlock[] = [];
  type Mut = {
    lineNo: number;
    number: number;
    spaces: FlatAsLine[];
    root: string | null | undefined;
    ranges: FlatRangeLine[];
    dispatch: string[];
    state: 'as' | 'ranges' | 'empty' | 'dispatch' | 'done';
  };
  let cur: Mut | null = null;
  const finish = () => {
    if (!cur) return;
    if (cur.root === undefined) {
      throw new ParseError(
        source,
        cur.lineNo,
        `FlatView #${cur.number}`,
        'FlatView without a Root memory region line',
      );
    }
    views.push({
      lineNo: cur.lineNo,
      number: cur.number,
      spaces: cur.spaces,
      root: cur.root,
      ranges: cur.ranges,
      dispatch: cur.dispatch,
    });
    cur = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!;
    const fail = (why: string): never => {
      throw new ParseError(source, lineNo, line, why);
    };
    if (line === '') {
      finish();
      continue;
    }
    const head = /^FlatView #(\d+)$/.exec(line);
    if (head) {
      if (cur) fail('FlatView header inside a block (missing blank line?)');
      cur = {
        lineNo,
        number: Number(head[1]),
        spaces: [],
        root: undefined,
        ranges: [],
        dispatch: [],
        state: 'as',
      };
      continue;
    }
    if (!cur) {
      if (/^(address-space|memory-region): /.test(line))
        fail('this is a tree dump, not an `info mtree -f` dump');
      fail('line outside a FlatView block');
    }
    const c = cur!;
    if (c.state === 'dispatch') {
      c.dispatch.push(line);
      continue;
    }
    if (line.startsWith(' AS "')) {
      if (c.state !== 'as') fail('AS line after the root line');
      const k = line.indexOf('", root: ');
      if (k < 0) fail('AS line without root');
      const name = line.slice(5, k);
      const rootText = line.slice(k + 9);
      const a = rootText.lastIndexOf(', alias ');
      c.spaces.push(
        a >= 0
          ? { name, root: rootText.slice(0, a), rootAlias: rootText.slice(a + 8) }
          : { name, root: rootText },
      );
      continue;
    }
    if (line.startsWith(' Root memory region: ')) {
      if (c.state !== 'as') fail('second root line');
      const r = line.slice(' Root memory region: '.length);
      c.root = r === '(none)' ? null : r;
      c.state = 'ranges';
      continue;
    }
    if (line === '  No rendered FlatView') {
      if (c.state !== 'ranges' || c.ranges.length) fail('unexpected "No rendered FlatView"');
      c.state = 'empty';
      continue;
    }
    if (line === '  Dispatch') {
      if (c.state !== 'ranges' && c.state !== 'empty') fail('Dispatch before the ranges');
      c.dispatch.push(line);
      c.state = 'dispatch';
      continue;
    }
    const m = FLAT_RANGE.exec(line);
    if (!m || c.state !== 'ranges') fail('not a flat range line');
    let name = m![6]!;
    const accel = ACCEL.exec(name);
    if (accel) name = name.slice(0, accel.index);
    const own = splitOwner(name);
    name = own.rest;
    let offset = 0n;
    const o = OFFSET.exec(name);
    if (o) {
      offset = BigInt(`0x${o[1]}`);
      name = name.slice(0, o.index);
    }
    c.ranges.push({
      lineNo,
      text: line,
      start: BigInt(`0x${m![1]}`),
      end: BigInt(`0x${m![2]}`),
      priority: Number(m![3]),
      nonvolatile: m![4] !== undefined,
      type: (m![5] === 'container' ? 'i/o' : m![5]) as MtreeType,
      name,
      offset,
      ...(own.owner !== undefined ? { owner: own.owner } : {}),
      ...(accel ? { accel: accel[0] } : {}),
    });
  }
  finish();
  return { source, views };
}

/** Whether `text` looks like an `info mtree -f` dump rather than a tree dump. */
export function isFlatText(text: string): boolean {
  for (const l of splitLines(text)) {
    if (l === '') continue;
    return l.startsWith('FlatView #');
  }
  return false;
}
