// Type-level test (issue #10): the public types of memtree/core let a user read the model's state
// but not write it behind the model's back. Every `@ts-expect-error` below marks a write that must
// not compile; if one ever compiles, tsc reports the directive as unused and the check fails.
//
// `npm run lint` compiles this file against the sources (tsconfig.json includes test/), and
// test/published-types.test.ts compiles it, with published/, against the emitted
// dist/core/*.d.ts, where the @internal members are stripped.

import type { AddressSpace, MemoryRegion, MemorySystem, RAMBlock } from '../../src/core/index.js';

export function regionFields(mr: MemoryRegion, other: MemoryRegion): void {
  // Reading is what the API is for.
  const seen: unknown[] = [mr.size, mr.addr, mr.enabled, mr.subregions.length, mr.coalesced, mr.ioeventfds];
  void seen;
  // @ts-expect-error a region's size changes through setSize(), a transaction
  mr.size = 0n;
  // @ts-expect-error the address is set by addSubregion()
  mr.addr = 0n;
  // @ts-expect-error enabling is setEnabled()
  mr.enabled = false;
  // @ts-expect-error read-only is setReadonly()
  mr.readonly = true;
  // @ts-expect-error priority is set by addSubregionOverlap()
  mr.priority = 1;
  // @ts-expect-error the alias offset is setAliasOffset()
  mr.aliasOffset = 0n;
  // @ts-expect-error romd mode is setRomdMode()
  mr.romdMode = false;
  // @ts-expect-error the container is set by addSubregion()
  mr.container = null;
  // @ts-expect-error the subregion list is kept in QEMU's order by add/delSubregion()
  mr.subregions.push(other);
  // @ts-expect-error likewise
  mr.subregions[0] = other;
  // @ts-expect-error likewise
  mr.subregions.length = 0;
  // @ts-expect-error the reverse alias links follow the aliases themselves
  mr.aliasedBy.push(other);
  // @ts-expect-error ioeventfds change through addEventfd()/delEventfd(), which tell listeners
  mr.ioeventfds.splice(0, 1);
  // @ts-expect-error coalesced ranges change through addCoalescing()/clearCoalescing()
  mr.coalesced.pop();
  // @ts-expect-error the RAM block belongs to the region for life
  mr.ramBlock = null;
}

export function ramBlockFields(block: RAMBlock): void {
  const seen: unknown[] = [block.idstr, block.offset, block.usedLength, block.maxLength, block.flags];
  void seen;
  // @ts-expect-error the length reserved is fixed
  block.maxLength = 0;
  // (offset, usedLength, idstr and flags have setters only the core sees: published/ checks them.)
}

export function systemFields(ms: MemorySystem, as: AddressSpace): void {
  const seen: unknown[] = [ms.addressSpaces.length, ms.ramList.blocks.length, ms.globalDirtyTracking];
  void seen;
  // @ts-expect-error address spaces register themselves when created
  ms.addressSpaces.push(as);
  // @ts-expect-error blocks are placed by the region factories
  ms.ramList.blocks.splice(0, 1);
  // @ts-expect-error the list version counts adds and removes
  ms.ramList.version = 0;
  // @ts-expect-error an address space's ioeventfds are collected from its view
  as.ioeventfds.pop();
  // @ts-expect-error likewise
  as.ioeventfds = [];
  // @ts-expect-error the result of the last typed access is the helpers'
  as.lastResult = 0;
}

export function stillWritable(ms: MemorySystem, mr: MemoryRegion): void {
  // Hooks and switches QEMU devices set themselves stay writable.
  ms.onRamWrite = null;
  ms.onCodeWrite = null;
  mr.disableReentrancyGuard = true;
}
