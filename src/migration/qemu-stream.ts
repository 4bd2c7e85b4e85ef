/**
 * @module migration/qemu-stream
 * QEMU's migration stream (migration/savevm.c container, migration/ram.c "ram" section), encoded and
 * decoded without Node imports.
 *
 * Container: `u32 QEVM`, `u32 3`, a configuration record (`0x07`, counted machine name), then
 * section records — START/FULL (`u32 id`, counted idstr, `u32 instance`, `u32 version`) and
 * PART/END (`u32 id`) — each followed by its payload and a footer (`0x7E`, `u32 id`); commands
 * (`0x08`, `u16 cmd`, `u16 len`, data) and `0x00` EOF, after which QEMU appends a JSON description
 * of the device sections (`0x06`, `u32 len`, JSON).
 *
 * RAM payload: `u64` words whose low 12 bits are flags and whose high bits are an offset in a block
 * (or the total RAM size for MEM_SIZE); page records name their block unless CONTINUE says "same
 * block as the previous page record" (spec 12.2). memtree writes exactly what QEMU 7.2 writes for a
 * plain precopy migration (no compression, no XBZRLE, no multifd), and reads the same plus XBZRLE.
 *
 * The decoder reads the "ram" section and commands; the first device section stops it (device
 * state is not ours to interpret) and is reported as skipped, with the names of the other devices
 * taken from QEMU's trailing JSON description when the caller asks for the tail.
 */

import { type ByteReader, ByteWriter, latin1 } from './bytes.js';
import { MigrationError } from './errors.js';

export const QEMU_VM_FILE_MAGIC = 0x5145564d;
export const QEMU_VM_FILE_VERSION = 3;
export const QEMU_VM_FILE_VERSION_COMPAT = 2;

export const QEMU_VM_EOF = 0x00;
export const QEMU_VM_SECTION_START = 0x01;
export const QEMU_VM_SECTION_PART = 0x02;
export const QEMU_VM_SECTION_END = 0x03;
export const QEMU_VM_SECTION_FULL = 0x04;
export const QEMU_VM_SUBSECTION = 0x05;
export const QEMU_VM_VMDESCRIPTION = 0x06;
export const QEMU_VM_CONFIGURATION = 0x07;
export const QEMU_VM_COMMAND = 0x08;
export const QEMU_VM_SECTION_FOOTER = 0x7e;

/** Commands (QEMU `enum qemu_vm_cmd`). */
/**
 * The idstr of memtree's one section for everything that is not RAM (harts, devices, interrupt
 * controllers): a FULL section whose payload is a u32 length and that many bytes of the machine's
 * own versioned encoding (docs/migration.md). QEMU would send one vmstate section per device;
 * memtree machines have no vmstate descriptions, so they travel together.
 */
export const MACHINE_STATE_IDSTR = 'memtree-machine';

export const MIG_CMD_OPEN_RETURN_PATH = 1;
export const MIG_CMD_PING = 2;
export const MIG_CMD_POSTCOPY_ADVISE = 3;
export const MIG_CMD_POSTCOPY_LISTEN = 4;
export const MIG_CMD_POSTCOPY_RUN = 5;
export const MIG_CMD_POSTCOPY_RAM_DISCARD = 6;
export const MIG_CMD_PACKAGED = 7;
export const MIG_CMD_ENABLE_COLO = 8;
export const MIG_CMD_POSTCOPY_RESUME = 9;
export const MIG_CMD_RECV_BITMAP = 10;
/** One past the last command QEMU 7.2 knows (`MIG_CMD_MAX`). */
export const MIG_CMD_MAX = 11;

/**
 * Payload lengths QEMU checks for its fixed-size commands (`mig_cmd_args`; -1: variable). A
 * command of another length is refused as QEMU's `loadvm_process_command` does.
 */
const MIG_CMD_LEN: readonly number[] = [-1, 0, 4, -1, 0, 0, -1, 4, -1, 0, -1];

/**
 * memtree's own commands, numbered far above QEMU's (a QEMU destination refuses them as unknown, so
 * memtree sends them only when an extension is on). CAPS (`u32` flags, `MEMTREE_CAP_*`) comes
 * before the first section; CHECKSUM closes a batch of the integrity check.
 */
export const MIG_CMD_MEMTREE_CAPS = 0x4d54;
/** `u32` CRC-32 and `u32` length of the stream bytes since the previous CHECKSUM, this header included. */
export const MIG_CMD_MEMTREE_CHECKSUM = 0x4d43;
/**
 * The source's go-ahead, four bytes ("MTGO") after the EOF record, sent once the destination said it
 * is ready (with MEMTREE_CAP_CONFIRM_SWITCHOVER).
 */
