/**
 * @module machines/riscv/cpu/fpu
 * The F and D extensions (unprivileged spec chapters 11 and 12): 32 registers of 64 bits with
 * NaN-boxed singles, fcsr with the five accrued flags and the dynamic rounding mode.
 *
 * Arithmetic is exact: operands are unpacked to sign, integer significand and exponent (bigints),
 * combined exactly (add, multiply, fused multiply-add) or to enough bits plus a sticky bit
 * (divide, square root), and rounded once to the destination format in the requested mode. That
 * gives every rounding mode and every flag (tininess detected after rounding, as QEMU's
 * softfloat does for RISC-V) without relying on the host's round-to-nearest. Floating point is
 * rare on the boot path, so its speed matters less than its exactness.
 */

const NV = 16;
const DZ = 8;
const OF = 4;
const UF = 2;
const NX = 1;

const RNE = 0;
const RTZ = 1;
const RDN = 2;
const RUP = 3;
const RMM = 4;

/** A format: significand bits with the hidden one, exponent range, total width. */
interface Fmt {
  p: number;
  emin: number;
  emax: number;
  bias: number;
  width: number;
}
const F32: Fmt = { p: 24, emin: -126, emax: 127, bias: 127, width: 32 };
const F64: Fmt = { p: 53, emin: -1022, emax: 1023, bias: 1023, width: 64 };

const CLS_ZERO = 0;
const CLS_FINITE = 1;
const CLS_INF = 2;
const CLS_QNAN = 3;
const CLS_SNAN = 4;

/** An unpacked operand: value = (-1)^neg * m * 2^e for finite ones. */
interface Val {
  cls: number;
  neg: boolean;
  m: bigint;
  e: number;
  subnormal: boolean;
}

const CANON_NAN_S = 0x7fc00000n;
const CANON_NAN_D = 0x7ff8000000000000n;

function unpack(bits: bigint, f: Fmt): Val {
  const fracBits = f.p - 1;
  const expBits = f.width - f.p;
  const neg = ((bits >> BigInt(f.width - 1)) & 1n) === 1n;
  const exp = Number((bits >> BigInt(fracBits)) & ((1n << BigInt(expBits)) - 1n));
  const frac = bits & ((1n << BigInt(fracBits)) - 1n);
  const expMax = (1 << expBits) - 1;
  if (exp === expMax) {
    if (frac === 0n) return { cls: CLS_INF, neg, m: 0n, e: 0, subnormal: false };
    const quiet = (frac >> BigInt(fracBits - 1)) & 1n;
    return { cls: quiet ? CLS_QNAN : CLS_SNAN, neg, m: 0n, e: 0, subnormal: false };
  }
  if (exp === 0) {
    if (frac === 0n) return { cls: CLS_ZERO, neg, m: 0n, e: 0, subnormal: false };
    return { cls: CLS_FINITE, neg, m: frac, e: f.emin - fracBits, subnormal: true };
  }
  return {
    cls: CLS_FINITE,
    neg,
    m: frac | (1n << BigInt(fracBits)),
    e: exp - f.bias - fracBits,
    subnormal: false,
  };
}

function bitLength(m: bigint): number {
  return m.toString(2).length;
}

/** The RISC-V floating-point unit of one hart. */
export class Fpu {
  /** Raw register bits: low and high halves of f0..f31. */
  private readonly r = new Int32Array(64);
  /** fcsr: frm in bits 7:5, fflags in bits 4:0. */
  fcsr = 0;
  /** Integer result of the last instruction that writes an x register (halves). */
  il = 0;
  ih = 0;
  /** Whether the last instruction raised a flag. */
  flagsChanged = false;
  private flags = 0;

  /** Clears registers and fcsr. */
  reset(): void {
    this.r.fill(0);
    this.fcsr = 0;
  }

  /** Raw 64 bits of f`i`. */
  getRaw(i: number): bigint {
    return (BigInt(this.r[2 * i + 1]! >>> 0) << 32n) | BigInt(this.r[2 * i]! >>> 0);
  }
  /** Sets the raw 64 bits of f`i`. */
  setRaw(i: number, v: bigint): void {
    this.r[2 * i] = Number(BigInt.asIntN(32, v));
    this.r[2 * i + 1] = Number(BigInt.asIntN(32, v >> 32n));
  }
  /** Sets f`i` from halves. */
  setRawHalves(i: number, lo: number, hi: number): void {
    this.r[2 * i] = lo;
    this.r[2 * i + 1] = hi;
  }
  /** Writes a single, NaN-boxed (upper 32 bits all ones). */
  setSingleBits(i: number, bits: number): void {
    this.r[2 * i] = bits;
    this.r[2 * i + 1] = -1;
  }
  /** Low half of f`i`. */
  lo(i: number): number {
    return this.r[2 * i]!;
  }
  /** High half of f`i`. */
  hi(i: number): number {
    return this.r[2 * i + 1]!;
  }

