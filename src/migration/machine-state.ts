/**
 * @module migration/machine-state
 * The payload of the `memtree-machine` section (docs/migration.md): the machine's non-RAM state as
 * UTF-8 JSON, version 1. Each device is stored under its own name with its own version, so a
 * destination can refuse a device it cannot read by name. `bigint`s (64-bit registers) and typed
 * arrays, which JSON lacks, are tagged objects.
 */

import { MigrationError } from './errors.js';

/** The section version this module writes and reads. */
export const MACHINE_STATE_VERSION = 1;

/** One device's saved state with the version of its own layout. */
export interface DeviceState {
  readonly version: number;
  readonly state: unknown;
}

/** The state of a machine: machine type and device name → state. */
export interface MachineState {
  readonly machine: string;
  readonly devices: Readonly<Record<string, DeviceState>>;
}

function replacer(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return { $bigint: v.toString(16) };
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    const name = v.constructor.name;
    const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    return { $typed: name, b64: Buffer.from(bytes).toString('base64') };
  }
  return v;
}

const TYPED: Record<string, new (b: ArrayBuffer) => ArrayBufferView> = {
  Uint8Array,
  Int8Array,
  Uint16Array,
  Int16Array,
  Uint32Array,
  Int32Array,
  Float32Array,
  Float64Array,
  BigUint64Array,
  BigInt64Array,
};

function reviver(_key: string, v: unknown): unknown {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if (typeof o.$bigint === 'string' && Object.keys(o).length === 1) {
      const neg = o.$bigint.startsWith('-');
      const n = BigInt(`0x${neg ? o.$bigint.slice(1) : o.$bigint}`);
      return neg ? -n : n;
    }
    if (typeof o.$typed === 'string' && typeof o.b64 === 'string') {
      const Ctor = TYPED[o.$typed];
      if (!Ctor) throw new MigrationError('corrupt', `machine state has an unknown array type ${o.$typed}`);
      const raw = Buffer.from(o.b64, 'base64');
      const ab = new ArrayBuffer(raw.length);
      new Uint8Array(ab).set(raw);
      return new Ctor(ab);
    }
  }
  return v;
}

/** Whether JSON text stops inside a string or an unclosed object or array (a cut payload). */
function endsEarly(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return inString || depth > 0;
}

/** Encodes a machine's state as the section payload. */
export function encodeMachineState(s: MachineState): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(s, replacer));
}

/**
 * Decodes a section payload of version `versionId`; a newer version or a payload that is not a
 * machine state is a `bad-version` / `corrupt` {@link MigrationError}.
 */
export function decodeMachineState(versionId: number, payload: Uint8Array): MachineState {
  if (versionId !== MACHINE_STATE_VERSION) {
    throw new MigrationError(
      'bad-version',
      `memtree-machine section version ${versionId} is not ${MACHINE_STATE_VERSION}`,
    );
  }
  let v: unknown;
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(payload);
    v = JSON.parse(text, reviver);
  } catch (e) {
    if (e instanceof MigrationError) throw e;
    throw new MigrationError(
      text !== '' && endsEarly(text) ? 'truncated' : 'corrupt',
      `memtree-machine section is not valid JSON: ${(e as Error).message}`,
    );
  }
  const o = v as Partial<MachineState> | null;
  if (!o || typeof o.machine !== 'string' || typeof o.devices !== 'object' || o.devices === null) {
    throw new MigrationError('corrupt', 'memtree-machine section lacks machine or devices');
  }
  return o as MachineState;
}
