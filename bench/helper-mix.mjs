// The loop of a CPU interpreter over the eight little-endian typed helpers (loads and stores of 1,
// 2, 4 and 8 bytes), shared by the RAM and the device-register rows of core.bench.mjs.

const SOURCE = `return (n) => {
  let s = 0;
  let b = 0n;
  for (let i = 0; i < n; i++) {
    const j = i & mask;
    const a = addr[j];
    switch (op[j]) {
      case 0:
        s = (s + as.ldub(a)) | 0;
        break;
      case 1:
        s = (s + as.lduwLe(a)) | 0;
        break;
      case 2:
        s = (s + as.ldlLe(a)) | 0;
        break;
      case 3:
        b ^= as.ldqLe(a);
        break;
      case 4:
        as.stb(a, i);
        break;
      case 5:
        as.stwLe(a, i);
        break;
      case 6:
        as.stlLe(a, i);
        break;
      default:
        as.stqLe(a, q);
    }
  }
  return s ^ Number(b & 0xffffn);
};`;

/**
 * Returns `(n) => fold` running `n` accesses of `as`: the i-th picks its helper from `op[j]` (0-3
 * loads of 1, 2, 4, 8 bytes, 4-7 stores of i, or of the bigint `q` for 8 bytes) and its address
 * from `addr[j]`, j = i mod op.length (a power of two); returns what it loaded, folded, so that no
 * load is dead. Made with `new Function`, so that each row gets its own code and type feedback:
 * closures of one function literal share both, and the first row's hits would shape the loop the
 * second row runs.
 */
export function helperMix(as, op, addr, q) {
  return new Function('as', 'op', 'addr', 'mask', 'q', SOURCE)(as, op, addr, op.length - 1, q);
}