export const MEMTREE_SWITCHOVER_GO = 0x4d54474f;
/**
 * The first four bytes ("MTRC") on a new connection of a paused postcopy migration: the stream goes
 * on where it broke (postcopy recovery), no header.
 */
export const MEMTREE_RECOVER = 0x4d545243;
/** The destination starts only when the source confirms the switch-over (see incoming.ts). */
export const MEMTREE_CAP_CONFIRM_SWITCHOVER = 1;
/** Batches of the stream carry a CRC-32 (MIG_CMD_MEMTREE_CHECKSUM). */
export const MEMTREE_CAP_INTEGRITY = 2;

/** RAM record flags (QEMU `RAM_SAVE_FLAG_*`). */
export const RAM_SAVE_FLAG_FULL = 0x01;
export const RAM_SAVE_FLAG_ZERO = 0x02;
export const RAM_SAVE_FLAG_MEM_SIZE = 0x04;
export const RAM_SAVE_FLAG_PAGE = 0x08;
export const RAM_SAVE_FLAG_EOS = 0x10;
export const RAM_SAVE_FLAG_CONTINUE = 0x20;
export const RAM_SAVE_FLAG_XBZRLE = 0x40;
export const RAM_SAVE_FLAG_HOOK = 0x80;
export const RAM_SAVE_FLAG_COMPRESS_PAGE = 0x100;

/** Target page size of the RAM stream (x86, ARM and RISC-V with 4 KiB pages). */
export const TARGET_PAGE_SIZE = 4096;
const PAGE_FLAG_MASK = TARGET_PAGE_SIZE - 1;
/** The "ram" section's version; QEMU rejects any other. */
export const RAM_SECTION_VERSION = 4;

const hex = (v: number) => `0x${v.toString(16)}`;

/**
 * The most RAM a stream may declare (all blocks together): 4 TiB. Readers keep bitmaps of 1 bit
 * per page (128 MiB at this size), so a corrupt length must not decide how much memory they take.
 */
export const MAX_STREAM_RAM = 2 ** 42;

/** A RAM block as the stream's MEM_SIZE list describes it. */
export interface StreamBlock {
  readonly id: string;
  /** Used length in bytes. */
  readonly length: number;
}

/** Something that holds guest RAM pages and can be read page by page (a RAM block). */
export interface PageSource {
  readonly idstr: string;
  readonly usedLength: number;
  /** Whether chunk `i` holds memory (false: all zeros, nothing to read). */
  isChunkAllocated(i: number): boolean;
  hostView(offset: number, len: number): Uint8Array;
}

/** Whether `page` (4 KiB, 4-byte aligned) is all zeros. */
export function isZeroPage(page: Uint8Array): boolean {
  if ((page.byteOffset & 3) === 0) {
    const w = new Int32Array(page.buffer, page.byteOffset, page.length >> 2);
    for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
    return true;
  }
  for (let i = 0; i < page.length; i++) if (page[i] !== 0) return false;
  return true;
}

/** Writes the container records of a QEMU stream. */
export class QemuStreamWriter {
  constructor(readonly w: ByteWriter) {}

  /** Magic, version and the configuration record naming the machine type. */
  header(machine: string): void {
    this.w.u32(QEMU_VM_FILE_MAGIC);
    this.w.u32(QEMU_VM_FILE_VERSION);
    this.w.u8(QEMU_VM_CONFIGURATION);
    this.w.u32(machine.length);
    for (let i = 0; i < machine.length; i++) this.w.u8(machine.charCodeAt(i) & 0xff);
  }

  /** A START or FULL section header. */
  sectionStart(type: number, sectionId: number, idstr: string, instanceId: number, versionId: number): void {
    this.w.u8(type);
    this.w.u32(sectionId);
    this.w.countedString(idstr);
    this.w.u32(instanceId);
    this.w.u32(versionId);
  }

  /** A PART or END section header. */
  sectionPart(type: number, sectionId: number): void {
    this.w.u8(type);
    this.w.u32(sectionId);
  }

  footer(sectionId: number): void {
    this.w.u8(QEMU_VM_SECTION_FOOTER);
    this.w.u32(sectionId);
  }

  /** A command record (`qemu_savevm_command_send`). */
  command(cmd: number, data: Uint8Array = new Uint8Array(0)): void {
    this.w.u8(QEMU_VM_COMMAND);
    this.w.u16(cmd);
    this.w.u16(data.length);
    this.w.bytes(data);
  }

  eof(): void {
    this.w.u8(QEMU_VM_EOF);
  }

