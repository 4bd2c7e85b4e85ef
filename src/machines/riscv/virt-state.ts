/**
 * @module machines/riscv/virt-state
 * The riscv virt machine's non-RAM state for migration (docs/migration.md, "Machine state"): the
 * virtual clock, each hart, then each device in the order hw/riscv/virt.c realizes them (QEMU
 * sends vmstate sections in registration order), each under its own name with the version of its
 * own layout. Loading checks every entry (present, known version, well-formed, sized for this
 * machine) before it changes anything, so a refused state leaves the machine as it was.
 */

import type { DeviceState } from '../../migration/machine-state.js';
import { ACLINT_MTIMER_STATE_VERSION, ACLINT_SWI_STATE_VERSION } from './devices/aclint.js';
import { FW_CFG_STATE_VERSION, FwCfg } from './devices/fw-cfg.js';
import { GoldfishRtc, RTC_STATE_VERSION } from './devices/goldfish-rtc.js';
import { GPEX_STATE_VERSION } from './devices/gpex.js';
import { PFLASH_STATE_VERSION } from './devices/pflash-cfi01.js';
import { PLIC_STATE_VERSION } from './devices/plic.js';
import { SERIAL_STATE_VERSION, Serial16550 } from './devices/serial.js';
import { DeviceStateError, StateReader } from './devices/state.js';
import { type RiscvVirtMachine, VIRTIO_COUNT } from './virt.js';

/** Version of the `hart<N>` layout (the hart's own saveState object; 2 added Sstc's stimecmp and timer). */
export const HART_STATE_VERSION = 2;
/** Version of the `clock` layout. */
export const CLOCK_STATE_VERSION = 1;
/** Version of the `virtio-mmio` layout. */
export const VIRTIO_STATE_VERSION = 1;

/** Every saved entry: name → state and version, in QEMU's section order. */
export function saveVirtState(m: RiscvVirtMachine): Record<string, DeviceState> {
  const out: Record<string, DeviceState> = {};
  out.clock = { version: CLOCK_STATE_VERSION, state: { ns: m.clock.ns } };
  m.harts.forEach((h, i) => {
    out[`hart${i}`] = { version: HART_STATE_VERSION, state: h.saveState() };
  });
  out['aclint-swi'] = { version: ACLINT_SWI_STATE_VERSION, state: m.swi.saveState() };
  out['aclint-mtimer'] = { version: ACLINT_MTIMER_STATE_VERSION, state: m.mtimer.saveState() };
  out.plic = { version: PLIC_STATE_VERSION, state: m.plic.saveState() };
  // The transports have no backend, so no register state; their number must agree.
  out['virtio-mmio'] = { version: VIRTIO_STATE_VERSION, state: { transports: VIRTIO_COUNT } };
  out.gpex = { version: GPEX_STATE_VERSION, state: m.gpex.saveState() };
  out.serial = { version: SERIAL_STATE_VERSION, state: m.uart.saveState() };
  out.goldfish_rtc = { version: RTC_STATE_VERSION, state: m.rtc.saveState() };
  out['virt.flash0'] = { version: PFLASH_STATE_VERSION, state: m.flash[0].saveState() };
  out['virt.flash1'] = { version: PFLASH_STATE_VERSION, state: m.flash[1].saveState() };
  out.fw_cfg = { version: FW_CFG_STATE_VERSION, state: m.fwCfg.saveState() };
  return out;
}

/**
 * The entry `name` of version `version`, or a {@link DeviceStateError}: `truncated` when the
 * source did not send it, `bad-version` when its layout is another.
 */
function entry(devices: Readonly<Record<string, DeviceState>>, name: string, version: number): unknown {
  const d = Object.hasOwn(devices, name) ? devices[name] : undefined;
  if (d === undefined) throw new DeviceStateError('truncated', name, 'the source sent none');
  if (typeof d !== 'object' || d === null) throw new DeviceStateError('corrupt', name, 'is not an entry');
  if (d.version !== version) {
    throw new DeviceStateError('bad-version', name, `version ${String(d.version)} is not ${version}`);
  }
  return d.state;
}

/**
 * A value of the same shape as `template` (a state this machine saves itself): the same keys,
 * the same types, arrays of the same length. Catches a missing field, a short array or a state of
 * a hart built with other options before the hart loads it.
 */