  /** Bits of f`i` as a value of format `f`; an improperly boxed single reads as the canonical NaN. */
  private read(i: number, f: Fmt): bigint {
    if (f === F32) return this.r[2 * i + 1] === -1 ? BigInt(this.r[2 * i]! >>> 0) : CANON_NAN_S;
    return this.getRaw(i);
  }
  private write(i: number, f: Fmt, bits: bigint): void {
    if (f === F32) this.setSingleBits(i, Number(BigInt.asIntN(32, bits)));
    else this.setRaw(i, bits);
  }

  /**
   * Executes an OP-FP or fused multiply-add instruction with rounding mode `rm` (already resolved
   * from frm). Returns -1 if illegal, 0 when an f register was written, 1 when an x register was
   * (in {@link il}/{@link ih}).
   */
  exec(inst: number, rm: number, xl: Int32Array, xh: Int32Array): number {
    const op = inst & 0x7f;
    const rd = (inst >>> 7) & 31;
    const rs1 = (inst >>> 15) & 31;
    const rs2 = (inst >>> 20) & 31;
    const f3 = (inst >>> 12) & 7;
    const fmt = (inst >>> 25) & 3;
    const f = fmt === 0 ? F32 : F64;
    this.flags = 0;
    let res = 0;
    if (op !== 0x53) {
      const rs3 = inst >>> 27;
      const a = unpack(this.read(rs1, f), f);
      const b = unpack(this.read(rs2, f), f);
      const c = unpack(this.read(rs3, f), f);
      // FMADD a*b+c, FMSUB a*b-c, FNMSUB -(a*b)+c, FNMADD -(a*b)-c
      const negProd = op === 0x4b || op === 0x4f;
      const negC = op === 0x47 || op === 0x4f;
      this.write(rd, f, this.fma(a, b, c, negProd, negC, f, rm));
    } else {
      const f5 = inst >>> 27;
      switch (f5) {
        case 0x00:
        case 0x01:
        case 0x02:
        case 0x03: {
          const a = unpack(this.read(rs1, f), f);
          const b = unpack(this.read(rs2, f), f);
          let v: bigint;
          if (f5 === 0) v = this.add(a, b, false, f, rm);
          else if (f5 === 1) v = this.add(a, b, true, f, rm);
          else if (f5 === 2) v = this.mul(a, b, f, rm);
          else v = this.div(a, b, f, rm);
          this.write(rd, f, v);
          break;
        }
        case 0x0b:
          if (rs2 !== 0) return -1;
          this.write(rd, f, this.sqrt(unpack(this.read(rs1, f), f), f, rm));
          break;
        case 0x04: {
          if (f3 > 2) return -1;
          const a = this.read(rs1, f);
          const b = this.read(rs2, f);
          const sb = BigInt(f.width - 1);
          const signA = (a >> sb) & 1n;
          const signB = (b >> sb) & 1n;
          const s = f3 === 0 ? signB : f3 === 1 ? signB ^ 1n : signA ^ signB;
          this.write(rd, f, (a & ~(1n << sb)) | (s << sb));
          break;
        }
        case 0x05: {
          if (f3 > 1) return -1;
          this.write(rd, f, this.minMax(rs1, rs2, f, f3 === 1));
          break;
        }
        case 0x08: {
          // FCVT.S.D (fmt 0, rs2 1) and FCVT.D.S (fmt 1, rs2 0)
          if (fmt === 0 && rs2 === 1) {
            const a = unpack(this.read(rs1, F64), F64);
            this.write(rd, F32, this.finishUnary(a, F32, rm));
          } else if (fmt === 1 && rs2 === 0) {
            const a = unpack(this.read(rs1, F32), F32);
            this.write(rd, F64, this.finishUnary(a, F64, rm));
          } else return -1;
          break;
        }
        case 0x14: {
          if (f3 > 2) return -1;
          const a = unpack(this.read(rs1, f), f);
          const b = unpack(this.read(rs2, f), f);
          let v: boolean;
          if (a.cls >= CLS_QNAN || b.cls >= CLS_QNAN) {
            // FEQ is quiet (invalid only for signaling NaNs); FLT and FLE signal on any NaN
            if (f3 !== 2 || a.cls === CLS_SNAN || b.cls === CLS_SNAN) this.flags |= NV;
            v = false;
          } else {
            const c = compare(a, b);
            v = f3 === 2 ? c === 0 : f3 === 1 ? c < 0 : c <= 0;
          }
          this.il = v ? 1 : 0;
          this.ih = 0;
          res = 1;
          break;
        }
        case 0x18: {
          if (rs2 > 3) return -1;
          this.toInt(unpack(this.read(rs1, f), f), rs2, rm);
          res = 1;
          break;
        }
        case 0x1a: {
          if (rs2 > 3) return -1;
          const lo = xl[rs1]!;
          const hi = xh[rs1]!;
          let m: bigint;
          if (rs2 === 0) m = BigInt(lo);
          else if (rs2 === 1) m = BigInt(lo >>> 0);
          else if (rs2 === 2) m = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
          else m = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
          const neg = m < 0n;
          this.write(rd, f, this.round(neg, neg ? -m : m, 0, f, rm));
          break;
        }
        case 0x1c: {
          if (rs2 !== 0) return -1;
          if (f3 === 0) {
            // FMV.X.W / FMV.X.D: raw bits (a single sign-extended), NaN-boxing not checked
            if (fmt === 0) {
              this.il = this.r[2 * rs1]!;
              this.ih = this.il >> 31;
            } else {
              this.il = this.r[2 * rs1]!;
              this.ih = this.r[2 * rs1 + 1]!;
            }
          } else if (f3 === 1) {
            this.il = classify(unpack(this.read(rs1, f), f));
            this.ih = 0;
          } else return -1;
          res = 1;
          break;
        }
        case 0x1e: {
          if (rs2 !== 0 || f3 !== 0) return -1;
          if (fmt === 0) this.setSingleBits(rd, xl[rs1]!);
          else this.setRawHalves(rd, xl[rs1]!, xh[rs1]!);
          break;
        }
        default:
          return -1;
      }
    }
    this.flagsChanged = this.flags !== 0;
    this.fcsr |= this.flags;
    return res;
  }

