//! `exp` and `expm1`: `x = n ln2 + r` (Cody–Waite, |r| <= ln2/2), a Taylor polynomial for
//! `e^r - 1`, and scaling by `2^n` split in two factors so subnormal results round once.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{InstBuilder, Value};

use super::Fx;

const LOG2E: f64 = std::f64::consts::LOG2_E;

/// `ln 2` split for the Cody–Waite reduction of f32 (`hi` has trailing zero bits).
pub(crate) const LN2_HI_F32: f64 = 0.693359375;
pub(crate) const LN2_LO_F32: f64 = -2.121_944_4e-4;
pub(crate) const LN2_HI_F64: f64 = 6.931_471_803_691_238e-1;
pub(crate) const LN2_LO_F64: f64 = 1.908_214_929_270_587_7e-10;

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
pub(crate) const EXP_TAYLOR_F32: [f64; 7] = taylor();
pub(crate) const EXP_TAYLOR_F64: [f64; 13] = taylor();

/// `(n, n as integer, e^r - 1)` for `x = n ln2 + r`. `x` must already be clamped.
fn reduce(fx: &mut Fx, x: Value) -> (Value, Value, Value) {
    let t = fx.ty(x);
    let f32 = fx.is_f32(x);
    let (hi, lo) = if f32 { (LN2_HI_F32, LN2_LO_F32) } else { (LN2_HI_F64, LN2_LO_F64) };
    let l2e = fx.fconst(t, LOG2E);
    let y = fx.mul(x, l2e);
    let (n, ni) = fx.round_int(y);
    // r = x - n*hi - n*lo; n*hi is exact (hi has trailing zero bits).
    let nn = fx.b.ins().fneg(n);
    let r = fx.madd_k(nn, hi, x);
    let r = fx.madd_k(nn, lo, r);
    // e^r - 1 = r + r^2 * q(r), q the Taylor series from 1/2! on.
    let q = fx.poly(r, if f32 { &EXP_TAYLOR_F32 } else { &EXP_TAYLOR_F64 });
    let r2 = fx.mul(r, r);
    let p = fx.madd(r2, q, r);
    (n, ni, p)
}

/// `e^x`, within 1 ULP of the correctly rounded result (see docs/JIT.md for the measured bound).
pub(crate) fn exp(fx: &mut Fx, x: Value) -> Value {
    let t = fx.ty(x);
    let (lo, hi) = if fx.is_f32(x) { (-104.0, 89.0) } else { (-746.0, 710.0) };
    let xc = fx.clamp(x, lo, hi);
    let (_, ni, p) = reduce(fx, xc);
    let one = fx.fconst(t, 1.0);
    let e = fx.add(one, p);
    let n1 = fx.shr_s(ni, 1);
    let n2 = fx.b.ins().isub(ni, n1);
    let s1 = fx.pow2i(n1);
    let s2 = fx.pow2i(n2);
    let e = fx.mul(e, s1);
    fx.mul(e, s2)
}

/// `e^x - 1`, accurate near 0 (`expm1(x) ≈ x`, `expm1(-0) = -0`).
pub(crate) fn expm1(fx: &mut Fx, x: Value) -> Value {
    let t = fx.ty(x);
    let (lo, hi, emax) = if fx.is_f32(x) { (-30.0, 89.0, 127) } else { (-45.0, 710.0, 1023) };
    let xc = fx.clamp(x, lo, hi);
    let (_, ni, p) = reduce(fx, xc);
    let it = fx.ty(ni);
    // s = 2^min(n, emax), u = 2^(n - min(n, emax)) in {1, 2}: 2^n itself may overflow.
    let big = fx.icmp_k(IntCC::SignedGreaterThan, ni, emax);
    let emaxv = fx.iconst(it, emax);
    let nc = fx.sel(big, emaxv, ni);
    let rest = fx.b.ins().isub(ni, nc);
    let s = fx.pow2i(nc);
    let u = fx.pow2i(rest);
    let one = fx.fconst(t, 1.0);
    let sm1 = fx.sub(s, one);
    let r = fx.madd(s, p, sm1);
    let r = fx.mul(r, u);
    let zero = fx.fcmp_k(FloatCC::Equal, x, 0.0);
    fx.sel(zero, x, r)
}
