//! `log` and `log1p` after fdlibm/musl: `x = 2^k (1+f)` with `1+f` in `[sqrt(2)/2, sqrt(2))`,
//! then `log(1+f) = 2s + s*R(s^2)`, `s = f/(2+f)`, with the correction term of `log1p`.

use super::Ops;

#[allow(clippy::excessive_precision)] // musl's hex-float constants, printed exactly
const LG_F32: [f64; 4] =
    [0.666_666_626_930_236_8, 0.400_009_721_517_562_87, 0.284_987_866_878_509_52, 0.242_790_788_412_094_12];
#[allow(clippy::excessive_precision)]
const LG_F64: [f64; 7] = [
    6.666_666_666_666_735e-1,
    3.999_999_999_940_942e-1,
    2.857_142_874_366_239e-1,
    2.222_219_843_214_978_4e-1,
    1.818_357_216_161_805e-1,
    1.531_383_769_920_937_3e-1,
    1.479_819_860_511_658_6e-1,
];

/// Layout constants of one float format for the reduction.
struct Fmt {
    /// Bits of `sqrt(2)/2`'s neighbourhood used to centre the mantissa (musl's 0x3f3504f3).
    centre: i64,
    one: i64,
    mant_mask: i64,
    mant_bits: u32,
    bias: i64,
    /// `ln 2` split for `k ln2` (musl's `ln2_hi`, `ln2_lo`).
    ln2_hi: f64,
    ln2_lo: f64,
    /// `R(s^2)`'s coefficients split by parity, evaluated in `w = s^4`.
    lg_odd: &'static [f64],
    lg_even: &'static [f64],
}

#[allow(clippy::excessive_precision)]
const F32: Fmt = Fmt {
    centre: 0x3f3504f3,
    one: 0x3f800000,
    mant_mask: 0x007fffff,
    mant_bits: 23,
    bias: 0x7f,
    ln2_hi: 6.931_381_225_6e-1,
    ln2_lo: 9.058_000_614_5e-6,
    lg_odd: &[LG_F32[1], LG_F32[3]],
    lg_even: &[LG_F32[0], LG_F32[2]],
};

const F64: Fmt = Fmt {
    centre: 0x3fe6_a09e_0000_0000,
    one: 0x3ff0_0000_0000_0000,
    mant_mask: 0x000f_ffff_ffff_ffff,
    mant_bits: 52,
    bias: 0x3ff,
    ln2_hi: 6.931_471_803_691_238e-1,
    ln2_lo: 1.908_214_929_270_587_7e-10,
    lg_odd: &[LG_F64[1], LG_F64[3], LG_F64[5]],
    lg_even: &[LG_F64[0], LG_F64[2], LG_F64[4], LG_F64[6]],
};

#[inline(always)]
fn fmt<O: Ops>(o: &O) -> &'static Fmt {
    if o.is_f32() {
        &F32
    } else {
        &F64
    }
}

/// Splits positive `u` into `(k, f)` with `u = 2^k (1+f)`, `1+f` in `[sqrt(2)/2, sqrt(2))`.
#[inline(always)]
fn split<O: Ops>(o: &mut O, u: O::F, m: &Fmt) -> (O::I, O::F) {
    let bits = o.bits(u);
    let c = o.ki(m.one - m.centre);
    let bits = o.iadd(bits, c);
    let e = o.ushr(bits, m.mant_bits);
    let bias = o.ki(m.bias);
    let k = o.isub(e, bias);
    let mask = o.ki(m.mant_mask);
    let mant = o.iand(bits, mask);
    let centre = o.ki(m.centre);
    let mant = o.iadd(mant, centre);
    let onef = o.of_bits(mant);
    let one = o.k(1.0);
    (k, o.sub(onef, one))
}

