/**
 * @module mtree/names/table
 * What QEMU's source says about the regions it creates under fixed names (generated per QEMU
 * version by scripts/gen-mtree-names.mjs), and the lookup the rebuild uses from the text alone.
 */

/** One QEMU version's table of region names by kind. */
export interface QemuNameTable {
  readonly version: string;
  /** Created with `memory_region_init` only: pure containers. */
  readonly containers: readonly string[];
  /** Created with an I/O kind only: terminating regions (device registers, reservations). */
  readonly io: readonly string[];
  /** Created with both kinds somewhere in QEMU: the name does not tell. */
  readonly ambiguous: readonly string[];
  /** Regular expressions (whole name) of printf-built container names. */
  readonly containerPatterns: readonly string[];
  /** Regular expressions (whole name) of printf-built I/O names. */
  readonly ioPatterns: readonly string[];
  /** Alias names QEMU makes read-only right after creating them. */
  readonly readonlyAliases: readonly string[];
  /**
   * Containers named after their device's QOM type that hold the device's register block, an I/O
   * region named after the same type (hw/core/register.c `register_init_block`).
   */
  readonly blockContainers: readonly string[];
  /**
   * Region names in the order QEMU creates them, per board that makes them in a loop over its
   * memory map table (`create_unimplemented_device` over `map[i]`).
   */
  readonly creationOrders: readonly (readonly string[])[];
  /** `NAME/SIZE` (hex) of ambiguous names that QEMU creates as containers only at that size. */
  readonly containersBySize: readonly string[];
  /** `NAME/SIZE` (hex) of ambiguous names that QEMU creates with an I/O kind only at that size. */
  readonly ioBySize: readonly string[];
}

/** A compiled {@link QemuNameTable}. */
export class NameKinds {
  private readonly containers: Set<string>;
  private readonly io: Set<string>;
  private readonly ambiguous: Set<string>;
  private readonly containerRe: RegExp | null;
  private readonly ioRe: RegExp | null;
  private readonly readonly: Set<string>;
  private readonly blockContainers: Set<string>;
  private readonly containersBySize: Set<string>;
  private readonly ioBySize: Set<string>;
  private readonly creationOrders: ReadonlyArray<ReadonlyMap<string, number>>;

  constructor(table: QemuNameTable) {
    this.containers = new Set(table.containers);
    this.io = new Set(table.io);
    this.ambiguous = new Set(table.ambiguous);
    const join = (p: readonly string[]) => (p.length ? new RegExp(`^(?:${p.join('|')})$`, 's') : null);
    this.containerRe = join(table.containerPatterns);
    this.ioRe = join(table.ioPatterns);
    this.readonly = new Set(table.readonlyAliases);
    this.blockContainers = new Set(table.blockContainers);
    this.containersBySize = new Set(table.containersBySize);
    this.ioBySize = new Set(table.ioBySize);
    this.creationOrders = table.creationOrders.map((o) => new Map(o.map((n, i) => [n, i])));
  }

  /**
   * Whether QEMU creates the region named `a` after the one named `b` (true), before it (false), or
   * the table does not say (undefined; also when two boards disagree).
   */
  createdLater(a: string, b: string): boolean | undefined {
    let verdict: boolean | undefined;
    for (const order of this.creationOrders) {
      const ia = order.get(a);
      const ib = order.get(b);
      if (ia === undefined || ib === undefined) continue;
      if (verdict !== undefined && verdict !== ia > ib) return undefined;
      verdict = ia > ib;
    }
    return verdict;
  }

  /**
   * Whether a region of this name that holds a same-named one is a device's container around its
   * register block (the inner one terminates, the outer one does not).
   */
  holdsOwnRegisterBlock(name: string): boolean {
    return this.blockContainers.has(name);
  }

  /**
   * Whether QEMU creates a region of this name (and `size`, when given) as a terminating I/O region
   * (true), as a container (false), or the source does not settle it (undefined).
   */
  terminates(name: string, size?: bigint): boolean | undefined {
    if (this.io.has(name)) return true;
    if (this.containers.has(name)) return false;
    if (this.ambiguous.has(name)) {
      if (size === undefined) return undefined;
      const key = `${name}/${size.toString(16)}`;
      if (this.ioBySize.has(key)) return true;
      if (this.containersBySize.has(key)) return false;
      return undefined;
    }
    const c = this.containerRe?.test(name) ?? false;
    const i = this.ioRe?.test(name) ?? false;
    return c === i ? undefined : i;
  }

  /** Whether QEMU makes an alias of this name read-only when it creates it. */
  readonlyAlias(name: string): boolean {
    return this.readonly.has(name);
  }
}
