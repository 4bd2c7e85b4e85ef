/**
 * @module machines/riscv/devices/state
 * Reading a device's migrated state back: the state arrives as untrusted JSON from another
 * process, so every field is checked (present, of its type, in its range, arrays of the length
 * this machine has) before the device changes. A field that is absent or an array that is too
 * short is `truncated`, a value of the wrong type or range is `corrupt`, an unknown layout
 * version is `bad-version`; each a {@link DeviceStateError} naming the device and the field.
 */

import { MigrationError, type MigrationFailure } from '../../../migration/errors.js';

/** A device's migrated state cannot be loaded; `device` names it (e.g. `serial`, `hart0`). */
export class DeviceStateError extends MigrationError {
  /** The device whose state was refused. */
  readonly device: string;

  constructor(failure: MigrationFailure, device: string, message: string) {
    super(failure, `device state of ${device}: ${message}`);
    this.device = device;
  }
}

/** Reads fields of one device's state object, throwing {@link DeviceStateError} on the first bad one. */
export class StateReader {
  private readonly o: Record<string, unknown>;

  constructor(
    readonly device: string,
    s: unknown,
  ) {
    if (typeof s !== 'object' || s === null || Array.isArray(s)) {
      throw new DeviceStateError('corrupt', device, 'is not an object');
    }
    this.o = s as Record<string, unknown>;
  }

  private field(key: string): unknown {
    if (!(key in this.o)) throw new DeviceStateError('truncated', this.device, `lacks ${key}`);
    return this.o[key];
  }

  private bad(key: string, what: string): never {
    throw new DeviceStateError('corrupt', this.device, `${key} is not ${what}`);
  }

  /** An integer in 0..max. */
  uint(key: string, max: number): number {
    return this.int(key, 0, max);
  }

  /** An integer in min..max. */
  int(key: string, min: number, max: number): number {
    const v = this.field(key);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.bad(key, `an integer ${min}..${max}`);
    }
    return v;
  }

  /** A boolean. */
  bool(key: string): boolean {
    const v = this.field(key);
    if (typeof v !== 'boolean') this.bad(key, 'a boolean');
    return v;
  }

  /** An unsigned 64-bit value: a bigint (what the section's JSON decoding gives) or a `0x` hex string. */
  u64(key: string): bigint {
    return this.hex(key, this.field(key));
  }

  private hex(key: string, v: unknown): bigint {
    if (typeof v === 'bigint' && v >= 0n && v < 1n << 64n) return v;
    if (typeof v !== 'string' || !/^0x[0-9a-f]{1,16}$/.test(v)) this.bad(key, 'an unsigned 64-bit value');
    return BigInt(v);
  }

  /** Virtual time in ns (a timer's deadline), or null for a timer that is not armed. */
  deadline(key: string): number | null {
    return this.time(key, this.field(key));
  }

  private time(key: string, v: unknown): number | null {
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) this.bad(key, 'a time in ns or null');
    return v;
  }

  /** An array of exactly `length` deadlines (see {@link deadline}). */
  deadlines(key: string, length: number): Array<number | null> {
    return this.list(key, length).map((x) => this.time(key, x));
  }

  private list(key: string, length: number): unknown[] {
    const v = this.field(key);
    if (!Array.isArray(v)) this.bad(key, 'an array');
    if (v.length !== length) {
      throw new DeviceStateError(
        v.length < length ? 'truncated' : 'corrupt',
        this.device,
        `${key} has ${v.length} entries, not ${length}`,
      );
    }
    return v;
  }

  /** An array of exactly `length` integers in 0..max (fewer is `truncated`). */
  uints(key: string, length: number, max: number): number[] {
    const v = this.list(key, length);
    for (const x of v) {
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > max) {
        this.bad(key, `an array of integers 0..${max}`);
      }
    }
    return v as number[];
  }

  /** An array of at most `maxLength` integers in 0..max. */
  uintList(key: string, maxLength: number, max: number): number[] {
    const v = this.field(key);
    if (!Array.isArray(v) || v.length > maxLength) this.bad(key, `an array of at most ${maxLength} entries`);
    return this.uints(key, v.length, max);
  }

  /** An array of exactly `length` unsigned 64-bit values. */
  u64s(key: string, length: number): bigint[] {
    return this.list(key, length).map((x) => this.hex(key, x));
  }
}