  private nan(f: Fmt): bigint {
    return f === F32 ? CANON_NAN_S : CANON_NAN_D;
  }
  private inf(neg: boolean, f: Fmt): bigint {
    const e = BigInt((1 << (f.width - f.p)) - 1) << BigInt(f.p - 1);
    return neg ? e | (1n << BigInt(f.width - 1)) : e;
  }
  private zero(neg: boolean, f: Fmt): bigint {
    return neg ? 1n << BigInt(f.width - 1) : 0n;
  }

  /** NaN result: invalid if any operand is signaling; the result is always the canonical NaN. */
  private nanOf(f: Fmt, ...v: Val[]): bigint {
    for (const x of v) if (x.cls === CLS_SNAN) this.flags |= NV;
    return this.nan(f);
  }

  private add(a: Val, b0: Val, sub: boolean, f: Fmt, rm: number): bigint {
    const b = sub ? { ...b0, neg: !b0.neg } : b0;
    if (a.cls >= CLS_QNAN || b.cls >= CLS_QNAN) return this.nanOf(f, a, b);
    if (a.cls === CLS_INF || b.cls === CLS_INF) {
      if (a.cls === CLS_INF && b.cls === CLS_INF && a.neg !== b.neg) {
        this.flags |= NV;
        return this.nan(f);
      }
      return this.inf(a.cls === CLS_INF ? a.neg : b.neg, f);
    }
    return this.addFinite(
      a.neg,
      a.cls === CLS_ZERO ? 0n : a.m,
      a.e,
      b.neg,
      b.cls === CLS_ZERO ? 0n : b.m,
      b.e,
      f,
      rm,
    );
  }

  /** Exact sum of two finite values, rounded; an exact zero sum is +0 except in RDN (IEEE 754 6.3). */
  private addFinite(
    an: boolean,
    am: bigint,
    ae: number,
    bn: boolean,
    bm: bigint,
    be: number,
    f: Fmt,
    rm: number,
  ): bigint {
    if (am === 0n && bm === 0n) return this.zero(an && bn ? true : an !== bn ? rm === RDN : false, f);
    const e = Math.min(ae, be);
    const x = (an ? -am : am) << BigInt(ae - e);
    const y = (bn ? -bm : bm) << BigInt(be - e);
    const s = x + y;
    if (s === 0n) return this.zero(rm === RDN, f);
    return this.round(s < 0n, s < 0n ? -s : s, e, f, rm);
  }

