//! `exp` and `expm1`: `x = n ln2 + r` (Cody–Waite, |r| <= ln2/2), a Taylor polynomial for
//! `e^r - 1`, and scaling by `2^n` split in two factors so subnormal results round once.

use super::Ops;

const LOG2E: f64 = std::f64::consts::LOG2_E;

/// `ln 2` split for the Cody–Waite reduction of f32 (`hi` has trailing zero bits).
const LN2_HI_F32: f64 = 0.693359375;
const LN2_LO_F32: f64 = -2.121_944_4e-4;
const LN2_HI_F64: f64 = 6.931_471_803_691_238e-1;
const LN2_LO_F64: f64 = 1.908_214_929_270_587_7e-10;

/// `1/k!` for `k = 2 ..= N + 1`: the Taylor series of `(e^r - 1 - r) / r^2`.
const fn taylor<const N: usize>() -> [f64; N] {
    let mut c = [0.0; N];
    let mut fact = 1.0;
    let mut i = 0;
    while i < N {
        fact *= (i + 2) as f64;
        c[i] = 1.0 / fact;
        i += 1;
    }
    c
}

/// The polynomial of `exp`: Taylor to `r^8` for f32, to `r^14` for f64.
const EXP_TAYLOR_F32: [f64; 7] = taylor();
const EXP_TAYLOR_F64: [f64; 13] = taylor();

/// `(n as integer, e^r - 1)` for `x = n ln2 + r`. `x` must already be clamped.
#[inline(always)]
fn reduce<O: Ops>(o: &mut O, x: O::F) -> (O::I, O::F) {
    let f32 = o.is_f32();
    let (hi, lo) = if f32 { (LN2_HI_F32, LN2_LO_F32) } else { (LN2_HI_F64, LN2_LO_F64) };
    let l2e = o.k(LOG2E);
    let y = o.mul(x, l2e);
    let (n, ni) = o.round_int(y);
    // r = x - n*hi - n*lo; n*hi is exact (hi has trailing zero bits).
    let nn = o.neg(n);
    let r = o.madd_k(nn, hi, x);
    let r = o.madd_k(nn, lo, r);
    // e^r - 1 = r + r^2 * q(r), q the Taylor series from 1/2! on.
    let q = o.poly(r, if f32 { &EXP_TAYLOR_F32 } else { &EXP_TAYLOR_F64 });
    let r2 = o.mul(r, r);
    (ni, o.madd(r2, q, r))
}

/// `e^x`, within 1 ULP of the correctly rounded result (see docs/JIT.md for the measured bound).
#[inline(always)]
pub(crate) fn exp<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let (lo, hi) = if o.is_f32() { (-104.0, 89.0) } else { (-746.0, 710.0) };
    let xc = o.clamp(x, lo, hi);
    let (ni, p) = reduce(o, xc);
    let one = o.k(1.0);
    let e = o.add(one, p);
    let n1 = o.sshr(ni, 1);
    let n2 = o.isub(ni, n1);
    let s1 = o.pow2i(n1);
    let s2 = o.pow2i(n2);
    let e = o.mul(e, s1);
    o.mul(e, s2)
}

/// `e^x - 1` for `0 <= x <= 80` (or NaN), as [`expm1`] computes it there, bit for bit:
/// in that range the clamp, the split of `2^n` (n <= 116 never overflows) and the `x == 0`
/// case (the polynomial gives +0 exactly) change nothing, so tanh, whose argument is
/// `2|x|` clamped to 40 (f32) or 80 (f64), skips their ten instructions. A NaN stays NaN
/// (its payload may differ).
#[inline(always)]
pub(crate) fn expm1_small_nonneg<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let (ni, p) = reduce(o, x);
    let s = o.pow2i(ni);
    let one = o.k(1.0);
    let sm1 = o.sub(s, one);
    o.madd(s, p, sm1)
}

/// `e^x - 1`, accurate near 0 (`expm1(x) ≈ x`, `expm1(-0) = -0`).
#[inline(always)]
pub(crate) fn expm1<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let (lo, hi, emax) = if o.is_f32() { (-30.0, 89.0, 127) } else { (-45.0, 710.0, 1023) };
    let xc = o.clamp(x, lo, hi);
    let (ni, p) = reduce(o, xc);
    // s = 2^min(n, emax), u = 2^(n - min(n, emax)) in {1, 2}: 2^n itself may overflow.
    let emaxv = o.ki(emax);
    let big = o.igt(ni, emaxv);
    let nc = o.sel_i(big, emaxv, ni);
    let rest = o.isub(ni, nc);
    let s = o.pow2i(nc);
    let u = o.pow2i(rest);
    let one = o.k(1.0);
    let sm1 = o.sub(s, one);
    let r = o.madd(s, p, sm1);
    let r = o.mul(r, u);
    let zero = o.eq_k(x, 0.0);
    o.sel(zero, x, r)
}