  /**
   * The JSON description QEMU writes after EOF (`qemu_savevm_state_complete_precopy_non_iterable`,
   * unless postcopy ran): a QEMU destination waits for it before it finishes loading.
   */
  vmdesc(json: string): void {
    const b = new TextEncoder().encode(json);
    this.w.u8(QEMU_VM_VMDESCRIPTION);
    this.w.u32(b.length);
    this.w.bytes(b);
  }

  /** memtree's capabilities command; with MEMTREE_CAP_INTEGRITY the first batch starts after it. */
  capabilities(flags: number): void {
    const data = new Uint8Array(4);
    new DataView(data.buffer).setUint32(0, flags);
    this.command(MIG_CMD_MEMTREE_CAPS, data);
    if (flags & MEMTREE_CAP_INTEGRITY) this.w.startDigest();
  }

  /** Closes an integrity batch: its CRC-32 and length, covering this command's own header. */
  checksum(): void {
    if (!this.w.digesting) return;
    this.w.u8(QEMU_VM_COMMAND);
    this.w.u16(MIG_CMD_MEMTREE_CHECKSUM);
    this.w.u16(8);
    const m = this.w.mark();
    this.w.u32(m.crc);
    this.w.u32(m.length >>> 0);
  }
}

/** Encodes RAM records as `ram_save_setup` and `ram_save_page` do. */
export class RamPageEncoder {
  /** The block of the previous page record (QEMU `last_sent_block`). */
  private last: string | null = null;
  /** Pages sent as data. */
  pages = 0;
  /** Pages sent as ZERO records. */
  zeroPages = 0;

  constructor(readonly w: ByteWriter) {}

  /** The setup payload: MEM_SIZE with the total and the block list, then EOS. */
  setup(blocks: readonly StreamBlock[]): void {
    const total = blocks.reduce((s, b) => s + b.length, 0);
    this.w.u64(total + RAM_SAVE_FLAG_MEM_SIZE);
    for (const b of blocks) {
      this.w.countedString(b.id);
      this.w.u64(b.length);
    }
    this.eos();
  }

  private header(id: string, offset: number, flags: number): void {
    if (id === this.last) {
      this.w.u64(offset + (flags | RAM_SAVE_FLAG_CONTINUE));
    } else {
      this.w.u64(offset + flags);
      this.w.countedString(id);
      this.last = id;
    }
  }

  /**
   * Sends page `offset` of `block`: a ZERO record if it is all zeros, a PAGE record with its bytes
   * otherwise. Returns true for a zero page.
   */
  page(block: PageSource, offset: number): boolean {
    const ci = Math.floor(offset / 2 ** 30);
    if (!block.isChunkAllocated(ci)) {
      this.zero(block.idstr, offset);
      return true;
    }
    const view = block.hostView(offset, TARGET_PAGE_SIZE);
    if (this.isZero(view)) {
      this.zero(block.idstr, offset);
      return true;
    }
    this.data(block.idstr, offset, view);
    return false;
  }

  // One Int32Array over each host buffer, made once: the zero check runs for every page sent, and
  // a new view per page cost more than the check itself.
  private words = new WeakMap<ArrayBufferLike, Int32Array>();

  private isZero(page: Uint8Array): boolean {
    if ((page.byteOffset & 3) !== 0 || page.length !== TARGET_PAGE_SIZE) return isZeroPage(page);
    let w = this.words.get(page.buffer);
    if (w === undefined) {
      w = new Int32Array(page.buffer, 0, page.buffer.byteLength >> 2);
      this.words.set(page.buffer, w);
    }
    const end = (page.byteOffset >> 2) + (TARGET_PAGE_SIZE >> 2);
    for (let i = page.byteOffset >> 2; i < end; i++) if (w[i] !== 0) return false;
    return true;
  }

  /** A PAGE record with the given bytes. */
  data(id: string, offset: number, bytes: Uint8Array): void {
    this.header(id, offset, RAM_SAVE_FLAG_PAGE);
    this.w.reserve(TARGET_PAGE_SIZE).set(bytes);
    this.pages++;
  }

  /** A ZERO record (fill byte 0, as QEMU 7.2 always sends). */
  zero(id: string, offset: number): void {
    this.header(id, offset, RAM_SAVE_FLAG_ZERO);
    this.w.u8(0);
    this.zeroPages++;
  }

  eos(): void {
    this.w.u64(RAM_SAVE_FLAG_EOS);
  }

  /** Forgets the previous block, so the next record names its block again. */
  resetContinue(): void {
    this.last = null;
  }
}

