import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MigrationError } from './errors.js';
import { decodeMachineState, encodeMachineState, MACHINE_STATE_VERSION } from './machine-state.js';

test('machine state: 64-bit registers and typed arrays survive the JSON payload', () => {
  const fregs = new Float64Array([1.5, -0, Number.NaN]);
  const s = {
    machine: 'riscv-virt',
    devices: {
      hart0: {
        version: 1,
        state: { pc: 0xffff_ffff_8000_0000n, neg: -5n, f: fregs, mem: new Uint8Array([1, 2, 3]) },
      },
    },
  };
  const back = decodeMachineState(MACHINE_STATE_VERSION, encodeMachineState(s));
  const st = back.devices.hart0!.state as { pc: bigint; neg: bigint; f: Float64Array; mem: Uint8Array };
  assert.equal(st.pc, 0xffff_ffff_8000_0000n);
  assert.equal(st.neg, -5n);
  assert.ok(st.f instanceof Float64Array);
  assert.ok(Object.is(st.f[1], -0) && Number.isNaN(st.f[2]));
  assert.deepEqual([...st.mem], [1, 2, 3]);
});

test('machine state: another section version or a payload that is not one is refused', () => {
  const payload = encodeMachineState({ machine: 'x', devices: {} });
  assert.throws(
    () => decodeMachineState(2, payload),
    (e) => e instanceof MigrationError && e.failure === 'bad-version',
  );
  assert.throws(
    () => decodeMachineState(1, new TextEncoder().encode('{"devices":{}}')),
    (e) => e instanceof MigrationError && e.failure === 'corrupt',
  );
  assert.throws(
    () => decodeMachineState(1, new Uint8Array([0x7b, 0xff])),
    (e) => e instanceof MigrationError && e.failure === 'corrupt',
  );
});
