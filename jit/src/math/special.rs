//! Functions built from `exp`/`expm1`/`log1p`: `tanh`, `sigmoid`, `softplus`, and `rsqrt`.

use cranelift_codegen::ir::{InstBuilder, Value};

use super::exp::{exp, expm1_small_nonneg};
use super::log::log1p;
use super::{Fx, Ops};

/// `tanh(x) = sign(x) · e / (e + 2)` with `e = expm1(2|x|)`: no cancellation, and
/// `tanh(x) = x` for tiny `x` (expm1 is accurate there). Computed on `|x|` with x's sign bit
/// put back, so tanh is odd (`tanh(-x) = -tanh(x)` exactly, as libm's is; a max over
/// `tanh(1)` and `tanh(-1)` then ties as it should) and `tanh(±0) = ±0`: for negative x the
/// formula on x itself rounds `expm1(2x) + 2` near 1, which cost up to a ULP more there.
#[inline(always)]
pub(crate) fn tanh<O: Ops>(o: &mut O, x: O::F) -> O::F {
    // tanh rounds to 1 well before these bounds; clamping keeps expm1 finite.
    let bound = if o.is_f32() { 20.0 } else { 40.0 };
    let a = o.abs(x);
    // `a` is +0 or more, or NaN: only the upper bound can bite (a clamp's `a < 0` never
    // holds, and dropping it saves two instructions of W1's ~38 per vector).
    let hi = o.k(bound);
    let over = o.gt(a, hi);
    let ac = o.sel(over, hi, a);
    let a2 = o.add(ac, ac);
    let em = expm1_small_nonneg(o, a2);
    let two = o.k(2.0);
    let d = o.add(em, two);
    let t = o.div(em, d);
    // t >= 0 (or NaN): x's sign bit is its sign.
    // (Cranelift takes a 32-bit constant zero-extended.)
    let sign = o.ki(if o.is_f32() { 0x8000_0000 } else { i64::MIN });
    let xb = o.bits(x);
    let s = o.iand(xb, sign);
    let tb = o.bits(t);
    let r = o.ixor(tb, s);
    o.of_bits(r)
}

/// `1 / (1 + e^-x)`, computed from `e = exp(-|x|)` so it never overflows and small
/// results (x very negative) keep their relative accuracy: `x >= 0 ? 1/(1+e) : e/(1+e)`.
#[inline(always)]
pub(crate) fn sigmoid<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let e = exp_neg_abs(o, x);
    let one = o.k(1.0);
    let d = o.add(one, e);
    let zero = o.k(0.0);
    let nonneg = o.ge(x, zero);
    let num = o.sel(nonneg, one, e);
    o.div(num, d)
}

/// `log(1 + e^x) = max(x, 0) + log1p(e^-|x|)`: exact `x` for large `x`, `e^x` for very
/// negative `x`, no overflow anywhere. NaN stays NaN.
#[inline(always)]
pub(crate) fn softplus<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let e = exp_neg_abs(o, x);
    let l = log1p(o, e);
    let pos = o.gt_k(x, 0.0);
    let zero = o.k(0.0);
    let m = o.sel(pos, x, zero);
    o.add(m, l)
}

/// `e^-|x|`, in (0, 1]: the term sigmoid and softplus build on, which cannot overflow.
#[inline(always)]
fn exp_neg_abs<O: Ops>(o: &mut O, x: O::F) -> O::F {
    let a = o.abs(x);
    let na = o.neg(a);
    exp(o, na)
}

/// `1 / sqrt(x)`, two correctly rounded operations (not the 12-bit `rsqrtps` estimate).
pub(crate) fn rsqrt(fx: &mut Fx, x: Value) -> Value {
    let t = fx.ty(x);
    let s = fx.b.ins().sqrt(x);
    let one = fx.fconst(t, 1.0);
    fx.div(one, s)
}