/** What the decoder hands to its user. Throwing a {@link MigrationError} aborts the load. */
export interface StreamHandler {
  /** The machine type from the configuration record. */
  configuration?(machine: string): void;
  /** The MEM_SIZE block list (checked before any page is taken). */
  blockList?(blocks: readonly StreamBlock[]): void | Promise<void>;
  /** A page of data; `data` is valid only during the call. */
  page(id: string, offset: number, data: Uint8Array): void;
  /** A ZERO record with its fill byte. */
  zero(id: string, offset: number, fill: number): void;
  /** An XBZRLE page: apply the encoded delta to the page's current content. */
  xbzrle?(id: string, offset: number, encoded: Uint8Array): void;
  /** A command record. */
  command?(cmd: number, data: Uint8Array): void | Promise<void>;
  /**
   * A memtree machine-state section ({@link MACHINE_STATE_IDSTR}, see docs/migration.md): its
   * version and payload (valid only during the call). Without this handler such a section is
   * treated like any device section: the decoder stops there.
   */
  machineState?(versionId: number, payload: Uint8Array): void | Promise<void>;
  /** The end of one RAM section payload (EOS). */
  endOfPayload?(): void | Promise<void>;
}

/** A section the decoder did not read. */
export interface SkippedSection {
  readonly idstr: string;
  readonly instanceId: number;
  readonly sectionId?: number;
  readonly versionId?: number;
}

/** What a decoded stream contained besides pages. */
export interface StreamSummary {
  machine: string;
  blocks: StreamBlock[];
  /** The stream ended with EOF (true) or stopped at a device section (false). */
  reachedEof: boolean;
  /** Whether the "ram" section's END record was seen. */
  ramComplete: boolean;
  /** Device sections after RAM that were not read. */
  skipped: SkippedSection[];
  /** Bytes of the stream consumed. */
  bytes: number;
  /** Whether a machine-state section was read (by {@link StreamHandler.machineState}). */
  machineState?: boolean;
  /** memtree extensions the stream announced (`MEMTREE_CAP_*` flags; 0 for a plain QEMU stream). */
  extensions: number;
  /** Integrity batches verified. */
  checksums: number;
}

/** Options of {@link decodeStream}. */
export interface DecodeOptions {
  /**
   * After the first device section, read the rest of the stream and list the devices named in
   * QEMU's trailing JSON description as skipped too (only for finite streams such as files).
   */
  readTail?: boolean;
}

/**
 * Reads a QEMU migration stream from `r`, passing RAM records and commands to `h`. Checks magic,
 * version, section framing, the ram section version, block names and page offsets against the
 * MEM_SIZE list; any fault is a {@link MigrationError} naming the block and offset.
 */
/** Where a {@link decodeStream} stands, kept to go on reading after a reconnection. */
export interface DecodeState {
  readonly summary: StreamSummary;
  /** The header was read. */
  started: boolean;
  capsSeen: boolean;
  /** Stream offset right after the last verified checksum. */
  verifiedTo: number;
  ramSectionId: number;
  readonly ram: RamState;
}

/** A decoder state for a new stream. */
export function newDecodeState(): DecodeState {
  return {
    summary: {
      machine: '',
      blocks: [],
      reachedEof: false,
      ramComplete: false,
      skipped: [],
      bytes: 0,
      extensions: 0,
      checksums: 0,
    },
    started: false,
    capsSeen: false,
    verifiedTo: -1,
    ramSectionId: -1,
    ram: { last: null, blocks: new Map() },
  };
}

/** Magic, version and configuration record. */
async function readHeader(r: ByteReader, h: StreamHandler, summary: StreamSummary): Promise<void> {
  await r.need(8, 'the stream header');
  const magic = r.u32();
  if (magic !== QEMU_VM_FILE_MAGIC) {
    throw new MigrationError('bad-magic', `not a migration stream: magic ${hex(magic)} is not 0x5145564d`, {
      offset: 0,
    });
  }
  const version = r.u32();
  if (version !== QEMU_VM_FILE_VERSION) {
    throw new MigrationError(
      'bad-version',
      version === QEMU_VM_FILE_VERSION_COMPAT
        ? 'SaveVM v2 format is obsolete and not supported'
        : `unsupported migration stream version ${version} (expected 3)`,
      { offset: 4 },
    );
  }
  await r.need(1, 'the configuration section');
  if (r.u8() !== QEMU_VM_CONFIGURATION) {
    throw new MigrationError('corrupt', 'configuration section missing at offset 8', { offset: 8 });
  }
  summary.machine = await readConfiguration(r);
  h.configuration?.(summary.machine);
}