/// `log(1+f) + c` for the reduced `f`, plus `k ln2` (`dk` is `k` as a float).
#[inline(always)]
fn core<O: Ops>(o: &mut O, f: O::F, dk: O::F, c: O::F, m: &Fmt) -> O::F {
    let two = o.k(2.0);
    let d = o.add(two, f);
    let s = o.div(f, d);
    let z = o.mul(s, s);
    let w = o.mul(z, z);
    let a = o.poly(w, m.lg_odd);
    let t1 = o.mul(w, a);
    let b = o.poly(w, m.lg_even);
    let t2 = o.mul(z, b);
    let r = o.add(t2, t1);
    let half = o.k(0.5);
    let hf = o.mul(half, f);
    let hfsq = o.mul(hf, f);
    // s*(hfsq+R) + (dk*ln2_lo + c) - hfsq + f + dk*ln2_hi, in this order.
    let a = o.add(hfsq, r);
    let a = o.mul(s, a);
    let lo = o.madd_k(dk, m.ln2_lo, c);
    let a = o.add(a, lo);
    let a = o.sub(a, hfsq);
    let a = o.add(a, f);
    let hi = o.k(m.ln2_hi);
    let khi = o.mul(dk, hi);
    o.add(a, khi)
}

/// Natural logarithm: NaN below 0, `-inf` at ±0, subnormals handled by prescaling.
#[inline(always)]
pub(crate) fn log<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let m = fmt(o);
    let (min_normal, scale, scale_exp) = if o.is_f32() {
        (f32::MIN_POSITIVE as f64, 33554432.0, 25)
    } else {
        (f64::MIN_POSITIVE, 18014398509481984.0, 54)
    };
    let sub = o.lt_k(x, min_normal);
    let sc = o.k(scale);
    let sx = o.mul(x, sc);
    let u = o.sel(sub, sx, x);
    let (k, f) = split(o, u, m);
    let adj = o.ki(scale_exp);
    let kadj = o.isub(k, adj);
    let k = o.sel_i(sub, kadj, k);
    let dk = o.int_to_float(k);
    let zero = o.k(0.0);
    let r = core(o, f, dk, zero, m);
    // Special values: x < 0 -> NaN, ±0 -> -inf, +inf -> +inf, NaN -> NaN.
    let neg = o.lt_k(x, 0.0);
    let r = o.sel_k(neg, f64::NAN, r);
    let z = o.eq_k(x, 0.0);
    let r = o.sel_k(z, f64::NEG_INFINITY, r);
    let inf = o.eq_k(x, f64::INFINITY);
    let r = o.sel(inf, x, r);
    let nan = o.is_nan(x);
    o.sel(nan, x, r)
}

/// `log(1 + x)`, accurate near 0 (`log1p(x) ≈ x`, `log1p(-0) = -0`).
#[inline(always)]
pub(crate) fn log1p<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let m = fmt(o);
    let one = o.k(1.0);
    let u = o.add(one, x);
    let (k, f) = split(o, u, m);
    // c = (k >= 2 ? 1-(u-x) : x-(u-1)) / u: the rounding error of 1+x, relative to u.
    let two = o.ki(2);
    let kge2 = o.ige(k, two);
    let umx = o.sub(u, x);
    let c1 = o.sub(one, umx);
    let um1 = o.sub(u, one);
    let c2 = o.sub(x, um1);
    let c = o.sel(kge2, c1, c2);
    let c = o.div(c, u);
    // Near 0 (1+x in [sqrt(2)/2, sqrt(2))) the reduction is f = x, k = 0, c = 0.
    let small_hi = o.lt_k(x, 0.414_213_56);
    let small_lo = o.gt_k(x, -0.292_893_22);
    let small = o.and(small_hi, small_lo);
    let f = o.sel(small, x, f);
    let c = o.sel_k(small, 0.0, c);
    let zi = o.ki(0);
    let k = o.sel_i(small, zi, k);
    let dk = o.int_to_float(k);
    let r = core(o, f, dk, c, m);
    // Special values: x < -1 -> NaN, -1 -> -inf, +inf -> +inf, NaN -> NaN, ±0 -> ±0.
    let below = o.lt_k(x, -1.0);
    let r = o.sel_k(below, f64::NAN, r);
    let m1 = o.eq_k(x, -1.0);
    let r = o.sel_k(m1, f64::NEG_INFINITY, r);
    let inf = o.eq_k(x, f64::INFINITY);
    let r = o.sel(inf, x, r);
    let nan = o.is_nan(x);
    let r = o.sel(nan, x, r);
    let z = o.eq_k(x, 0.0);
    o.sel(z, x, r)
}
