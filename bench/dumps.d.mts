/** A 64-bit address as `info mtree` prints it: 16 hex digits. */
export declare const hex16: (v: number | bigint) => string;
/** One container holding `n` siblings of `type`, named dev0…, 4 KiB apart. */
export declare function siblingsDump(n: number, type: 'i/o' | 'ram'): string;
/** `n` address spaces, each with its own root and one RAM page. */
export declare function spacesDump(n: number): string;
