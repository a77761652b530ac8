//! `log` and `log1p` after fdlibm/musl: `x = 2^k (1+f)` with `1+f` in `[sqrt(2)/2, sqrt(2))`,
//! then `log(1+f) = 2s + s*R(s^2)`, `s = f/(2+f)`, with the correction term of `log1p`.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};

use super::Fx;

#[allow(clippy::excessive_precision)] // musl's hex-float constants, printed exactly
pub(crate) const LG_F32: [f64; 4] =
    [0.666_666_626_930_236_8, 0.400_009_721_517_562_87, 0.284_987_866_878_509_52, 0.242_790_788_412_094_12];
#[allow(clippy::excessive_precision)]
pub(crate) const LG_F64: [f64; 7] = [
    6.666_666_666_666_735e-1,
    3.999_999_999_940_942e-1,
    2.857_142_874_366_239e-1,
    2.222_219_843_214_978_4e-1,
    1.818_357_216_161_805e-1,
    1.531_383_769_920_937_3e-1,
    1.479_819_860_511_658_6e-1,
];

/// Layout constants of one float format for the reduction.
pub(crate) struct Fmt {
    /// Bits of `sqrt(2)/2`'s neighbourhood used to centre the mantissa (musl's 0x3f3504f3).
    pub centre: i64,
    pub one: i64,
    pub mant_mask: i64,
    pub mant_bits: i64,
    pub bias: i64,
    /// `ln 2` split for `k ln2` (musl's `ln2_hi`, `ln2_lo`).
    pub ln2_hi: f64,
    pub ln2_lo: f64,
}

#[allow(clippy::excessive_precision)]
pub(crate) const fn fmt(f32: bool) -> Fmt {
    if f32 {
        Fmt {
            centre: 0x3f3504f3,
            one: 0x3f800000,
            mant_mask: 0x007fffff,
            mant_bits: 23,
            bias: 0x7f,
            ln2_hi: 6.931_381_225_6e-1,
            ln2_lo: 9.058_000_614_5e-6,
        }
    } else {
        Fmt {
            centre: 0x3fe6_a09e_0000_0000,
            one: 0x3ff0_0000_0000_0000,
            mant_mask: 0x000f_ffff_ffff_ffff,
            mant_bits: 52,
            bias: 0x3ff,
            ln2_hi: 6.931_471_803_691_238e-1,
            ln2_lo: 1.908_214_929_270_587_7e-10,
        }
    }
}

/// Splits positive `u` into `(k, f)` with `u = 2^k (1+f)`, `1+f` in `[sqrt(2)/2, sqrt(2))`;
/// `k` is an integer value of the matching integer type.
fn split(fx: &mut Fx, u: Value, m: &Fmt) -> (Value, Value) {
    let bits = fx.bits_of(u);
    let it = fx.ty(bits);
    let c = fx.iconst(it, m.one - m.centre);
    let bits = fx.b.ins().iadd(bits, c);
    let e = fx.shr_u(bits, m.mant_bits);
    let bias = fx.iconst(it, m.bias);
    let k = fx.b.ins().isub(e, bias);
    let mask = fx.iconst(it, m.mant_mask);
    let mant = fx.b.ins().band(bits, mask);
    let centre = fx.iconst(it, m.centre);
    let mant = fx.b.ins().iadd(mant, centre);
    let onef = fx.float_of_bits(mant);
    let t = fx.ty(u);
    let one = fx.fconst(t, 1.0);
    (k, fx.sub(onef, one))
}

/// `log(1+f) + c` for the reduced `f`, plus `k ln2` (`dk` is `k` as a float).
fn core(fx: &mut Fx, f: Value, dk: Value, c: Value, m: &Fmt) -> Value {
    let t = fx.ty(f);
    let two = fx.fconst(t, 2.0);
    let d = fx.add(two, f);
    let s = fx.div(f, d);
    let z = fx.mul(s, s);
    let w = fx.mul(z, z);
    let (t1, t2) = if t.lane_type() == types::F32 {
        let a = fx.poly(w, &[LG_F32[1], LG_F32[3]]);
        let b = fx.poly(w, &[LG_F32[0], LG_F32[2]]);
        (fx.mul(w, a), fx.mul(z, b))
    } else {
        let a = fx.poly(w, &[LG_F64[1], LG_F64[3], LG_F64[5]]);
        let b = fx.poly(w, &[LG_F64[0], LG_F64[2], LG_F64[4], LG_F64[6]]);
        (fx.mul(w, a), fx.mul(z, b))
    };
    let r = fx.add(t2, t1);
    let half = fx.fconst(t, 0.5);
    let hf = fx.mul(half, f);
    let hfsq = fx.mul(hf, f);
    // s*(hfsq+R) + (dk*ln2_lo + c) - hfsq + f + dk*ln2_hi, in this order.
    let a = fx.add(hfsq, r);
    let a = fx.mul(s, a);
    let lo = fx.madd_k(dk, m.ln2_lo, c);
    let a = fx.add(a, lo);
    let a = fx.sub(a, hfsq);
    let a = fx.add(a, f);
    let hi = fx.fconst(t, m.ln2_hi);
    let khi = fx.mul(dk, hi);
    fx.add(a, khi)
}

