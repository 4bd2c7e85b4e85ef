/**
 * @module machines/riscv/devices/clock
 * The machine's virtual clock, standing in for QEMU's QEMU_CLOCK_VIRTUAL. memtree's virt machine is
 * deterministic: time advances with the instructions the harts run (a fixed number of nanoseconds
 * per instruction) and jumps to the next timer deadline when every hart waits for an interrupt, as
 * QEMU's `-icount shift=N,sleep=off` does. So the same images always print the same output.
 */

/** Nanoseconds of virtual time, a plain number (exact for 104 days). */
export class VirtualClock {
  /** Current virtual time in nanoseconds. */
  ns = 0;
  /** Timers: callbacks due at an absolute virtual time (QEMU `timer_mod`). */
  private readonly timers: Array<{ at: number; fn: () => void; id: object }> = [];

  /** Arms (or re-arms) the timer `id` to fire `fn` when the clock reaches `at` ns. */
  mod(id: object, at: number, fn: () => void): void {
    this.del(id);
    this.timers.push({ at, fn, id });
  }

  /** Disarms the timer `id` (QEMU `timer_del`). */
  del(id: object): void {
    const i = this.timers.findIndex((t) => t.id === id);
    if (i >= 0) this.timers.splice(i, 1);
  }

  /** The deadline of the timer `id`, or null when it is not armed (what a device migrates). */
  deadline(id: object): number | null {
    const t = this.timers.find((x) => x.id === id);
    return t ? t.at : null;
  }

  /**
   * Sets the time of a machine whose state arrives by migration: every timer is disarmed (the
   * devices re-arm theirs from their own migrated state) and the clock reads `ns`, whichever way.
   */
  restore(ns: number): void {
    this.timers.length = 0;
    this.ns = ns;
  }

  /** The earliest armed deadline, or Infinity. */
  nextDeadline(): number {
    let m = Number.POSITIVE_INFINITY;
    for (const t of this.timers) if (t.at < m) m = t.at;
    return m;
  }

  /** Moves time forward to `ns` and fires every timer that fell due, in deadline order. */
  advanceTo(ns: number): void {
    if (ns > this.ns) this.ns = ns;
    for (;;) {
      let best = -1;
      for (let i = 0; i < this.timers.length; i++) {
        const t = this.timers[i]!;
        if (t.at <= this.ns && (best < 0 || t.at < this.timers[best]!.at)) best = i;
      }
      if (best < 0) return;
      const [t] = this.timers.splice(best, 1);
      t!.fn();
    }
  }
}
