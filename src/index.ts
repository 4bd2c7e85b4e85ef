/**
 * @module memtree
 * QEMU's memory model in TypeScript. The root entry point re-exports the model core
 * (`memtree/core`) and the `info mtree` text format (`memtree/mtree`).
 */

export * from './core/index.js';
export * from './mtree/print.js';
