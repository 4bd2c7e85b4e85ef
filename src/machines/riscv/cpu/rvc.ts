/**
 * @module machines/riscv/cpu/rvc
 * The C extension as the unprivileged spec (chapter 16) defines it: each 16-bit instruction is an
 * alias of one 32-bit instruction, so the hart expands it once and executes the expansion.
 */

const r = (f7: number, rs2: number, rs1: number, f3: number, rd: number, op: number) =>
  (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
const i = (imm: number, rs1: number, f3: number, rd: number, op: number) =>
  ((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op;
const s = (imm: number, rs2: number, rs1: number, f3: number, op: number) =>
  (((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 31) << 7) | op;
const b = (imm: number, rs2: number, rs1: number, f3: number) =>
  (((imm >> 12) & 1) << 31) |
  (((imm >> 5) & 0x3f) << 25) |
  (rs2 << 20) |
  (rs1 << 15) |
  (f3 << 12) |
  (((imm >> 1) & 0xf) << 8) |
  (((imm >> 11) & 1) << 7) |
  0x63;
const j = (imm: number, rd: number) =>
  (((imm >> 20) & 1) << 31) |
  (((imm >> 1) & 0x3ff) << 21) |
  (((imm >> 11) & 1) << 20) |
  (((imm >> 12) & 0xff) << 12) |
  (rd << 7) |
  0x6f;

/** Bit `n` of `h` moved to bit `to`. */
const bit = (h: number, n: number, to: number) => ((h >> n) & 1) << to;
/** Sign-extends the low `bits` bits. */
const sx = (v: number, bits: number) => (v << (32 - bits)) >> (32 - bits);

/**
 * Expands a 16-bit instruction (low two bits not 11) to its 32-bit equivalent, or returns 1 when it
 * is illegal or reserved in RV64 (or needs F/D the hart lacks).
 */
export function expandCompressed(h: number, hasF: boolean, hasD: boolean): number {
  void hasF;
  const f3 = h >>> 13;
  const rdp = 8 + ((h >> 2) & 7);
  const rs1p = 8 + ((h >> 7) & 7);
  const rd = (h >> 7) & 31;
  const rs2 = (h >> 2) & 31;
  const imm6 = sx(bit(h, 12, 5) | ((h >> 2) & 31), 6);
  switch (h & 3) {
    case 0: {
      const offW = bit(h, 6, 2) | (((h >> 10) & 7) << 3) | bit(h, 5, 6);
      const offD = (((h >> 10) & 7) << 3) | (((h >> 5) & 3) << 6);
      switch (f3) {
        case 0: {
          const nz = (((h >> 11) & 3) << 4) | (((h >> 7) & 15) << 6) | bit(h, 6, 2) | bit(h, 5, 3);
          if (nz === 0) return 1;
          return i(nz, 2, 0, rdp, 0x13);
        }
        case 1:
          return hasD ? i(offD, rs1p, 3, rdp, 0x07) : 1;
        case 2:
          return i(offW, rs1p, 2, rdp, 0x03);
        case 3:
          return i(offD, rs1p, 3, rdp, 0x03);
        case 5:
          return hasD ? s(offD, rdp, rs1p, 3, 0x27) : 1;
        case 6:
          return s(offW, rdp, rs1p, 2, 0x23);
        case 7:
          return s(offD, rdp, rs1p, 3, 0x23);
        default:
          return 1;
      }
    }
    case 1:
      switch (f3) {
        case 0:
          return i(imm6, rd, 0, rd, 0x13);
        case 1:
          return rd === 0 ? 1 : i(imm6, rd, 0, rd, 0x1b);
        case 2:
          return i(imm6, 0, 0, rd, 0x13);
        case 3: {
          if (rd === 2) {
            const nz = sx(
              bit(h, 12, 9) | bit(h, 6, 4) | bit(h, 5, 6) | (((h >> 3) & 3) << 7) | bit(h, 2, 5),
              10,
            );
            return nz === 0 ? 1 : i(nz, 2, 0, 2, 0x13);
          }
          if (imm6 === 0) return 1;
          return ((imm6 << 12) & 0xfffff000) | (rd << 7) | 0x37;
        }
        case 4: {
          const sh = bit(h, 12, 5) | ((h >> 2) & 31);
          switch ((h >> 10) & 3) {
            case 0:
              return i(sh, rs1p, 5, rs1p, 0x13);
            case 1:
              return i(sh | 0x400, rs1p, 5, rs1p, 0x13);
            case 2:
              return i(imm6, rs1p, 7, rs1p, 0x13);
            default: {
              const o = (h >> 5) & 3;
              if ((h & 0x1000) === 0) {
                if (o === 0) return r(0x20, rdp, rs1p, 0, rs1p, 0x33);
                return r(0, rdp, rs1p, o === 1 ? 4 : o === 2 ? 6 : 7, rs1p, 0x33);
              }
              if (o === 0) return r(0x20, rdp, rs1p, 0, rs1p, 0x3b);
              if (o === 1) return r(0, rdp, rs1p, 0, rs1p, 0x3b);
              return 1;
            }
          }
        }
        case 5: {
          const off = sx(
            bit(h, 12, 11) |
              bit(h, 11, 4) |
              (((h >> 9) & 3) << 8) |
              bit(h, 8, 10) |
              bit(h, 7, 6) |
              bit(h, 6, 7) |
              (((h >> 3) & 7) << 1) |
              bit(h, 2, 5),
            12,
          );
          return j(off, 0);
        }
        default: {
          const off = sx(
            bit(h, 12, 8) |
              (((h >> 10) & 3) << 3) |
              (((h >> 5) & 3) << 6) |
              (((h >> 3) & 3) << 1) |
              bit(h, 2, 5),
            9,
          );
          return b(off, 0, rs1p, f3 === 6 ? 0 : 1);
        }
      }
    case 2:
      switch (f3) {
        case 0:
          return i(bit(h, 12, 5) | ((h >> 2) & 31), rd, 1, rd, 0x13);
        case 1: {
          const off = bit(h, 12, 5) | (((h >> 5) & 3) << 3) | (((h >> 2) & 7) << 6);
          return hasD ? i(off, 2, 3, rd, 0x07) : 1;
        }
        case 2: {
          const off = bit(h, 12, 5) | (((h >> 4) & 7) << 2) | (((h >> 2) & 3) << 6);
          return rd === 0 ? 1 : i(off, 2, 2, rd, 0x03);
        }
        case 3: {
          const off = bit(h, 12, 5) | (((h >> 5) & 3) << 3) | (((h >> 2) & 7) << 6);
          return rd === 0 ? 1 : i(off, 2, 3, rd, 0x03);
        }
        case 4:
          if ((h & 0x1000) === 0) {
            if (rs2 === 0) return rd === 0 ? 1 : i(0, rd, 0, 0, 0x67);
            return r(0, rs2, 0, 0, rd, 0x33);
          }
          if (rs2 === 0) return rd === 0 ? 0x00100073 : i(0, rd, 0, 1, 0x67);
          return r(0, rs2, rd, 0, rd, 0x33);
        case 5: {
          const off = (((h >> 10) & 7) << 3) | (((h >> 7) & 7) << 6);
          return hasD ? s(off, rs2, 2, 3, 0x27) : 1;
        }
        case 6: {
          const off = (((h >> 9) & 15) << 2) | (((h >> 7) & 3) << 6);
          return s(off, rs2, 2, 2, 0x23);
        }
        default: {
          const off = (((h >> 10) & 7) << 3) | (((h >> 7) & 7) << 6);
          return s(off, rs2, 2, 3, 0x23);
        }
      }
    default:
      return 1;
  }
}
