//! How a reduction accumulates: the identity, the combining step, merging partial
//! accumulators and the final value (means scaled or widened so they never overflow). The
//! row reductions of `reduce.rs` and the tiled ones of `tiled.rs` share it.

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Signature, Value};
use kiln_ir::{BinaryOp, DType, ReduceOp};

use super::{ops, VecMode};
use crate::code::Sym;
use crate::math::Fx;

/// How a reduction accumulates its values (docs/SEMANTICS.md, reference interpreter; docs/JIT.md).
///
/// A mean must not overflow where its true value is in range: float means add each value
/// scaled by `2^-k` (`2^k ≥ count`, so the running sum stays below the largest value; a
/// power of two scales exactly) and divide by `count·2^-k`, which rounds as `sum / count`
/// would; integer means (scalar code, see `pick_mode`) add exactly in a wider integer
/// (i32 in i64, i64 in i128) and truncate. Sums and products accumulate in the dtype.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Accum {
    pub op: ReduceOp,
    pub d: DType,
    pub count: usize,
}

impl Accum {
    fn wide_int(&self) -> Option<types::Type> {
        match (self.op, self.d) {
            (ReduceOp::Mean, DType::I32) => Some(types::I64),
            (ReduceOp::Mean, DType::I64) => Some(types::I128),
            (ReduceOp::Mean, _) | (ReduceOp::Sum | ReduceOp::Max | ReduceOp::Min | ReduceOp::Prod, _) => None,
        }
    }

    /// `2^-k` with `2^k` the smallest power of two `≥ count`.
    fn scale(&self) -> f64 {
        let k = self.count.max(1).next_power_of_two().trailing_zeros() as i32;
        2f64.powi(-k)
    }

    /// The identity of the reduction in `mode`. Float sums start from -0.0 so that a sum of
    /// -0.0s stays -0.0.
    pub fn identity(&self, fx: &mut Fx, mode: VecMode) -> Value {
        if let Some(w) = self.wide_int() {
            debug_assert!(!mode.is_vector(), "integer means run as scalar code");
            let z = fx.b.ins().iconst(types::I64, 0);
            return if w == types::I64 { z } else { fx.b.ins().sextend(w, z) };
        }
        let (op, d) = (self.op, self.d);
        let t = mode.ty(d);
        match (op, d.is_float()) {
            (ReduceOp::Sum | ReduceOp::Mean, true) => fx.fconst(t, -0.0),
            (ReduceOp::Sum | ReduceOp::Mean, false) => fx.iconst(t, 0),
            (ReduceOp::Prod, true) => fx.fconst(t, 1.0),
            (ReduceOp::Prod, false) => fx.iconst(t, 1),
            (ReduceOp::Max, true) => fx.fconst(t, f64::NEG_INFINITY),
            (ReduceOp::Min, true) => fx.fconst(t, f64::INFINITY),
            (ReduceOp::Max, false) => fx.iconst(t, if d == DType::I32 { i32::MIN as i64 } else { i64::MIN }),
            (ReduceOp::Min, false) => fx.iconst(t, if d == DType::I32 { i32::MAX as i64 } else { i64::MAX }),
        }
    }

    /// `acc ⊕ v` for a value `v` of the reduced operand.
    pub fn add(&self, fx: &mut Fx, acc: Value, v: Value) -> Value {
        let v = match self.wide_int() {
            Some(w) => fx.b.ins().sextend(w, v),
            None if self.op == ReduceOp::Mean => {
                let t = fx.b.func.dfg.value_type(v);
                let s = fx.fconst(t, self.scale());
                fx.b.ins().fmul(v, s)
            }
            None => v,
        };
        combine(fx, self.op, self.d, acc, v)
    }

    /// Two accumulators (or an accumulator and a lane of one) combined.
    pub fn merge(&self, fx: &mut Fx, a: Value, b: Value) -> Value {
        combine(fx, self.op, self.d, a, b)
    }

    /// The result from the final scalar accumulator (the count is never 0 here).
    pub fn finish(&self, fx: &mut Fx, mode: VecMode, acc: Value) -> Value {
        if self.op != ReduceOp::Mean {
            return acc;
        }
        match self.wide_int() {
            Some(types::I64) => {
                let q = fx.b.ins().sdiv_imm_s(acc, self.count as i64);
                fx.b.ins().ireduce(types::I32, q)
            }
            Some(_) => div_i128(fx, acc, self.count),
            None => {
                let n = if self.d == DType::F32 { (self.count as f32) as f64 } else { self.count as f64 };
                let c = fx.fconst(mode.ty(self.d), n * self.scale());
                fx.b.ins().fdiv(acc, c)
            }
        }
    }
}

/// `sum / count`, truncated: the exact mean of i64 values summed in i128. Cranelift has no
/// 128-bit division on x86-64, so the kernel calls this once per output.
extern "C" fn mean_i128(lo: u64, hi: i64, count: u64) -> i64 {
    let sum = ((hi as i128) << 64) | lo as i128;
    // The mean of i64 values is an i64.
    (sum / count as i128) as i64
}

/// The address of [`mean_i128`], for the host symbol table (`code.rs`).
pub(crate) fn mean_i128_addr() -> usize {
    mean_i128 as extern "C" fn(u64, i64, u64) -> i64 as usize
}

fn div_i128(fx: &mut Fx, sum: Value, count: usize) -> Value {
    let mut s = Signature::new(fx.b.func.signature.call_conv);
    s.params.extend([AbiParam::new(types::I64), AbiParam::new(types::I64), AbiParam::new(types::I64)]);
    s.returns.push(AbiParam::new(types::I64));
    let sig = fx.b.import_signature(s);
    let (lo, hi) = fx.b.ins().isplit(sum);
    let n = fx.b.ins().iconst(types::I64, count as i64);
    let f = fx.sym_addr(Sym::Host(mean_i128_addr()));
    let call = fx.b.ins().call_indirect(sig, f, &[lo, hi, n]);
    fx.b.inst_results(call)[0]
}

/// `acc ⊕ v`: the elementwise op of the reduction (so max/min propagate NaN exactly as
/// `maximum`/`minimum` do). Reduced dtypes are numeric (checked by `infer`).
fn combine(fx: &mut Fx, op: ReduceOp, d: DType, acc: Value, v: Value) -> Value {
    let b = match op {
        ReduceOp::Sum | ReduceOp::Mean => BinaryOp::Add,
        ReduceOp::Prod => BinaryOp::Mul,
        ReduceOp::Max => BinaryOp::Maximum,
        ReduceOp::Min => BinaryOp::Minimum,
    };
    ops::binary(fx, b, d, acc, v).expect("every numeric dtype has add, mul, maximum and minimum")
}
