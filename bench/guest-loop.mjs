// A bare-metal riscv64 program for the `virt` board, encoded here so that the bench needs no
// toolchain: it loads one byte N times in a loop, either the UART's line status register
// (ns16550a LSR, offset 5 at 0x10000000: a device register) or a byte of its own code in RAM, then
// powers off through sifive_test (0x100000, FINISHER_PASS 0x5555: exit status 0). Loaded as a
// raw -kernel with -bios none, it starts at 0x80000000 in both QEMU and memtree.
//
//   lui   s2, 0x10000        ; UART base
//   auipc s3, 0              ; a RAM address: this code
//   lui   a0, hi(N)
//   addi  a0, a0, lo(N)
// loop:
//   lbu   t0, 5(s2)          ; or: lbu t0, 0(s3)
//   addi  a0, a0, -1
//   bne   a0, zero, loop
//   lui   t0, 0x100
//   lui   t1, 0x5
//   addi  t1, t1, 0x555
//   sw    t1, 0(t0)
// 1: j 1b

const S2 = 18;
const S3 = 19;
const A0 = 10;
const T0 = 5;
const T1 = 6;

const u = (imm20, rd, op) => ((imm20 << 12) | (rd << 7) | op) >>> 0;
const i = (imm, rs1, f3, rd, op) => (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const s = (imm, rs2, rs1, f3) =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | 0x23) >>> 0;
const b = (imm, rs2, rs1, f3) =>
  ((((imm >> 12) & 1) << 31) |
    (((imm >> 5) & 0x3f) << 25) |
    (rs2 << 20) |
    (rs1 << 15) |
    (f3 << 12) |
    (((imm >> 1) & 0xf) << 8) |
    (((imm >> 11) & 1) << 7) |
    0x63) >>>
  0;

/** The program as 32-bit instruction words. `kind`: 'uart' or 'ram'; `n`: 1 .. 2^31 - 2049. */
export function loopWords(kind, n) {
  if (!Number.isInteger(n) || n < 1 || n > 0x7ffff7ff) throw new RangeError(`loop count ${n}`);
  const hi = (n + 0x800) >>> 12;
  const lo = n - hi * 4096;
  return [
    u(0x10000, S2, 0x37),
    u(0, S3, 0x17),
    u(hi, A0, 0x37),
    i(lo, A0, 0, A0, 0x13),
    kind === 'uart' ? i(5, S2, 4, T0, 0x03) : i(0, S3, 4, T0, 0x03),
    i(-1, A0, 0, A0, 0x13),
    b(-8, 0, A0, 1),
    u(0x100, T0, 0x37),
    u(0x5, T1, 0x37),
    i(0x555, T1, 0, T1, 0x13),
    s(0, T1, T0, 2),
    0x0000006f,
  ];
}

/** The program as the little-endian image to load. */
export function loopImage(kind, n) {
  const w = loopWords(kind, n);
  const img = new Uint8Array(w.length * 4);
  const dv = new DataView(img.buffer);
  for (const [k, x] of w.entries()) dv.setUint32(k * 4, x, true);
  return img;
}