  private mul(a: Val, b: Val, f: Fmt, rm: number): bigint {
    if (a.cls >= CLS_QNAN || b.cls >= CLS_QNAN) return this.nanOf(f, a, b);
    const neg = a.neg !== b.neg;
    if (a.cls === CLS_INF || b.cls === CLS_INF) {
      if (a.cls === CLS_ZERO || b.cls === CLS_ZERO) {
        this.flags |= NV;
        return this.nan(f);
      }
      return this.inf(neg, f);
    }
    if (a.cls === CLS_ZERO || b.cls === CLS_ZERO) return this.zero(neg, f);
    return this.round(neg, a.m * b.m, a.e + b.e, f, rm);
  }

  private fma(a: Val, b: Val, c0: Val, negProd: boolean, negC: boolean, f: Fmt, rm: number): bigint {
    const c = negC ? { ...c0, neg: !c0.neg } : c0;
    const pNeg = (a.neg !== b.neg) !== negProd;
    const infZero = (a.cls === CLS_INF && b.cls === CLS_ZERO) || (a.cls === CLS_ZERO && b.cls === CLS_INF);
    if (infZero) {
      // invalid even when c is a quiet NaN (softfloat's infzero case)
      this.flags |= NV;
      return this.nan(f);
    }
    if (a.cls >= CLS_QNAN || b.cls >= CLS_QNAN || c.cls >= CLS_QNAN) return this.nanOf(f, a, b, c);
    if (a.cls === CLS_INF || b.cls === CLS_INF) {
      if (c.cls === CLS_INF && c.neg !== pNeg) {
        this.flags |= NV;
        return this.nan(f);
      }
      return this.inf(pNeg, f);
    }
    if (c.cls === CLS_INF) return this.inf(c.neg, f);
    const pm = a.cls === CLS_ZERO || b.cls === CLS_ZERO ? 0n : a.m * b.m;
    const pe = a.e + b.e;
    if (pm === 0n && c.cls === CLS_ZERO)
      return this.zero(pNeg && c.neg ? true : pNeg !== c.neg ? rm === RDN : false, f);
    return this.addFinite(pNeg, pm, pe, c.neg, c.cls === CLS_ZERO ? 0n : c.m, c.e, f, rm);
  }

  private div(a: Val, b: Val, f: Fmt, rm: number): bigint {
    if (a.cls >= CLS_QNAN || b.cls >= CLS_QNAN) return this.nanOf(f, a, b);
    const neg = a.neg !== b.neg;
    if (a.cls === CLS_INF) {
      if (b.cls === CLS_INF) {
        this.flags |= NV;
        return this.nan(f);
      }
      return this.inf(neg, f);
    }
    if (b.cls === CLS_INF) return this.zero(neg, f);
    if (b.cls === CLS_ZERO) {
      if (a.cls === CLS_ZERO) {
        this.flags |= NV;
        return this.nan(f);
      }
      this.flags |= DZ;
      return this.inf(neg, f);
    }
    if (a.cls === CLS_ZERO) return this.zero(neg, f);
    // quotient to at least p + 2 bits, then a sticky bit for the remainder
    const k = BigInt(Math.max(0, f.p + 3 + bitLength(b.m) - bitLength(a.m)));
    const num = a.m << k;
    let q = num / b.m;
    const sticky = num % b.m !== 0n;
    q = (q << 1n) | (sticky ? 1n : 0n);
    return this.round(neg, q, a.e - b.e - Number(k) - 1, f, rm);
  }

  private sqrt(a: Val, f: Fmt, rm: number): bigint {
    if (a.cls >= CLS_QNAN) return this.nanOf(f, a);
    if (a.cls === CLS_ZERO) return this.zero(a.neg, f);
    if (a.neg) {
      this.flags |= NV;
      return this.nan(f);
    }
    if (a.cls === CLS_INF) return this.inf(false, f);
    let m = a.m;
    let e = a.e;
    // make the exponent even and the radicand wide enough for p + 2 result bits
    let shift = Math.max(0, 2 * (f.p + 3) - bitLength(m));
    if ((e - shift) % 2 !== 0) shift++;
    m <<= BigInt(shift);
    e -= shift;
    const s = isqrt(m);
    const sticky = s * s !== m;
    return this.round(false, (s << 1n) | (sticky ? 1n : 0n), e / 2 - 1, f, rm);
  }