/// Natural logarithm: NaN below 0, `-inf` at ±0, subnormals handled by prescaling.
pub(crate) fn log(fx: &mut Fx, x: Value) -> Value {
    let t = fx.ty(x);
    let f32 = fx.is_f32(x);
    let m = fmt(f32);
    let (min_normal, scale, scale_exp) =
        if f32 { (f32::MIN_POSITIVE as f64, 33554432.0, 25) } else { (f64::MIN_POSITIVE, 18014398509481984.0, 54) };
    let sub = fx.fcmp_k(FloatCC::LessThan, x, min_normal);
    let sc = fx.fconst(t, scale);
    let sx = fx.mul(x, sc);
    let u = fx.sel(sub, sx, x);
    let (k, f) = split(fx, u, &m);
    let it = fx.ty(k);
    let adj = fx.iconst(it, scale_exp);
    let kadj = fx.b.ins().isub(k, adj);
    let k = fx.sel(sub, kadj, k);
    let dk = fx.int_to_float(k);
    let zero = fx.fconst(t, 0.0);
    let r = core(fx, f, dk, zero, &m);
    // Special values: x < 0 -> NaN, ±0 -> -inf, +inf -> +inf, NaN -> NaN.
    let neg = fx.fcmp_k(FloatCC::LessThan, x, 0.0);
    let r = fx.sel_k(neg, f64::NAN, r);
    let z = fx.fcmp_k(FloatCC::Equal, x, 0.0);
    let r = fx.sel_k(z, f64::NEG_INFINITY, r);
    let inf = fx.fcmp_k(FloatCC::Equal, x, f64::INFINITY);
    let r = fx.sel(inf, x, r);
    let nan = fx.isnan(x);
    fx.sel(nan, x, r)
}

/// `log(1 + x)`, accurate near 0 (`log1p(x) ≈ x`, `log1p(-0) = -0`).
pub(crate) fn log1p(fx: &mut Fx, x: Value) -> Value {
    let t = fx.ty(x);
    let f32 = fx.is_f32(x);
    let m = fmt(f32);
    let one = fx.fconst(t, 1.0);
    let u = fx.add(one, x);
    let (k, f) = split(fx, u, &m);
    // c = (k >= 2 ? 1-(u-x) : x-(u-1)) / u: the rounding error of 1+x, relative to u.
    let it = fx.ty(k);
    let two = fx.iconst(it, 2);
    let kge2 = fx.icmp(cranelift_codegen::ir::condcodes::IntCC::SignedGreaterThanOrEqual, k, two);
    let umx = fx.sub(u, x);
    let c1 = fx.sub(one, umx);
    let um1 = fx.sub(u, one);
    let c2 = fx.sub(x, um1);
    let c = fx.sel(kge2, c1, c2);
    let c = fx.div(c, u);
    // Near 0 (1+x in [sqrt(2)/2, sqrt(2))) the reduction is f = x, k = 0, c = 0.
    let small_hi = fx.fcmp_k(FloatCC::LessThan, x, 0.414_213_56);
    let small_lo = fx.fcmp_k(FloatCC::GreaterThan, x, -0.292_893_22);
    let small = fx.and(small_hi, small_lo);
    let f = fx.sel(small, x, f);
    let c = fx.sel_k(small, 0.0, c);
    let zi = fx.iconst(it, 0);
    let k = fx.sel(small, zi, k);
    let dk = fx.int_to_float(k);
    let r = core(fx, f, dk, c, &m);
    // Special values: x < -1 -> NaN, -1 -> -inf, +inf -> +inf, NaN -> NaN, ±0 -> ±0.
    let below = fx.fcmp_k(FloatCC::LessThan, x, -1.0);
    let r = fx.sel_k(below, f64::NAN, r);
    let m1 = fx.fcmp_k(FloatCC::Equal, x, -1.0);
    let r = fx.sel_k(m1, f64::NEG_INFINITY, r);
    let inf = fx.fcmp_k(FloatCC::Equal, x, f64::INFINITY);
    let r = fx.sel(inf, x, r);
    let nan = fx.isnan(x);
    let r = fx.sel(nan, x, r);
    let z = fx.fcmp_k(FloatCC::Equal, x, 0.0);
    fx.sel(z, x, r)
}
