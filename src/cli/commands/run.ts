/**
 * @module cli/commands/run
 * `memtree run riscv-virt [OPTIONS]`: boots QEMU 7.2's riscv64 `virt` machine on memtree, with
 * QEMU's options where they make sense. The guest's UART is standard output and standard input;
 * the process exits with the status the guest writes to sifive_test when it powers off.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { MemtreeError } from '../../core/errors.js';
import { bootRiscvVirt } from '../../machines/riscv/boot.js';
import { buildRiscvVirt, type RiscvVirtMachine } from '../../machines/riscv/virt.js';
import { formatFlat } from '../../mtree/print.js';
import { type CliIo, type Command, UsageError } from '../command.js';
import { describeFsError, isSystemError } from '../text.js';
import { parseCommandArgs } from './flat.js';
import { attachQmp, type RunControl } from './run-qmp.js';
import { attachViewer } from './run-serve.js';

/** Where Debian's qemu-system-data installs the OpenSBI image QEMU loads for `-bios default`. */
export const DEFAULT_BIOS = '/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin';

const help = `Usage: memtree run riscv-virt [OPTIONS]

Builds QEMU 7.2's riscv64 \`virt\` machine on memtree (the same memory map as
\`qemu-system-riscv64 -M virt -nodefaults\` with the same -m and -smp), loads
the firmware, kernel, initrd and device tree as QEMU does, and runs its RV64GC
harts. The guest's serial port is this terminal: its output goes to standard
output, standard input goes to it (Ctrl-A x quits). When the guest powers off
through the SiFive test device, memtree exits with the guest's status.

Options (QEMU's single-dash spellings are accepted too: -m, -smp, -bios, ...):
  -m, --memory SIZE   RAM size: a number of MiB or a size with B, K, M, G or T,
                      rounded up to 8 KiB as QEMU does (default 128M)
  --smp N             number of harts, 1 to 512 (default 1)
  --bios FILE|default|none
                      M-mode firmware (default: ${DEFAULT_BIOS})
  --kernel FILE       kernel (ELF or raw image), loaded as QEMU loads -kernel
  --initrd FILE       initial RAM disk
  --append STRING     kernel command line
  --dtb FILE          device tree blob to use instead of the generated one
  --dumpdtb FILE      write the device tree as the guest would get it to FILE
                      and exit (QEMU's -M virt,dumpdtb=FILE)
  --mtree             print the machine's \`info mtree -f\` and exit
  --max-insns N       stop after N guest instructions, counting each trap taken
                      as one (exit status 3)
  --rtc base=utc|localtime|DATETIME[,clock=vm]
                      the RTC's time at power-on, as QEMU's -rtc: now (utc, the
                      default), the host's local time, or a fixed date such as
                      2006-06-17T16:01:21 or 2006-06-17; the RTC then follows
                      the machine's virtual clock (QEMU's clock=vm)
  --rng-seed HEX      the 32 bytes of /chosen/rng-seed (64 hex digits) instead
                      of fresh random ones; with a fixed --rtc base the boot
                      is then the same, instruction for instruction, every time
  --qmp unix:PATH|tcp:HOST:PORT
                      serve QEMU's QMP there (loopback if HOST is empty):
                      query-status, stop, cont, system_reset, quit, migrate,
                      query-migrate, human-monitor-command 'info mtree -f', ...
  --incoming tcp:HOST:PORT|unix:PATH
                      wait for a live migration from another memtree run,
                      as QEMU's -incoming (the guest starts once it arrived)
  -S                  do not start the harts until QMP 'cont' (as QEMU's -S)
  --serve [HOST:]PORT the web viewer (as 'memtree serve') on this machine while
                      it runs: its address spaces, and per RAM block the pages
                      written since the page's last refresh (HOST: 127.0.0.1)

Example:
  memtree run riscv-virt -m 256M --kernel Image --initrd initrd.gz --append console=ttyS0
`;

/** The virt machine's RAM without -m (its default_ram_size). */
const DEFAULT_RAM_SIZE = 128 * 2 ** 20;

/**
 * QEMU's -m syntax (qemu_strtosz with MiB as the default unit): a whole or decimal number, then
 * optionally B, K, M, G, T, P or E. The size is then
 * rounded up to 8 KiB, as machine_set_mem does, so `-m 1001K` gives 1008 KiB of RAM; 0 is the
 * default size.
 */