  private minMax(rs1: number, rs2: number, f: Fmt, max: boolean): bigint {
    const ab = this.read(rs1, f);
    const bb = this.read(rs2, f);
    const a = unpack(ab, f);
    const b = unpack(bb, f);
    if (a.cls === CLS_SNAN || b.cls === CLS_SNAN) this.flags |= NV;
    const aNan = a.cls >= CLS_QNAN;
    const bNan = b.cls >= CLS_QNAN;
    if (aNan && bNan) return this.nan(f);
    if (aNan) return bb;
    if (bNan) return ab;
    const c = compareOrdered(a, b);
    return (max ? c >= 0 : c <= 0) ? ab : bb;
  }

  /** FCVT between formats: NaNs become canonical (invalid if signaling). */
  private finishUnary(a: Val, to: Fmt, rm: number): bigint {
    if (a.cls >= CLS_QNAN) return this.nanOf(to, a);
    if (a.cls === CLS_INF) return this.inf(a.neg, to);
    if (a.cls === CLS_ZERO) return this.zero(a.neg, to);
    return this.round(a.neg, a.m, a.e, to, rm);
  }

  /** FCVT.W/WU/L/LU: rounds to an integer, saturating with NV out of range or on NaN. */
  private toInt(a: Val, kind: number, rm: number): void {
    const bits = kind < 2 ? 32 : 64;
    const signed = (kind & 1) === 0;
    const max = signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n;
    const min = signed ? -(1n << BigInt(bits - 1)) : 0n;
    let v: bigint;
    if (a.cls >= CLS_QNAN) {
      this.flags |= NV;
      v = max;
    } else if (a.cls === CLS_INF) {
      this.flags |= NV;
      v = a.neg ? min : max;
    } else if (a.cls === CLS_ZERO) {
      v = 0n;
    } else {
      let q: bigint;
      let inexact = false;
      if (a.e >= 0) q = a.m << BigInt(a.e);
      else {
        const sh = BigInt(-a.e);
        q = a.m >> sh;
        const rem = a.m & ((1n << sh) - 1n);
        if (rem !== 0n) {
          inexact = true;
          if (roundUp(rm, a.neg, q, rem, 1n << (sh - 1n))) q += 1n;
        }
      }
      v = a.neg ? -q : q;
      if (v > max || v < min) {
        this.flags |= NV;
        v = v > max ? max : min;
      } else if (inexact) this.flags |= NX;
    }
    // W and WU results are sign-extended from 32 bits
    const w = bits === 32 ? BigInt.asIntN(32, v) : BigInt.asIntN(64, v);
    this.il = Number(BigInt.asIntN(32, w));
    this.ih = Number(BigInt.asIntN(32, w >> 32n));
  }

  /**
   * Rounds (-1)^neg * m * 2^e (m > 0) to format `f` in mode `rm`, raising NX, UF and OF as
   * IEEE 754 says with tininess detected after rounding.
   */
  private round(neg: boolean, m: bigint, e: number, f: Fmt, rm: number): bigint {
    const n = bitLength(m);
    let E = e + n - 1; // exponent of the leading bit
    // tininess after rounding: round to p bits with an unbounded exponent and see if it is below 2^emin
    let tiny = false;
    if (E < f.emin) {
      const r = roundBits(m, e, E - f.p + 1, neg, rm);
      tiny = !(r.q === 1n << BigInt(f.p) && E + 1 >= f.emin);
    }
    const qExp = Math.max(E, f.emin) - f.p + 1;
    const r = roundBits(m, e, qExp, neg, rm);
    let q = r.q;
    if (r.inexact) {
      this.flags |= NX;
      if (tiny) this.flags |= UF;
    }
    if (q === 0n) return this.zero(neg, f);
    // recompute the leading-bit exponent after rounding (a carry can add one)
    E = qExp + bitLength(q) - 1;
    if (E > f.emax) {
      this.flags |= OF | NX;
      const toInf = rm === RNE || rm === RMM || (rm === RUP && !neg) || (rm === RDN && neg);
      if (toInf) return this.inf(neg, f);
      const bits = (BigInt(f.emax + f.bias) << BigInt(f.p - 1)) | ((1n << BigInt(f.p - 1)) - 1n);
      return neg ? bits | (1n << BigInt(f.width - 1)) : bits;
    }
    let bits: bigint;
    if (bitLength(q) < f.p) {
      // subnormal: the exponent field is 0 and q is the fraction
      bits = q;
    } else {
      q >>= BigInt(bitLength(q) - f.p); // a carry made q = 2^p: one trailing zero to drop
      bits = (BigInt(E + f.bias) << BigInt(f.p - 1)) | (q & ((1n << BigInt(f.p - 1)) - 1n));
    }
    return neg ? bits | (1n << BigInt(f.width - 1)) : bits;
  }
}

