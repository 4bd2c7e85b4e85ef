/**
 * @module core/types
 * Vocabulary shared by the whole model: transaction results and attributes, device byte order, and
 * the callback tables (`MemoryRegionOps`) through which I/O regions serve guest accesses.
 */

/**
 * Result of a guest access, a bit mask OR-ed over all the pieces of an access (QEMU `MemTxResult`).
 */
export type MemTxResult = number;
/** The access succeeded. */
export const MEMTX_OK = 0;
/** The device reported an error (e.g. a bus error response). */
export const MEMTX_ERROR = 1 << 0;
/** Nothing answers at this address, or the access size / alignment is invalid for the device. */
export const MEMTX_DECODE_ERROR = 1 << 1;
/** The access was denied (e.g. `attrs.memory` to a non-RAM region, or device re-entrancy). */
export const MEMTX_ACCESS_ERROR = 1 << 2;

/**
 * Transaction attributes of a guest access (QEMU `MemTxAttrs`). The core interprets only `memory`;
 * everything else is passed through to device callbacks and IOMMU `attrsToIndex`.
 */
export interface MemTxAttrs {
  /** The bus master did not specify attributes (`MEMTXATTRS_UNSPECIFIED`). */
  readonly unspecified?: boolean;
  /** Secure (TrustZone) access. */
  readonly secure?: boolean;
  /** User-mode (unprivileged) access. */
  readonly user?: boolean;
  /** The access must go to RAM: any other region refuses it with {@link MEMTX_ACCESS_ERROR}. */
  readonly memory?: boolean;
  /** Requester id (PCI BDF) of the bus master. */
  readonly requesterId?: number;
}

/** `MEMTXATTRS_UNSPECIFIED`: attributes of an access whose initiator did not set any. */
export const MEMTXATTRS_UNSPECIFIED: MemTxAttrs = Object.freeze({ unspecified: true });

/** Byte order of a device's registers. `native` is the byte order of the emulated target CPU. */
export type DeviceEndianness = 'little' | 'big' | 'native';

/**
 * Output slot for `readWithAttrs` callbacks: the dispatcher owns it and reuses it, so a device access
 * allocates nothing (QEMU passes `uint64_t *data`).
 */
export interface IoValue {
  value: number | bigint;
}

/**
 * Access constraints of a device (QEMU `MemoryRegionOps.valid` / `.impl`). Sizes are in bytes; 0 means
 * "not specified" exactly as in QEMU (valid: any size; impl: 1 for the minimum and 4 for the maximum).
 */
export interface AccessConstraints {
  minAccessSize?: number;
  maxAccessSize?: number;
  unaligned?: boolean;
}

/** `valid` constraints, which may also veto individual accesses. */
export interface ValidConstraints extends AccessConstraints {
  /** Return false to reject the access (it then fails with {@link MEMTX_DECODE_ERROR}). */
  accepts?: (offset: number, size: number, isWrite: boolean, attrs: MemTxAttrs) => boolean;
}

/**
 * The callbacks of an I/O region (QEMU `MemoryRegionOps`). Offsets are relative to the region the
 * callback belongs to. A value is a `number` for accesses of up to 4 bytes and a `bigint` for 8-byte
 * accesses (a callback may return either; the dispatcher normalises). Callbacks receive exactly the
 * widths allowed by `impl` (default 1..4 bytes); the dispatcher splits or widens the guest access
 * as QEMU's `access_with_adjusted_size` does.
 */
export interface MemoryRegionOps {
  read?: (offset: number, size: number, attrs: MemTxAttrs) => number | bigint;
  write?: (offset: number, value: number | bigint, size: number, attrs: MemTxAttrs) => void;
  /** Like `read`, but stores the value in `out.value` and returns a {@link MemTxResult}. */
  readWithAttrs?: (offset: number, size: number, attrs: MemTxAttrs, out: IoValue) => MemTxResult;
  /** Like `write`, but returns a {@link MemTxResult}. */
  writeWithAttrs?: (offset: number, value: number | bigint, size: number, attrs: MemTxAttrs) => MemTxResult;
  /** Byte order of the device's registers (default `native`, QEMU's `DEVICE_NATIVE_ENDIAN`). */
  endianness?: DeviceEndianness;
  /** What the guest may do; invalid accesses never reach the callbacks. */
  valid?: ValidConstraints;
  /** What the callbacks implement; the dispatcher adapts guest accesses to it. */
  impl?: AccessConstraints;
}

/** An object notified by an ioeventfd (QEMU `EventNotifier`). */
export interface EventNotifier {
  /** Called when a matching guest write happens, instead of the device's write callback. */
  notify(): void;
}

/**
 * Owner of a region (QEMU's QOM owner). Opaque to the core except for two optional properties:
 * `devicePath` prefixes RAM block ids (`0000:00:02.0/vga.vram`), and the owner is the unit of the
 * device re-entrancy guard.
 */
export interface MemoryOwner {
  readonly devicePath?: string;
  readonly name?: string;
}