export function parseRamSize(s: string): number {
  const m = /^(\d+)(\.\d+)?([BKMGTPE])?$/i.exec(s.trim());
  const unitOf = { B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50, E: 2 ** 60 };
  const unit = m ? unitOf[(m[3] ?? 'M').toUpperCase() as keyof typeof unitOf] : 0;
  // A fraction needs an explicit unit above B: QEMU first reads the option in bytes.
  if (!m || (m[2] && (m[3] === undefined || unit === 1)))
    throw new UsageError(`-m wants a size such as 512M or 2G, not '${s}'`);
  // do_strtosz rounds a fraction's half up; 8 KiB alignment (QEMU_ALIGN_UP) follows.
  const bytes = Math.ceil(Math.floor(Number(`${m[1]}${m[2] ?? ''}`) * unit + 0.5) / 8192) * 8192;
  // parse_memory_options passes a size of 0 on as no size at all: the machine's default
  if (bytes === 0) return DEFAULT_RAM_SIZE;
  if (bytes > 2 ** 44) throw new UsageError(`-m ${s}: the RAM size must be at most 16 TiB`);
  return bytes;
}

/**
 * QEMU's `-rtc` (configure_rtc): the RTC's wall-clock time at virtual time 0, in ns since the epoch.
 * `base=utc` is now, `base=localtime` now as the host's local time, `base=DATETIME` a fixed start
 * (configure_rtc_base_datetime's two formats, read as UTC). memtree's RTC always runs on the
 * virtual clock, which is QEMU's `clock=vm`; the host clocks would make a boot unrepeatable.
 */
export function parseRtc(spec: string, nowMs: number): bigint {
  let base: string | undefined;
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    if (key === 'base') base = value;
    else if (key === 'clock') {
      if (value !== 'vm') {
        throw new UsageError(
          `--rtc clock=${value}: memtree's RTC follows the machine's virtual clock, clock=vm (the host clocks would make runs differ)`,
        );
      }
    } else if (key === 'driftfix') {
      if (value !== 'none' && value !== 'slew') throw new UsageError(`--rtc driftfix=${value}: none or slew`);
    } else throw new UsageError(`--rtc: unknown setting '${part}' (base=, clock=vm)`);
  }
  if (base === undefined || base === 'utc') return BigInt(Math.floor(nowMs / 1000)) * 1_000_000_000n;
  if (base === 'localtime') {
    const offsetMs = -new Date(nowMs).getTimezoneOffset() * 60_000;
    return BigInt(Math.floor((nowMs + offsetMs) / 1000)) * 1_000_000_000n;
  }
  const m = /^(\d+)-(\d+)-(\d+)(?:T(\d+):(\d+):(\d+))?$/.exec(base);
  if (!m) {
    throw new UsageError(`--rtc base=${base}: a date wants the form 2006-06-17T16:01:21 or 2006-06-17`);
  }
  const [y, mo, d, h, mi, sec] = m.slice(1).map((x) => Number(x ?? 0)) as number[];
  if (y! > 9999) throw new UsageError(`--rtc base=${base}: years go up to 9999`);
  // mktimegm normalizes out-of-range fields (month 13 is next January), as Date.UTC does.
  const ms = Date.UTC(y!, mo! - 1, d!, h!, mi!, sec!);
  if (!Number.isFinite(ms) || ms < 0) throw new UsageError(`--rtc base=${base}: not a date from 1970 on`);
  return BigInt(ms) * 1_000_000n;
}

/** `--rng-seed`: 64 hex digits, the 32 bytes of /chosen/rng-seed. */
export function parseRngSeed(s: string): Uint8Array {
  if (!/^[0-9a-fA-F]{64}$/.test(s))
    throw new UsageError(`--rng-seed wants 64 hex digits (32 bytes), not '${s}'`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/** Where each hart is, for the --max-insns stop: its pc and privilege level. */
function whereHartsAre(m: RiscvVirtMachine): string {
  const mode = ['U', 'S', '?', 'M'];
  return m.harts
    .map((h, i) => `hart ${i} at pc 0x${h.getPc().toString(16)} in ${mode[h.privilege]}-mode`)
    .join(', ');
}

function randomSeed(): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(32));
}

/** The `-rtc base=` date of an epoch time, to the second. */
function isoSeconds(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19);
}

function readBinary(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    if (isSystemError(e))
      throw new MemtreeError('ERR_IO', `cannot read the ${what} ${path}: ${describeFsError(e)}`);
    throw e;
  }
}

/** Standard input as the run command sees it: data events, and raw mode on a terminal. */
interface RunInput {
  on(event: 'data', fn: (b: Buffer) => void): unknown;
  on(event: 'end', fn: () => void): unknown;
  removeAllListeners(event?: string): unknown;
  pause(): unknown;
  resume(): unknown;
  isTTY?: boolean;
  setRawMode?(raw: boolean): unknown;
}