export async function decodeStream(
  r: ByteReader,
  h: StreamHandler,
  options: DecodeOptions = {},
  st: DecodeState = newDecodeState(),
): Promise<StreamSummary> {
  const summary = st.summary;
  if (st.started) {
    // The stream goes on over a new connection (postcopy recovery): no header, the first page
    // record names its block, and a new integrity batch starts here.
    st.ram.last = null;
    st.verifiedTo = -1;
    if (summary.extensions & MEMTREE_CAP_INTEGRITY) r.startDigest();
  } else {
    st.started = true;
    await readHeader(r, h, summary);
  }
  for (;;) {
    const at = r.consumed;
    if (!(await r.ensure(1))) {
      throw new MigrationError('truncated', `stream truncated at offset ${at}: no EOF record`, {
        offset: at,
      });
    }
    const type = r.u8();
    switch (type) {
      case QEMU_VM_SECTION_START:
      case QEMU_VM_SECTION_FULL: {
        await r.need(5, 'a section header');
        const sectionId = r.u32();
        const n = r.u8();
        await r.need(n + 8, 'a section header');
        const idstr = latin1(r.view(n));
        const instanceId = r.u32();
        const versionId = r.u32();
        if (idstr === MACHINE_STATE_IDSTR && h.machineState && type === QEMU_VM_SECTION_FULL) {
          await r.need(4, 'a machine-state length');
          const len = r.u32();
          await r.need(len, 'the machine state');
          await h.machineState(versionId, r.view(len));
          await readFooter(r, sectionId);
          summary.machineState = true;
          break;
        }
        if (idstr !== 'ram') {
          if (r.digesting) {
            throw new MigrationError(
              'corrupt',
              `section "${idstr}" at offset ${at} in a stream with the integrity check (memtree sends RAM only)`,
              { offset: at },
            );
          }
          summary.skipped.push({ idstr, instanceId, sectionId, versionId });
          if (options.readTail) {
            // Device state is not ours to parse, but the stream's end is checked: QEMU ends it with
            // the EOF byte, then (qemu_savevm_state_complete_precopy_non_iterable) the JSON
            // description of the devices, unless the machine suppresses it or postcopy ran.
            const { bytes: tail, total } = await r.tail(TAIL_KEEP);
            const end = streamEnd(tail);
            summary.bytes = r.consumed;
            if (!end.eof) {
              throw new MigrationError(
                'truncated',
                `stream truncated at offset ${r.consumed}: the ${total} bytes of device state after the RAM section do not end with QEMU's EOF record`,
                { offset: r.consumed },
              );
            }
            summary.reachedEof = true;
            if (end.devices) summary.skipped.push(...afterFirst(end.devices, idstr, instanceId));
          }
          summary.bytes = r.consumed;
          return summary;
        }
        if (versionId !== RAM_SECTION_VERSION) {
          throw new MigrationError(
            'bad-version',
            `error while loading state for instance 0x${instanceId.toString(16)} of device 'ram': section version ${versionId} is not 4`,
            { offset: at },
          );
        }
        st.ramSectionId = sectionId;
        await readRamPayload(r, h, st.ram, summary);
        await readFooter(r, sectionId);
        if (type === QEMU_VM_SECTION_FULL) summary.ramComplete = true;
        break;
      }
      case QEMU_VM_SECTION_PART:
      case QEMU_VM_SECTION_END: {
        await r.need(4, 'a section header');
        const sectionId = r.u32();
        if (sectionId !== st.ramSectionId) {
          throw new MigrationError('corrupt', `unknown savevm section ${sectionId} at offset ${at}`, {
            offset: at,
          });
        }
        await readRamPayload(r, h, st.ram, summary);
        await readFooter(r, sectionId);
        if (type === QEMU_VM_SECTION_END) summary.ramComplete = true;
        break;
      }
      case QEMU_VM_COMMAND: {
        await r.need(4, 'a command header');
        const cmd = r.u16();
        const len = r.u16();
        if (cmd === MIG_CMD_MEMTREE_CHECKSUM) {
          // The batch ends with this command's header: its CRC covers every byte up to here.
          if (!r.digesting) {
            throw new MigrationError(
              'corrupt',
              `integrity checksum at offset ${at}, but the stream did not announce the integrity check`,
              { offset: at },
            );
          }
          const got = r.mark();
          if (len !== 8) {
            throw new MigrationError('corrupt', `integrity checksum of ${len} bytes at offset ${at}`, {
              offset: at,
            });
          }
          await r.need(8, 'an integrity checksum');
          const crc = r.u32();
          const n = r.u32();
          if (crc !== got.crc || n !== got.length >>> 0) {
            throw new MigrationError(
              'corrupt',
              `integrity check failed for the ${got.length} bytes before stream offset ${at + 5}: the source sent CRC-32 ${hex(crc)} over ${n} bytes, ${hex(got.crc)} arrived`,
              { offset: at },
            );
          }
          summary.checksums++;
          st.verifiedTo = r.consumed;
          break;
        }
        if (cmd !== MIG_CMD_MEMTREE_CAPS && (cmd === 0 || cmd >= MIG_CMD_MAX)) {
          throw new MigrationError(
            'corrupt',
            `MIG_CMD ${hex(cmd)} unknown (len ${hex(len)}) at stream offset ${at}`,
            { offset: at },
          );
        }
        const fixed = cmd === MIG_CMD_MEMTREE_CAPS ? 4 : MIG_CMD_LEN[cmd]!;
        if (fixed !== -1 && fixed !== len) {
          throw new MigrationError(
            'corrupt',
            `command ${cmd} received with bad length - expecting ${fixed}, got ${len} (stream offset ${at})`,
            { offset: at },
          );
        }
        await r.need(len, `command ${cmd}`);
        const data = r.view(len).slice();
        if (cmd === MIG_CMD_MEMTREE_CAPS) {
          if (st.capsSeen) {
            throw new MigrationError('corrupt', `second memtree capabilities command at offset ${at}`, {
              offset: at,
            });
          }
          st.capsSeen = true;
          summary.extensions = new DataView(data.buffer).getUint32(0);
          // The first batch starts right after this command, where the source started hashing.
          if (summary.extensions & MEMTREE_CAP_INTEGRITY) r.startDigest();
        }
        if (h.command) await h.command(cmd, data);
        break;
      }
      case QEMU_VM_EOF:
        if (r.digesting && st.verifiedTo !== at) {
          throw new MigrationError(
            'corrupt',
            `integrity check: the ${at - Math.max(st.verifiedTo, 0)} bytes before the EOF record at offset ${at} were not checked`,
            { offset: at },
          );
        }
        summary.reachedEof = true;
        summary.bytes = r.consumed;
        return summary;
      default:
        throw new MigrationError('corrupt', `unknown savevm section type ${type} at offset ${at}`, {
          offset: at,
        });
    }
  }
}

