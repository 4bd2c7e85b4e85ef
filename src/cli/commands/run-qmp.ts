/**
 * @module cli/commands/run-qmp
 * `memtree run --qmp SPEC`, `--incoming SPEC` and `-S`: the riscv64 virt machine behind a
 * {@link QmpServer}, so it can be stopped, inspected and live-migrated as a QEMU is. The run loop
 * asks {@link RunControl} whether the harts may run; the server flips that as QEMU's run state
 * changes. The machine's non-RAM state (clock, harts, devices: machines/riscv/virt-state) travels
 * in the memtree-machine section.
 */

import type { RiscvVirtMachine } from '../../machines/riscv/virt.js';
import { loadVirtState, saveVirtState } from '../../machines/riscv/virt-state.js';
import type { PostcopyPages } from '../../migration/incoming.js';
import { type QmpMachine, QmpServer } from '../../qmp/server.js';

/** What the run loop needs to know from the QMP side. */
export interface RunControl {
  readonly server: QmpServer;
  /** The harts may run. */
  readonly runnable: boolean;
  /** `quit` was asked for. */
  readonly quitRequested: boolean;
  /** Resolves when the harts may run again or quit was asked for. */
  untilRunnable(): Promise<void>;
  /**
   * Postcopy destination: resolves once the page a hart stopped at (`m.waitingPage`) arrived,
   * having asked the source for it, and clears `waitingPage`.
   */
  fetchPage(): Promise<void>;
  /** Closes the server. */
  close(): Promise<void>;
}

/** Options of {@link attachQmp}. */
export interface AttachOptions {
  readonly qmp?: string;
  readonly incoming?: string;
  /** `-S`: start paused (prelaunch). */
  readonly startPaused?: boolean;
  /** Where the actual addresses are announced (for port 0), e.g. stderr. */
  readonly announce?: (line: string) => void;
}

/** Puts `m` behind a QMP server as the options say. */
export async function attachQmp(m: RiscvVirtMachine, o: AttachOptions): Promise<RunControl> {
  let running = false;
  let quit = false;
  let wake: (() => void) | null = null;
  let pages: PostcopyPages | null = null;
  const kick = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const machine: QmpMachine = {
    ms: m.ms,
    machineType: 'riscv-virt',
    start: () => {
      running = true;
      kick();
    },
    stop: () => {
      running = false;
    },
    reset: () => m.reset(),
    quit: () => {
      quit = true;
      kick();
    },
    saveState: () => saveVirtState(m),
    loadState: (devices) => loadVirtState(m, devices),
    postcopyStart: (p) => {
      pages = p;
      m.startPostcopy((block, offset) => p.has(block, offset));
    },
    postcopyEnd: () => {
      pages = null;
      m.endPostcopy();
    },
  };
  const initialState = o.incoming ? 'inmigrate' : o.startPaused ? 'prelaunch' : 'running';
  const server = new QmpServer(machine, { initialState });
  if (initialState === 'running') running = true;
  if (o.qmp) {
    const a = await server.listen(o.qmp);
    o.announce?.(`memtree run: QMP on ${'path' in a ? `unix:${a.path}` : `tcp:${a.host}:${a.port}`}\n`);
  }
  if (o.incoming) {
    const a = await server.incoming(o.incoming, { autostart: !o.startPaused });
    o.announce?.(
      `memtree run: waiting for a migration on ${'path' in a ? `unix:${a.path}` : `tcp:${a.host}:${a.port}`}\n`,
    );
  }
  return {
    server,
    get runnable() {
      return running;
    },
    get quitRequested() {
      return quit;
    },
    untilRunnable: () =>
      running || quit
        ? Promise.resolve()
        : new Promise<void>((r) => {
            wake = r;
          }),
    fetchPage: async () => {
      const p = m.waitingPage;
      if (p && pages) await pages.ensure(p.block, p.offset, 4096);
      m.waitingPage = null;
    },
    close: () => server.close(),
  };
}
