import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MemoryRegionSection } from './flatview.js';
import type { MemoryListener } from './listener.js';
import { MemorySystem } from './system.js';

function sec(s: MemoryRegionSection): string {
  const start = s.offsetWithinAddressSpace;
  const off = s.offsetWithinRegion ? ` @${s.offsetWithinRegion.toString(16)}` : '';
  return `${start.toString(16)}-${(start + s.size - 1n).toString(16)} ${s.mr?.name}${off}`;
}

function recording(log: string[], tag: string, priority = 0): MemoryListener {
  return {
    name: tag,
    priority,
    begin: () => log.push(`${tag} begin`),
    commit: () => log.push(`${tag} commit`),
    regionAdd: (s) => log.push(`${tag} add ${sec(s)}`),
    regionDel: (s) => log.push(`${tag} del ${sec(s)}`),
    regionNop: (s) => log.push(`${tag} nop ${sec(s)}`),
  };
}

/** A small tree: RAM, a device and a window over them (the shape of a PC's low memory). */
function spec63() {
  const ms = new MemorySystem();
  const sys = ms.container('sys', 0x10000);
  const ram0 = ms.ram('ram0', 0x8000);
  const dev = ms.io('dev', 0x800, { read: () => 0 });
  const win = ms.container('win', 0x4000);
  sys.addSubregion(0, ram0);
  sys.addSubregionOverlap(0, ms.io('bg', 0x10000, { read: () => 0 }), -1);
  sys.addSubregionOverlap(0x4000, win, 1);
  win.addSubregion(0x1000, dev);
  sys.addSubregion(0xc000, ms.alias('mirror', ram0, 0x6000, 0x2000));
  return { ms, sys, dev, as: ms.addressSpace(sys, 'demo') };
}

describe('MemoryListener', () => {
  it('replays the current view on registration and removes it on unregistration', () => {
    const { as } = spec63();
    const log: string[] = [];
    const l = recording(log, 'L');
    as.addListener(l);
    assert.deepEqual(log, [
      'L begin',
      'L add 0-4fff ram0',
      'L add 5000-57ff dev',
      'L add 5800-7fff ram0 @5800',
      'L add 8000-bfff bg @8000',
      'L add c000-dfff ram0 @6000',
      'L add e000-ffff bg @e000',
      'L commit',
    ]);
    log.length = 0;
    as.removeListener(l);
    assert.equal(log[0], 'L begin');
    assert.equal(log[1], 'L del 0-4fff ram0');
    assert.equal(log.at(-1), 'L commit');
    assert.throws(() => as.removeListener(l), { code: 'ERR_LISTENER' });
  });

  it('hears the topology diff of address_space_update_topology_pass: all deletions, then adds and nops in address order', () => {
    const { as, dev } = spec63();
    const log: string[] = [];
    as.addListener(recording(log, 'L'));
    log.length = 0;
    dev.setAddress(0x2000);
    assert.deepEqual(log, [
      'L begin',
      'L del 0-4fff ram0',
      'L del 5000-57ff dev',
      'L del 5800-7fff ram0 @5800',
      'L add 0-5fff ram0',
      'L add 6000-67ff dev',
      'L add 6800-7fff ram0 @6800',
      'L nop 8000-bfff bg @8000',
      'L nop c000-dfff ram0 @6000',
      'L nop e000-ffff bg @e000',
      'L commit',
    ]);
  });

  it('calls additions forward and deletions in reverse priority order', () => {
    const { as, dev, ms } = spec63();
    const log: string[] = [];
    as.addListener(recording(log, 'high', 10));
    as.addListener(recording(log, 'low', 1));
    as.addListener(recording(log, 'low2', 1));
    assert.deepEqual(
      ms.listeners.map((l) => l.name),
      ['low', 'low2', 'high'],
    );
    log.length = 0;
    dev.setEnabled(false);
    const firstDel = log.findIndex((e) => e.includes(' del '));
    assert.deepEqual(log.slice(0, 3), ['low begin', 'low2 begin', 'high begin']);
    assert.deepEqual(log.slice(firstDel, firstDel + 3), [
      'high del 0-4fff ram0',
      'low2 del 0-4fff ram0',
      'low del 0-4fff ram0',
    ]);
    const firstAdd = log.findIndex((e) => e.includes(' add '));
    assert.deepEqual(log.slice(firstAdd, firstAdd + 3), [
      'low add 0-7fff ram0',
      'low2 add 0-7fff ram0',
      'high add 0-7fff ram0',
    ]);
    assert.deepEqual(log.slice(-3), ['low commit', 'low2 commit', 'high commit']);
  });

  it('coalesces nested transactions into one update at the outermost commit', () => {
    const { as, dev, ms, sys } = spec63();
    const log: string[] = [];
    as.addListener(recording(log, 'L'));
    log.length = 0;
    const before = as.currentView;
    ms.transaction(() => {
      dev.setAddress(0x2000);
      ms.transaction(() => dev.setAddress(0x3000));
      sys.addSubregion(0xf000, ms.ram('late', 0x100));
      assert.equal(as.currentView, before); // nothing observable until the outermost commit
      assert.deepEqual(log, []);
    });
    assert.equal(log.filter((e) => e.endsWith('begin')).length, 1);
    assert.ok(log.includes('L add 7000-77ff dev'));
    assert.ok(log.includes('L add f000-f0ff late'));
    assert.ok(!log.some((e) => e.includes('6000-67ff dev')));
  });

  it('sends nops (and reuses the view) for a change that no view can see; nothing for equal values', () => {
    const { as, ms } = spec63();
    const log: string[] = [];
    as.addListener(recording(log, 'L'));
    const view = as.currentView;
    log.length = 0;
    const loose = ms.container('loose', 0x100);
    loose.addSubregion(0, ms.ram('loose-ram', 0x10)); // on no tree
    assert.equal(as.currentView, view);
    assert.equal(log.filter((e) => e.includes(' nop ')).length, view.ranges.length);
    assert.ok(!log.some((e) => e.includes(' add ') || e.includes(' del ')));
    log.length = 0;
    loose.setEnabled(true); // already enabled: a no-op, no transaction at all
    assert.deepEqual(log, []);
  });

  it('reports dirty logging changes as nop + logStart/logStop, not del/add', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    const vram = ms.ram('vga.vram', 0x2000);
    sys.addSubregion(0, vram);
    sys.addSubregion(0x4000, ms.io('dev', 0x100, { read: () => 0 }));
    const as = ms.addressSpace(sys);
    const log: string[] = [];
    as.addListener({
      ...recording(log, 'L'),
      logStart: (s, o, n) => log.push(`start ${sec(s)} ${o}->${n}`),
      logStop: (s, o, n) => log.push(`stop ${sec(s)} ${o}->${n}`),
    });
    log.length = 0;
    vram.setLog(true, 0);
    assert.deepEqual(log, [
      'L begin',
      'L nop 0-1fff vga.vram',
      'start 0-1fff vga.vram 0->1',
      'L nop 4000-40ff dev',
      'L commit',
    ]);
    log.length = 0;
    vram.setLog(false, 0);
    assert.deepEqual(log, [
      'L begin',
      'L nop 0-1fff vga.vram',
      'stop 0-1fff vga.vram 1->0',
      'L nop 4000-40ff dev',
      'L commit',
    ]);
  });

  it('announces coalesced MMIO ranges at once, clipped to the flat ranges', () => {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x10000);
    const dev = ms.io('dev', 0x1000, { read: () => 0 });
    sys.addSubregion(0x2000, dev);
    sys.addSubregionOverlap(0x2800, ms.ram('cover', 0x100), 1);
    const as = ms.addressSpace(sys);
    const log: string[] = [];
    as.addListener({
      coalescedIoAdd: (s, a, l) => log.push(`add ${sec(s)} ${a.toString(16)}+${l.toString(16)}`),
      coalescedIoDel: (s, a, l) => log.push(`del ${sec(s)} ${a.toString(16)}+${l.toString(16)}`),
    });
    dev.addCoalescing(0x700, 0x200);
    // [0x2700, 0x2900) in guest addresses: cover hides 0x2800-0x28ff, so only the piece in the
    // first dev range is announced; the second dev range starts at 0x2900, past the end.
    assert.deepEqual(log, ['add 2000-27ff dev 2700+100']);
    log.length = 0;
    dev.clearCoalescing();
    assert.deepEqual(log, ['del 2000-27ff dev 2700+100']);
  });
});