/** The configuration record: the machine name and the optional subsections QEMU may add. */
async function readConfiguration(r: ByteReader): Promise<string> {
  await r.need(4, 'the configuration section');
  const len = r.u32();
  if (len > 255) {
    throw new MigrationError('corrupt', `configuration machine name of ${len} bytes`, { offset: 9 });
  }
  await r.need(len, 'the machine name');
  const machine = latin1(r.view(len));
  // Subsections of vmstate_configuration: target-page-bits (u32) and capabilities (u32 count,
  // counted strings); each is `0x05, counted name, u32 version`, then its fields.
  while ((await r.ensure(1)) && r.peekU8() === QEMU_VM_SUBSECTION) {
    r.u8();
    await r.need(1, 'a configuration subsection');
    const n = r.u8();
    await r.need(n + 4, 'a configuration subsection');
    const name = latin1(r.view(n));
    r.u32();
    if (name === 'configuration/target-page-bits') {
      await r.need(4, name);
      r.u32();
    } else if (name === 'configuration/capabilities') {
      await r.need(4, name);
      const count = r.u32();
      for (let i = 0; i < count; i++) {
        await r.need(1, name);
        const l = r.u8();
        await r.need(l, name);
        r.skip(l);
      }
    } else {
      throw new MigrationError('corrupt', `unknown configuration subsection "${name}"`, {
        offset: r.consumed,
      });
    }
  }
  return machine;
}

async function readFooter(r: ByteReader, sectionId: number): Promise<void> {
  if (!(await r.ensure(1)) || r.peekU8() !== QEMU_VM_SECTION_FOOTER) return;
  await r.need(5, 'a section footer');
  r.u8();
  const id = r.u32();
  if (id !== sectionId) {
    throw new MigrationError(
      'corrupt',
      `mismatched section id in footer for ram - read ${hex(id)} expected ${hex(sectionId)}`,
      { offset: r.consumed - 4 },
    );
  }
}

/** The RAM section's decoding state: the block of the last page record, the block lengths. */
export interface RamState {
  last: string | null;
  blocks: Map<string, number>;
}

const pair = new Uint32Array(2);

