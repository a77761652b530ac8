//! Functions built from `exp`/`expm1`/`log1p`: `tanh`, `sigmoid`, `softplus`, and `rsqrt`.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{InstBuilder, Value};

use super::{exp, expm1, log1p, Fx};

/// `tanh(x) = expm1(2x) / (expm1(2x) + 2)`: no cancellation for either sign, and
/// `tanh(x) = x` for tiny `x` (expm1 is accurate there), `tanh(±0) = ±0`.
pub(crate) fn tanh(fx: &mut Fx, x: Value) -> Value {
    let t = fx.ty(x);
    // tanh rounds to ±1 well before these bounds; clamping keeps expm1 finite.
    let bound = if fx.is_f32(x) { 20.0 } else { 40.0 };
    let xc = fx.clamp(x, -bound, bound);
    let x2 = fx.add(xc, xc);
    let em = expm1(fx, x2);
    let two = fx.fconst(t, 2.0);
    let d = fx.add(em, two);
    fx.div(em, d)
}

/// `1 / (1 + e^-x)`, computed from `e = exp(-|x|)` so it never overflows and small
/// results (x very negative) keep their relative accuracy: `x >= 0 ? 1/(1+e) : e/(1+e)`.
pub(crate) fn sigmoid(fx: &mut Fx, x: Value) -> Value {
    let t = fx.ty(x);
    let a = fx.b.ins().fabs(x);
    let na = fx.b.ins().fneg(a);
    let e = exp(fx, na);
    let one = fx.fconst(t, 1.0);
    let d = fx.add(one, e);
    let nonneg = fx.fcmp_k(FloatCC::GreaterThanOrEqual, x, 0.0);
    let num = fx.sel(nonneg, one, e);
    fx.div(num, d)
}

/// `log(1 + e^x) = max(x, 0) + log1p(e^-|x|)`: exact `x` for large `x`, `e^x` for very
/// negative `x`, no overflow anywhere. NaN stays NaN.
pub(crate) fn softplus(fx: &mut Fx, x: Value) -> Value {
    let t = fx.ty(x);
    let a = fx.b.ins().fabs(x);
    let na = fx.b.ins().fneg(a);
    let e = exp(fx, na);
    let l = log1p(fx, e);
    let pos = fx.fcmp_k(FloatCC::GreaterThan, x, 0.0);
    let zero = fx.fconst(t, 0.0);
    let m = fx.sel(pos, x, zero);
    fx.add(m, l)
}

/// `1 / sqrt(x)`, two correctly rounded operations (not the 12-bit `rsqrtps` estimate).
pub(crate) fn rsqrt(fx: &mut Fx, x: Value) -> Value {
    let t = fx.ty(x);
    let s = fx.b.ins().sqrt(x);
    let one = fx.fconst(t, 1.0);
    fx.div(one, s)
}