describe('global dirty logging and the guest run state', () => {
  // Expectations follow QEMU 7.2's memory_global_dirty_log_start/stop and the postponed stop
  // (softmmu/memory.c): a stop while the VM is stopped waits for the VM to run again. Log masks
  // are client bits: MIGRATION is client 2, so logging adds 1 << 2 = 4.
  function machine() {
    const ms = new MemorySystem();
    const sys = ms.container('sys', 0x100000);
    sys.addSubregion(0, ms.ram('ram', 0x10000));
    const as = ms.addressSpace(sys);
    const log: string[] = [];
    as.addListener({
      logGlobalStart: () => log.push('global start'),
      logGlobalStop: () => log.push('global stop'),
      logStart: (s, o, n) => log.push(`start ${s.mr?.name} ${o}->${n}`),
      logStop: (s, o, n) => log.push(`stop ${s.mr?.name} ${o}->${n}`),
    });
    return { ms, log };
  }

  it('stops at once while the guest runs', () => {
    const { ms, log } = machine();
    ms.globalDirtyLogStart(1);
    ms.globalDirtyLogStop(1);
    assert.equal(ms.globalDirtyTracking, 0);
    assert.deepEqual(log, ['global start', 'start ram 0->4', 'stop ram 4->0', 'global stop']);
  });

  it('postpones a stop while the guest is stopped, until it runs again', () => {
    const { ms, log } = machine();
    ms.globalDirtyLogStart(1);
    ms.setRunning(false);
    ms.globalDirtyLogStop(1);
    assert.equal(ms.globalDirtyTracking, 1, 'still logging');
    assert.deepEqual(log, ['global start', 'start ram 0->4']);
    ms.setRunning(true);
    assert.equal(ms.globalDirtyTracking, 0);
    assert.deepEqual(log.slice(2), ['stop ram 4->0', 'global stop']);
    ms.setRunning(false);
    ms.setRunning(true); // nothing postponed: nothing happens
    assert.equal(log.length, 4);
  });

  it('cancels a postponed stop of the reasons started again, and batches the others', () => {
    const { ms, log } = machine();
    ms.globalDirtyLogStart(1 | 2);
    ms.setRunning(false);
    ms.globalDirtyLogStop(1);
    // start(1) removes 1 from the postponed stop, which is then empty: logging just goes on.
    ms.globalDirtyLogStart(1);
    assert.equal(ms.globalDirtyTracking, 3);
    ms.globalDirtyLogStop(1);
    ms.globalDirtyLogStop(2);
    assert.equal(ms.globalDirtyTracking, 3);
    // start(4) settles the postponed stop of 1 and 2 first (the set empties: listeners hear the
    // stop), then starts 4 as a first reason (listeners hear the start again).
    ms.globalDirtyLogStart(4);
    assert.equal(ms.globalDirtyTracking, 4);
    assert.deepEqual(log.slice(2), ['stop ram 4->0', 'global stop', 'global start', 'start ram 0->4']);
  });
});
