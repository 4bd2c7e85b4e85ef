// Type-level test (issue #10), compiled only against the published dist/core/*.d.ts by
// test/published-types.test.ts (tsconfig.json leaves this folder out): these fields have setters
// the core itself uses, marked @internal, so they are read-only only once stripInternal removed
// the setters. Each `@ts-expect-error` marks a write that must not compile for a user.

import type { MemorySystem, RAMBlock } from '../../../src/core/index.js';

export function ramBlockSetters(block: RAMBlock): void {
  // @ts-expect-error moving a block in ram_addr space would desynchronise the RAM list and bitmaps
  block.offset = 0;
  // @ts-expect-error the used length changes through MemorySystem.ramResize()
  block.usedLength = 0;
  // @ts-expect-error the id is set when the region is created
  block.idstr = 'x';
  // @ts-expect-error flags are the system's
  block.flags = 0;
  // @ts-expect-error the region is linked when the block is created
  block.mr = null;
  // @ts-expect-error the resize callback is a RamOptions option
  block.resized = null;
}

export function systemSetters(ms: MemorySystem): void {
  // @ts-expect-error dirty tracking changes through globalDirtyLogStart()/Stop(), which re-render
  ms.globalDirtyTracking = 1;
  // @ts-expect-error the TLB flush on clear is the system's own hook
  ms.dirty.onClear = null;
}