/** A CliIo that may bring its own standard input (tests); otherwise the process's is used. */
export interface RunIo extends CliIo {
  stdin?: RunInput | null;
}

const CTRL_A = 0x01;

/** The `run` command. */
export const runCommand: Command = {
  name: 'run',
  summary: "boot QEMU's riscv64 virt machine on memtree (firmware, kernel, UART on the terminal)",
  help,
  async run(args: string[], io: CliIo): Promise<number> {
    const norm = args.map((a) =>
      /^-(m|smp|bios|kernel|initrd|append|dtb|dumpdtb|mtree|qmp|incoming|S|rtc)$/.test(a) ? `-${a}` : a,
    );
    const { values, positionals } = parseCommandArgs(norm, {
      options: {
        memory: { type: 'string' },
        m: { type: 'string' },
        smp: { type: 'string' },
        bios: { type: 'string' },
        kernel: { type: 'string' },
        initrd: { type: 'string' },
        append: { type: 'string' },
        dtb: { type: 'string' },
        dumpdtb: { type: 'string' },
        mtree: { type: 'boolean' },
        'max-insns': { type: 'string' },
        rtc: { type: 'string' },
        'rng-seed': { type: 'string' },
        qmp: { type: 'string' },
        incoming: { type: 'string' },
        S: { type: 'boolean' },
        serve: { type: 'string' },
      },
      allowPositionals: true,
    });
    if (positionals.length !== 1 || positionals[0] !== 'riscv-virt') {
      throw new UsageError(
        positionals.length === 0
          ? 'which machine? the only one is riscv-virt'
          : `unknown machine '${positionals.join(' ')}' (the only one is riscv-virt)`,
      );
    }
    const ramSize = parseRamSize(values.memory ?? values.m ?? '128M');
    const smpText = values.smp ?? '1';
    if (!/^\d+$/.test(smpText) || Number(smpText) < 1 || Number(smpText) > 512) {
      throw new UsageError(`--smp wants a number of harts from 1 to 512, not '${smpText}'`);
    }
    let maxInsns = Number.POSITIVE_INFINITY;
    if (values['max-insns'] !== undefined) {
      if (!/^\d+$/.test(values['max-insns'])) throw new UsageError('--max-insns wants a whole number');
      maxInsns = Number(values['max-insns']);
    }
    // vl.c refuses both without -kernel: there is nothing to pass them to
    for (const opt of ['initrd', 'append'] as const) {
      if (values[opt] !== undefined && values.kernel === undefined) {
        throw new UsageError(`--${opt} needs --kernel (as in QEMU)`);
      }
    }
    const rtcEpochNs = parseRtc(values.rtc ?? 'base=utc', Date.now());
    const rngSeed = values['rng-seed'] !== undefined ? parseRngSeed(values['rng-seed']) : randomSeed();
    const dec = new TextDecoder('utf-8');
    let pending: number[] = [];
    const flush = () => {
      if (pending.length) {
        io.stdout.write(dec.decode(new Uint8Array(pending), { stream: true }));
        pending = [];
      }
    };
    const m = buildRiscvVirt({
      ramSize,
      smp: Number(smpText),
      rtcEpochNs,
      uartSink: (b) => {
        pending.push(b);
        if (pending.length >= 4096) flush();
      },
    });
    if (values.mtree) {
      io.stdout.write(formatFlat(m.ms));
      return 0;
    }
    const biosOpt = values.bios ?? 'default';
    const bios =
      biosOpt === 'none' ? null : readBinary(biosOpt === 'default' ? DEFAULT_BIOS : biosOpt, 'firmware');
    let boot: ReturnType<typeof bootRiscvVirt>;
    try {
      boot = bootRiscvVirt(m, {
        bios,
        kernel: values.kernel !== undefined ? readBinary(values.kernel, 'kernel') : undefined,
        initrd: values.initrd !== undefined ? readBinary(values.initrd, 'initrd') : undefined,
        append: values.append,
        dtb: values.dtb !== undefined ? readBinary(values.dtb, 'device tree') : undefined,
        rngSeed,
      });
    } catch (e) {
      // Only the --dtb file is parsed as a blob; name it.
      if (e instanceof MemtreeError && e.code === 'ERR_PARSE' && values.dtb !== undefined) {
        throw new MemtreeError('ERR_PARSE', `--dtb ${values.dtb}: ${e.message}`);
      }
      throw e;
    }
    if (values.dumpdtb !== undefined) {
      // qemu_fdt_dumpdtb: the whole buffer riscv_load_fdt copies to the guest, then exit.
      try {
        writeFileSync(values.dumpdtb, boot.fdtImage);
      } catch (e) {
        if (isSystemError(e))
          throw new MemtreeError('ERR_IO', `cannot write ${values.dumpdtb}: ${describeFsError(e)}`);
        throw e;
      }
      io.stderr.write(`memtree run: dtb dumped to ${values.dumpdtb}\n`);
      return 0;
    }
    // What a --max-insns stop prints, so that the same boot can be run again to look at it.
    const replay = `--rtc base=${isoSeconds(rtcEpochNs)} --rng-seed ${Buffer.from(rngSeed).toString('hex')}`;
    const runIo = io as RunIo;
    const stdin: RunInput | null =
      runIo.stdin !== undefined ? runIo.stdin : io.stdout === process.stdout ? process.stdin : null;
    const control =
      values.qmp !== undefined || values.incoming !== undefined || values.S
        ? await attachQmp(m, {
            qmp: values.qmp,
            incoming: values.incoming,
            startPaused: values.S,
            announce: (l) => io.stderr.write(l),
          })
        : null;
    let viewer: Awaited<ReturnType<typeof attachViewer>> | null = null;
    try {
      if (values.serve !== undefined) {
        viewer = await attachViewer(m, values.serve);
        io.stderr.write(`memtree run: viewer on ${viewer.url}\n`);
      }
      return await runMachine(m, stdin, flush, maxInsns, io, control, viewer !== null, replay);
    } finally {
      await viewer?.close();
      await control?.close();
    }
  },
};