/** m * 2^e rounded to a multiple of 2^qExp: the multiple count and whether it was inexact. */
function roundBits(
  m: bigint,
  e: number,
  qExp: number,
  neg: boolean,
  rm: number,
): { q: bigint; inexact: boolean } {
  const sh = qExp - e;
  if (sh <= 0) return { q: m << BigInt(-sh), inexact: false };
  const s = BigInt(sh);
  let q = m >> s;
  const rem = m & ((1n << s) - 1n);
  if (rem === 0n) return { q, inexact: false };
  if (roundUp(rm, neg, q, rem, 1n << (s - 1n))) q += 1n;
  return { q, inexact: true };
}

/** Whether magnitude q with a nonzero remainder `rem` (half = one half-unit) rounds away from zero. */
function roundUp(rm: number, neg: boolean, q: bigint, rem: bigint, half: bigint): boolean {
  switch (rm) {
    case RNE:
      return rem > half || (rem === half && (q & 1n) === 1n);
    case RTZ:
      return false;
    case RDN:
      return neg;
    case RUP:
      return !neg;
    case RMM:
      return rem >= half;
    default:
      return false;
  }
}

function isqrt(n: bigint): bigint {
  if (n < 2n) return n;
  let x = BigInt(Math.floor(Math.sqrt(Number(n))));
  if (x === 0n) x = 1n;
  // Newton steps from a close start, then fix up to floor(sqrt(n))
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  while (x * x > n) x -= 1n;
  while ((x + 1n) * (x + 1n) <= n) x += 1n;
  return x;
}

/** Ordered comparison of two non-NaN values: -1, 0 or 1 (+0 equals -0). */
function compare(a: Val, b: Val): number {
  const av = signedMag(a);
  const bv = signedMag(b);
  return av.cmp(bv);
}

/** As {@link compare}, but -0 is below +0 (FMIN/FMAX, unprivileged spec 11.6). */
function compareOrdered(a: Val, b: Val): number {
  if (a.cls === CLS_ZERO && b.cls === CLS_ZERO) return a.neg === b.neg ? 0 : a.neg ? -1 : 1;
  return compare(a, b);
}

function signedMag(v: Val): {
  cmp(o: { s: number; m: bigint; e: number; inf: boolean }): number;
  s: number;
  m: bigint;
  e: number;
  inf: boolean;
} {
  const s = v.cls === CLS_ZERO ? 0 : v.neg ? -1 : 1;
  const self = {
    s,
    m: v.m,
    e: v.e,
    inf: v.cls === CLS_INF,
    cmp(o: { s: number; m: bigint; e: number; inf: boolean }): number {
      if (self.s !== o.s) return self.s < o.s ? -1 : 1;
      if (self.s === 0) return 0;
      let mag: number;
      if (self.inf || o.inf) mag = self.inf && o.inf ? 0 : self.inf ? 1 : -1;
      else {
        const e = Math.min(self.e, o.e);
        const x = self.m << BigInt(self.e - e);
        const y = o.m << BigInt(o.e - e);
        mag = x === y ? 0 : x < y ? -1 : 1;
      }
      return self.s < 0 ? -mag : mag;
    },
  };
  return self;
}

/** FCLASS result bit. */
function classify(v: Val): number {
  switch (v.cls) {
    case CLS_INF:
      return v.neg ? 1 << 0 : 1 << 7;
    case CLS_ZERO:
      return v.neg ? 1 << 3 : 1 << 4;
    case CLS_FINITE:
      if (v.subnormal) return v.neg ? 1 << 2 : 1 << 5;
      return v.neg ? 1 << 1 : 1 << 6;
    case CLS_SNAN:
      return 1 << 8;
    default:
      return 1 << 9;
  }
}