async function readRamPayload(
  r: ByteReader,
  h: StreamHandler,
  st: RamState,
  summary: StreamSummary,
): Promise<void> {
  for (;;) {
    const at = r.consumed;
    if (r.available < 8) await r.need(8, 'a RAM record header');
    r.u64pair(pair);
    const hi = pair[0]!;
    const lo = pair[1]!;
    const flags = lo & PAGE_FLAG_MASK;
    const addr = hi * 2 ** 32 + ((lo & ~PAGE_FLAG_MASK) >>> 0);
    let id = '';
    if (
      flags &
      (RAM_SAVE_FLAG_ZERO | RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_COMPRESS_PAGE | RAM_SAVE_FLAG_XBZRLE)
    ) {
      if (flags & RAM_SAVE_FLAG_CONTINUE) {
        if (st.last === null) {
          throw new MigrationError(
            'corrupt',
            `bad migration stream at offset ${at}: page record continues a block but no block was named (Illegal RAM offset 0)`,
            { offset: at },
          );
        }
        id = st.last;
      } else {
        await r.need(1, 'a block name');
        const n = r.u8();
        await r.need(n, 'a block name');
        id = latin1(r.view(n));
        if (!st.blocks.has(id)) {
          throw new MigrationError(
            'unknown-block',
            `Can't find block ${id} (page record at stream offset ${at}, Illegal RAM offset ${hex(addr)})`,
            { block: id, offset: addr },
          );
        }
        st.last = id;
      }
      const len = st.blocks.get(id)!;
      if (addr >= len) {
        throw new MigrationError(
          'bad-offset',
          `Illegal RAM offset ${hex(addr)} in block ${id} of ${hex(len)} bytes (stream offset ${at})`,
          { block: id, offset: addr },
        );
      }
    }
    switch (flags & ~RAM_SAVE_FLAG_CONTINUE) {
      case RAM_SAVE_FLAG_MEM_SIZE: {
        let total = addr;
        if (total > MAX_STREAM_RAM) {
          throw new MigrationError(
            'corrupt',
            `MEM_SIZE of ${hex(total)} bytes at stream offset ${at}: more RAM than memtree reads (at most ${hex(MAX_STREAM_RAM)})`,
            { offset: at },
          );
        }
        const list: StreamBlock[] = [];
        while (total > 0) {
          await r.need(1, 'the MEM_SIZE block list');
          const n = r.u8();
          await r.need(n + 8, 'the MEM_SIZE block list');
          const bid = latin1(r.view(n));
          r.u64pair(pair);
          const length = pair[0]! * 2 ** 32 + pair[1]!;
          if (length > total) {
            throw new MigrationError(
              'corrupt',
              `MEM_SIZE list: block ${bid} of ${hex(length)} bytes exceeds the ${hex(total)} bytes left of the declared total`,
              { block: bid, offset: r.consumed - 8 },
            );
          }
          list.push({ id: bid, length });
          total -= length;
        }
        // Several MEM_SIZE records may not add up to more than one could declare.
        const listed = new Set(list.map((b) => b.id));
        let declared = total === 0 ? addr : addr - total;
        for (const [id, length] of st.blocks) if (!listed.has(id)) declared += length;
        if (declared > MAX_STREAM_RAM) {
          throw new MigrationError(
            'corrupt',
            `MEM_SIZE at stream offset ${at}: ${hex(declared)} bytes of RAM declared in all, more than memtree reads`,
            { offset: at },
          );
        }
        if (h.blockList) await h.blockList(list);
        for (const b of list) st.blocks.set(b.id, b.length);
        summary.blocks.push(...list);
        break;
      }
      case RAM_SAVE_FLAG_ZERO:
        if (r.available < 1) await r.need(1, `the fill byte of page ${hex(addr)} of ${id}`);
        h.zero(id, addr, r.u8());
        break;
      case RAM_SAVE_FLAG_PAGE:
        if (r.available < TARGET_PAGE_SIZE) await r.need(TARGET_PAGE_SIZE, `page ${hex(addr)} of ${id}`);
        h.page(id, addr, r.view(TARGET_PAGE_SIZE));
        break;
      case RAM_SAVE_FLAG_XBZRLE: {
        await r.need(3, `XBZRLE page ${hex(addr)} of ${id}`);
        const enc = r.u8();
        const len = r.u16();
        if (enc !== 1) {
          throw new MigrationError(
            'corrupt',
            `Failed to load XBZRLE page - wrong compression! (${id} ${hex(addr)})`,
            {
              block: id,
              offset: addr,
            },
          );
        }
        if (len > TARGET_PAGE_SIZE) {
          throw new MigrationError(
            'corrupt',
            `Failed to load XBZRLE page - len overflow! (${id} ${hex(addr)})`,
            {
              block: id,
              offset: addr,
            },
          );
        }
        await r.need(len, `XBZRLE page ${hex(addr)} of ${id}`);
        const data = r.view(len).slice();
        if (!h.xbzrle) {
          throw new MigrationError(
            'corrupt',
            `XBZRLE page ${hex(addr)} of ${id} but no previous copy to apply it to`,
            {
              block: id,
              offset: addr,
            },
          );
        }
        h.xbzrle(id, addr, data);
        break;
      }
      case RAM_SAVE_FLAG_COMPRESS_PAGE:
        throw new MigrationError('corrupt', `Received an unexpected compressed page (${id} ${hex(addr)})`, {
          block: id,
          offset: addr,
        });
      case RAM_SAVE_FLAG_EOS:
        if (h.endOfPayload) await h.endOfPayload();
        return;
      default:
        throw new MigrationError(
          'corrupt',
          `Unknown combination of migration flags: ${hex(flags)} at stream offset ${at}`,
          { offset: at },
        );
    }
  }
}