/** The host side of the machine: runs it in slices, feeding input and yielding to the event loop. */
async function runMachine(
  m: RiscvVirtMachine,
  stdin: RunInput | null,
  flush: () => void,
  maxInsns: number,
  io: CliIo,
  control: RunControl | null = null,
  serving = false,
  replay = '',
): Promise<number> {
  let wake: (() => void) | null = null;
  let quit = false;
  let ended = stdin === null;
  let ctrlA = false;
  if (stdin) {
    if (stdin.isTTY && stdin.setRawMode) stdin.setRawMode(true);
    stdin.on('data', (buf: Buffer) => {
      for (const b of buf) {
        if (ctrlA) {
          ctrlA = false;
          if (b === 0x78 /* x */) quit = true;
          else m.input.push(b);
        } else if (b === CTRL_A) ctrlA = true;
        else m.input.push(b);
      }
      wake?.();
    });
    stdin.on('end', () => {
      ended = true;
      wake?.();
    });
    stdin.resume();
  }
  try {
    let ran = 0;
    for (;;) {
      if (control) {
        // stopped, waiting for a migration, or migrated away: only QMP can change that
        if (control.quitRequested || quit) return 0;
        if (!control.runnable) {
          flush();
          await control.untilRunnable();
          continue;
        }
      }
      const before = m.steps;
      // Shorter slices with QMP or the viewer, so that commands, a migration's passes and the
      // viewer's requests get their turn (100k instructions are a few tens of ms).
      const slice = control ? 20_000 : serving ? 100_000 : 5_000_000;
      const r = m.run(Math.min(slice, maxInsns - ran));
      ran += m.steps - before;
      flush();
      if (r === 'exit') {
        // QEMU sends SHUTDOWN (guest: true) when the guest powers off, before it exits.
        control?.server.guestShutdown();
        return m.exitCode ?? 0;
      }
      if (quit) return 0;
      if (r === 'page' && control) {
        // a postcopy destination's hart touched a page that has not arrived yet
        await control.fetchPage();
        continue;
      }
      if (ran >= maxInsns) {
        io.stderr.write(
          `memtree run: stopped after ${ran} guest instructions and traps (--max-insns) ${whereHartsAre(m)}; the same boot again: ${replay}\n`,
        );
        return 3;
      }
      if (r === 'idle') {
        if (ended && m.input.length === 0 && !control && !serving) {
          io.stderr.write(
            'memtree run: every hart waits for an interrupt that nothing can raise; stopping\n',
          );
          return 1;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          // QMP (quit, stop, a migration) acts from the event loop: look again now and then.
          if (control) setTimeout(resolve, 20);
        });
        wake = null;
      } else {
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  } finally {
    if (stdin) {
      stdin.removeAllListeners('data');
      stdin.removeAllListeners('end');
      if (stdin.isTTY && stdin.setRawMode) stdin.setRawMode(false);
      stdin.pause();
    }
  }
}
