/**
 * @module mtree
 * QEMU 7.2's `info mtree` text: printing the core model as QEMU would, reading dumps back,
 * rebuilding a region graph from them, comparing dumps, and explaining what serves an address.
 * Nothing here imports Node, so the browser viewer uses it as it is.
 */

export * from './address-text.js';
export * from './compare.js';
export * from './diff.js';
export { formatDispatch, stripMru } from './dispatch.js';
export * from './lookup.js';
export * from './parse.js';
export * from './print.js';
export * from './ramblock.js';
export * from './rebuild.js';