/**
 * Applies an XBZRLE delta to `page` in place (QEMU `xbzrle_decode_buffer`): pairs of ULEB128 run
 * lengths, unchanged bytes then new bytes. Returns false on a malformed encoding.
 */
export function xbzrleDecode(enc: Uint8Array, page: Uint8Array): boolean {
  let i = 0;
  let d = 0;
  // ULEB128 limited to two bytes (14 bits), as QEMU's uleb128_decode_small.
  const uleb = (): number => {
    const b0 = enc[i]!;
    if (!(b0 & 0x80)) {
      i += 1;
      return b0;
    }
    const b1 = enc[i + 1]!;
    if (b1 & 0x80) return -1;
    i += 2;
    return (b0 & 0x7f) | (b1 << 7);
  };
  while (i < enc.length) {
    if (enc.length - i < 2) return false;
    const first = i === 0;
    const zrun = uleb();
    if (zrun < 0 || (!first && zrun === 0)) return false;
    d += zrun;
    if (d > page.length) return false;
    if (enc.length - i < 2) return false;
    const nz = uleb();
    if (nz <= 0 || d + nz > page.length || i + nz > enc.length) return false;
    page.set(enc.subarray(i, i + nz), d);
    i += nz;
    d += nz;
  }
  return true;
}

/** How much of the stream's end is kept to find its EOF record and device description. */
const TAIL_KEEP = 16 << 20;

/**
 * Whether the bytes after the first device section end as a complete QEMU stream, and the devices
 * its trailing JSON description names. With a description the stream ends `0x00 (EOF), 0x06, u32
 * len, JSON` exactly; without one (a machine with `suppress-vmdesc`, or after postcopy) the last
 * device section's footer (`0x7E`, u32 section id) comes right before the final EOF byte.
 */
function streamEnd(tail: Uint8Array): { eof: boolean; devices?: SkippedSection[] } {
  for (let i = tail.length - 6; i >= 1; i--) {
    if (tail[i] !== QEMU_VM_VMDESCRIPTION || tail[i + 5] !== 0x7b || tail[i - 1] !== QEMU_VM_EOF) continue;
    const len = ((tail[i + 1]! << 24) | (tail[i + 2]! << 16) | (tail[i + 3]! << 8) | tail[i + 4]!) >>> 0;
    if (i + 5 + len !== tail.length) continue;
    const devices = describeDevices(tail.subarray(i + 5));
    if (devices) return { eof: true, devices };
  }
  const n = tail.length;
  return { eof: n >= 6 && tail[n - 1] === QEMU_VM_EOF && tail[n - 6] === QEMU_VM_SECTION_FOOTER };
}

/** The devices of QEMU's JSON description, or null when it is not one. */
function describeDevices(json: Uint8Array): SkippedSection[] | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch {
    return null;
  }
  const devices = (parsed as { devices?: unknown } | null)?.devices;
  if (!Array.isArray(devices)) return null;
  const out: SkippedSection[] = [];
  for (const d of devices as Array<{ name?: unknown; instance_id?: unknown } | null>) {
    if (typeof d?.name !== 'string') continue;
    out.push({ idstr: d.name, instanceId: typeof d.instance_id === 'number' ? d.instance_id : 0 });
  }
  return out;
}

/** The described devices after the one already reported (the first device section). */
function afterFirst(devices: SkippedSection[], firstId: string, firstInstance: number): SkippedSection[] {
  const i = devices.findIndex((d) => d.idstr === firstId && d.instanceId === firstInstance);
  return i >= 0 ? [...devices.slice(0, i), ...devices.slice(i + 1)] : devices;
}

export { ByteWriter };