function checkShape(device: string, template: unknown, v: unknown, path: string): void {
  const at = path || 'the state';
  if (Array.isArray(template)) {
    if (!Array.isArray(v)) throw new DeviceStateError('corrupt', device, `${at} is not an array`);
    if (v.length !== template.length) {
      throw new DeviceStateError(
        v.length < template.length ? 'truncated' : 'corrupt',
        device,
        `${at} has ${v.length} entries, not ${template.length}`,
      );
    }
    for (const [i, t] of template.entries()) checkShape(device, t, v[i], `${at}[${i}]`);
  } else if (typeof template === 'object' && template !== null && !ArrayBuffer.isView(template)) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw new DeviceStateError('corrupt', device, `${at} is not an object`);
    }
    for (const [k, t] of Object.entries(template)) {
      if (!(k in v)) throw new DeviceStateError('truncated', device, `lacks ${path ? `${path}.` : ''}${k}`);
      checkShape(device, t, (v as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
    }
  } else if (ArrayBuffer.isView(template)) {
    const a = template as unknown as ArrayLike<unknown>;
    const b = v as ArrayLike<unknown> | null;
    if (!ArrayBuffer.isView(v) || v.constructor !== template.constructor || b!.length !== a.length) {
      throw new DeviceStateError(
        'corrupt',
        device,
        `${at} is not a ${template.constructor.name} of ${a.length}`,
      );
    }
  } else if (typeof v !== typeof template || (typeof v === 'number' && !Number.isFinite(v))) {
    throw new DeviceStateError('corrupt', device, `${at} is not a ${typeof template}`);
  } else if (typeof v === 'string' && /^0x/.test(template as string) && !/^0x[0-9a-f]{1,16}$/.test(v)) {
    throw new DeviceStateError('corrupt', device, `${at} is not a 64-bit hex value`);
  }
}

/**
 * Loads what {@link saveVirtState} produced on the source into `m` (same hart count, same
 * devices). Every entry is checked first; on any {@link DeviceStateError} nothing has changed. An
 * entry this machine does not know (a device it lacks, a hart beyond its count) is refused too.
 */
export function loadVirtState(m: RiscvVirtMachine, devices: Readonly<Record<string, DeviceState>>): void {
  if (typeof devices !== 'object' || devices === null) {
    throw new DeviceStateError('corrupt', 'machine', 'the device list is not an object');
  }
  const known = new Set(Object.keys(saveVirtState(m)));
  for (const name of Object.keys(devices)) {
    if (!known.has(name)) {
      throw new DeviceStateError(
        'corrupt',
        name,
        /^hart\d+$/.test(name)
          ? `this machine has ${m.harts.length} harts`
          : 'this machine has no such device',
      );
    }
  }
  const clockState = entry(devices, 'clock', CLOCK_STATE_VERSION);
  const ns = new StateReader('clock', clockState).deadline('ns');
  if (ns === null) throw new DeviceStateError('corrupt', 'clock', 'ns is null');
  const harts = m.harts.map((h, i) => {
    const name = `hart${i}`;
    const s = entry(devices, name, HART_STATE_VERSION);
    checkShape(name, h.saveState(), s, '');
    return s as object;
  });
  const swi = m.swi.checkState(entry(devices, 'aclint-swi', ACLINT_SWI_STATE_VERSION));
  const mtimer = m.mtimer.checkState(entry(devices, 'aclint-mtimer', ACLINT_MTIMER_STATE_VERSION));
  const plic = m.plic.checkState(entry(devices, 'plic', PLIC_STATE_VERSION));
  const virtio = new StateReader('virtio-mmio', entry(devices, 'virtio-mmio', VIRTIO_STATE_VERSION));
  if (virtio.uint('transports', 0xffff) !== VIRTIO_COUNT) {
    throw new DeviceStateError(
      'corrupt',
      'virtio-mmio',
      `the source has other than ${VIRTIO_COUNT} transports`,
    );
  }
  const gpex = m.gpex.checkState(entry(devices, 'gpex', GPEX_STATE_VERSION));
  const serial = Serial16550.checkState(entry(devices, 'serial', SERIAL_STATE_VERSION));
  const rtc = GoldfishRtc.checkState(entry(devices, 'goldfish_rtc', RTC_STATE_VERSION));
  const flash0 = m.flash[0].checkState(entry(devices, 'virt.flash0', PFLASH_STATE_VERSION));
  const flash1 = m.flash[1].checkState(entry(devices, 'virt.flash1', PFLASH_STATE_VERSION));
  const fwCfg = FwCfg.checkState(entry(devices, 'fw_cfg', FW_CFG_STATE_VERSION));

  // Everything is well-formed: from here on nothing throws. The clock first (the devices re-arm
  // their timers on it), then the harts (their mip carries the interrupt levels), then devices.
  m.clock.restore(ns);
  for (const [i, h] of m.harts.entries()) h.loadState(harts[i]!);
  m.swi.loadState(swi);
  m.mtimer.loadState(mtimer);
  m.plic.loadState(plic);
  m.gpex.loadState(gpex);
  m.uart.loadState(serial);
  m.rtc.loadState(rtc);
  m.flash[0].loadState(flash0);
  m.flash[1].loadState(flash1);
  m.fwCfg.loadState(fwCfg);
}
