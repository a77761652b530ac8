//! `pow(x, y) = exp(y log|x|)` with C99's special cases. f32 computes in f64 (exact
//! promotion, then one rounding back), so its error is about half an ULP.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, ConstantData, InstBuilder, Value};

use super::{exp, log, Fx};

/// `x^y` for f64 scalars or `f64x2` vectors.
fn pow_f64(fx: &mut Fx, x: Value, y: Value) -> Value {
    let ax = fx.b.ins().fabs(x);
    let l = log(fx, ax);
    let yl = fx.mul(y, l);
    let mag = exp(fx, yl);
    // y integer / odd integer (±inf counts as an even integer).
    let ty = fx.b.ins().trunc(y);
    let yint = fx.fcmp(FloatCC::Equal, ty, y);
    let t = fx.ty(y);
    let half = fx.fconst(t, 0.5);
    let hy = fx.mul(y, half);
    let thy = fx.b.ins().trunc(hy);
    let hodd = fx.fcmp(FloatCC::NotEqual, thy, hy);
    let yodd = fx.and(yint, hodd);
    let xb = fx.bits_of(x);
    let it = fx.ty(xb);
    let zero_i = fx.iconst(it, 0);
    let xneg_sign = fx.icmp(IntCC::SignedLessThan, xb, zero_i);
    let flip = fx.and(yodd, xneg_sign);
    let nmag = fx.b.ins().fneg(mag);
    let r = fx.sel(flip, nmag, mag);
    // finite x < 0 with a non-integer y: NaN.
    let xlt = fx.fcmp_k(FloatCC::LessThan, x, 0.0);
    let xfin = fx.fcmp_k(FloatCC::GreaterThan, x, f64::NEG_INFINITY);
    let nonint = fx.not(yint);
    let bad = fx.and(xlt, xfin);
    let bad = fx.and(bad, nonint);
    let r = fx.sel_k(bad, f64::NAN, r);
    // pow(x, ±0) = 1, pow(1, y) = 1, pow(-1, ±inf) = 1 (even for NaN operands).
    let y0 = fx.fcmp_k(FloatCC::Equal, y, 0.0);
    let x1 = fx.fcmp_k(FloatCC::Equal, x, 1.0);
    let xm1 = fx.fcmp_k(FloatCC::Equal, x, -1.0);
    let ay = fx.b.ins().fabs(y);
    let yinf = fx.fcmp_k(FloatCC::Equal, ay, f64::INFINITY);
    let m1inf = fx.and(xm1, yinf);
    let one = fx.or(y0, x1);
    let one = fx.or(one, m1inf);
    fx.sel_k(one, 1.0, r)
}

/// Byte shuffle immediate.
fn shuffle(fx: &mut Fx, a: Value, b: Value, mask: [u8; 16]) -> Value {
    let imm = fx.b.func.dfg.immediates.push(ConstantData::from(mask.as_ref()));
    let ai = fx.cast_bits(types::I8X16, a);
    let bi = fx.cast_bits(types::I8X16, b);
    fx.b.ins().shuffle(ai, bi, imm)
}

/// `x^y` following C99 `pow` (Rust's `powf`).
pub(crate) fn pow(fx: &mut Fx, x: Value, y: Value) -> Value {
    let t = fx.ty(x);
    if !fx.is_f32(x) {
        return pow_f64(fx, x, y);
    }
    if !t.is_vector() {
        let xd = fx.b.ins().fpromote(types::F64, x);
        let yd = fx.b.ins().fpromote(types::F64, y);
        let r = pow_f64(fx, xd, yd);
        return fx.b.ins().fdemote(types::F32, r);
    }
    // f32x4: lanes 0,1 and 2,3 as two f64x2 halves.
    let high: [u8; 16] = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
    let mut halves = [x; 2];
    for (h, half) in halves.iter_mut().enumerate() {
        let (xs, ys) = if h == 0 {
            (x, y)
        } else {
            let xs = shuffle(fx, x, x, high);
            let ys = shuffle(fx, y, y, high);
            (fx.cast_bits(types::F32X4, xs), fx.cast_bits(types::F32X4, ys))
        };
        let xd = fx.b.ins().fvpromote_low(xs);
        let yd = fx.b.ins().fvpromote_low(ys);
        let r = pow_f64(fx, xd, yd);
        *half = fx.b.ins().fvdemote(r);
    }
    let join: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
    let j = shuffle(fx, halves[0], halves[1], join);
    fx.cast_bits(types::F32X4, j)
}
