//! Reductions with their fused elementwise producers.
//!
//! - Over the innermost axis (row reductions, e.g. softmax's max and sum): one output at
//!   a time, four vector accumulators over the row, a scalar tail, then one horizontal step.
//! - Over outer axes only: vectorized across adjacent outputs — each vector lane is one
//!   output, and the loop over the reduced axes accumulates whole vectors.
//! - `argmax`/`argmin`: element by element (first index on ties, a NaN wins).
//!
//! Float sums and products are therefore reassociated (several accumulators): they match
//! the interpreter within a stated tolerance, not bit for bit (docs/JIT.md).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::Variable;
use kiln_ir::{ArgOp, ReduceOp, Result};

use super::accum::Accum;
use super::index::{self, Dims};
use super::loops::{rows, Chunk, Row, UNROLL};
use super::tiled::Sink;
use super::{ops, Ctx, Tail, VecMode};
use crate::math::Fx;

/// Whether leaf `l` moves along the reduced dimensions at all.
fn moves(red: &Dims, l: usize) -> bool {
    red.strides[l].iter().any(|&s| s != 0)
}

/// Reduction over outer axes only: `k` chunks of adjacent outputs, one vector accumulator
/// each, and a loop over the reduced positions.
struct Outer<'a> {
    acc: Accum,
    red: &'a Dims,
}

impl Chunk for Outer<'_> {
    fn emit(&mut self, fx: &mut Fx, cx: &Ctx, mode: VecMode, k: usize, row: &Row, col: Value) -> Result<()> {
        let d = cx.prog.out_dtype;
        let n = cx.prog.leaves.len();
        let accs: Vec<Variable> = (0..k)
            .map(|_| {
                let id = self.acc.identity(fx, mode);
                index::var(fx, id)
            })
            .collect();
        let zero = fx.b.ins().iconst(types::I64, 0);
        let r = index::var(fx, zero);
        let total = fx.b.ins().iconst(types::I64, self.red.numel() as i64);
        let (accum, red) = (self.acc, self.red);
        index::step_loop(fx, r, total, 1, |fx, rv| {
            let offs = index::offsets(fx, rv, red);
            for (j, acc) in accs.iter().enumerate() {
                let mut leaves = Vec::with_capacity(n);
                for (l, off) in offs.iter().enumerate() {
                    let extra = if moves(red, l) { Some(*off) } else { None };
                    leaves.push(row.leaf(fx, cx, mode, l, col, j, extra));
                }
                let v = ops::eval(fx, cx.prog, mode, &leaves)?;
                let a = fx.b.use_var(*acc);
                let a = accum.add(fx, a, v);
                fx.b.def_var(*acc, a);
            }
            Ok(())
        })?;
        let osize = d.size();
        let addr = index::addr(fx, row.out_row, col, osize);
        for (j, acc) in accs.iter().enumerate() {
            let a = fx.b.use_var(*acc);
            let v = self.acc.finish(fx, mode, a);
            ops::store(fx, mode, d, addr, (j * mode.lanes as usize * osize) as i32, v);
        }
        Ok(())
    }
}

/// Reduction whose innermost collapsed dimension is reduced: one output at a time.
fn inner(fx: &mut Fx, cx: &Ctx, accum: Accum, kept: &Dims, red: &Dims, begin: Value, end: Value) -> Result<()> {
    let d = cx.prog.out_dtype;
    let mode = cx.mode;
    let n = cx.prog.leaves.len();
    let len = red.inner();
    let red_outer = red.outer();
    // Transcendentals along the row go to the wide routines, tile by tile (`tiled.rs`).
    let mut tiled = super::tiled::plan(cx.prog, mode, red).map(|p| super::tiled::Tiled::new(fx, p));
    let o = index::var(fx, begin);
    index::step_loop(fx, o, end, 1, |fx, ov| {
        let offs = index::offsets(fx, ov, kept);
        let base: Vec<Value> = offs
            .iter()
            .enumerate()
            .map(|(l, &off)| index::addr(fx, cx.leaf_ptr[l], off, cx.prog.leaves[l].dtype.size()))
            .collect();
        let vec_k = UNROLL;
        let vaccs: Vec<Variable> = (0..vec_k)
            .map(|_| {
                let id = accum.identity(fx, mode);
                index::var(fx, id)
            })
            .collect();
        let sid = accum.identity(fx, mode.scalar());
        let sacc = index::var(fx, sid);
        let zero = fx.b.ins().iconst(types::I64, 0);
        let ro = index::var(fx, zero);
        let rtotal = fx.b.ins().iconst(types::I64, red_outer.numel() as i64);
        index::step_loop(fx, ro, rtotal, 1, |fx, rv| {
            let offs2 = index::offsets(fx, rv, &red_outer);
            let mut row = Row {
                leaf_row: Vec::with_capacity(n),
                inner_stride: Vec::with_capacity(n),
                bcast: vec![None; n],
                out_row: cx.out,
            };
            for l in 0..n {
                let size = cx.prog.leaves[l].dtype.size();
                let a = index::addr(fx, base[l], offs2[l], size);
                row.leaf_row.push(a);
                row.inner_stride.push(red.inner_stride(l));
                if row.inner_stride[l] == 0 {
                    row.bcast[l] = Some(ops::load(fx, mode.scalar(), cx.prog.leaves[l].dtype, a, 0));
                }
            }
            let lenv = fx.b.ins().iconst(types::I64, len as i64);
            let zero = fx.b.ins().iconst(types::I64, 0);
            let i = index::var(fx, zero);
            let lanes = mode.lanes as usize;
            let accumulate = |fx: &mut Fx, m: VecMode, k: usize, col: Value, accs: &[Variable]| -> Result<()> {
                for (j, acc) in accs.iter().enumerate().take(k) {
                    let leaves: Vec<Value> = (0..n).map(|l| row.leaf(fx, cx, m, l, col, j, None)).collect();
                    let v = ops::eval(fx, cx.prog, m, &leaves)?;
                    let a = fx.b.use_var(*acc);
                    let a = accum.add(fx, a, v);
                    fx.b.def_var(*acc, a);
                }
                Ok(())
            };
            if let Some(t) = tiled.as_mut() {
                t.sink = Sink::Accumulate { accum, vector: vaccs.clone(), scalar: sacc };
                return t.columns(fx, cx, &row, i, lenv);
            }
            index::step_loop(fx, i, lenv, vec_k * lanes, |fx, col| accumulate(fx, mode, vec_k, col, &vaccs))?;
            if mode.is_vector() {
                index::step_loop(fx, i, lenv, lanes, |fx, col| accumulate(fx, mode, 1, col, &vaccs))?;
            }
            index::step_loop(fx, i, lenv, 1, |fx, col| accumulate(fx, mode.scalar(), 1, col, &[sacc]))
        })?;
        // Fold the vector accumulators, then their lanes, into the scalar one.
        let mut v = fx.b.use_var(vaccs[0]);
        for acc in &vaccs[1..] {
            let a = fx.b.use_var(*acc);
            v = accum.merge(fx, v, a);
        }
        let mut s = fx.b.use_var(sacc);
        if mode.is_vector() {
            let t = mode.ty(d);
            for lane in 0..t.lane_count() as u8 {
                let x = fx.b.ins().extractlane(v, lane);
                s = accum.merge(fx, s, x);
            }
        } else {
            s = accum.merge(fx, s, v);
        }
        let s = accum.finish(fx, mode.scalar(), s);
        let osize = d.size();
        let addr = index::addr(fx, cx.out, ov, osize);
        fx.b.ins().store(super::mem(), s, addr, 0);
        Ok(())
    })
}

/// A reduction over an empty axis: every output is the identity (NaN for a float mean).
fn fill_empty(fx: &mut Fx, cx: &Ctx, op: ReduceOp, begin: Value, end: Value) -> Result<()> {
    let d = cx.prog.out_dtype;
    let mode = VecMode { lanes: 1, class: 4 };
    let empty = Accum { op, d, count: 0 };
    let v = match op {
        ReduceOp::Mean => fx.fconst(mode.ty(d), f64::NAN),
        ReduceOp::Sum => {
            let id = empty.identity(fx, mode);
            if d.is_float() {
                fx.b.ins().fabs(id)
            } else {
                id
            }
        }
        ReduceOp::Max | ReduceOp::Min | ReduceOp::Prod => empty.identity(fx, mode),
    };
    let o = index::var(fx, begin);
    index::step_loop(fx, o, end, 1, |fx, ov| {
        let addr = index::addr(fx, cx.out, ov, d.size());
        fx.b.ins().store(super::mem(), v, addr, 0);
        Ok(())
    })
}

/// argmax/argmin over one axis: first index of the extreme value; a NaN counts as the
/// extreme (the first NaN wins), as numpy does.
fn arg(fx: &mut Fx, cx: &Ctx, op: ArgOp, axis: usize, begin: Value, end: Value) -> Result<()> {
    let (kept, red) = index::split_space(cx.prog, &[axis]);
    let n = cx.prog.leaves.len();
    let mode = cx.mode.scalar();
    let d = cx.prog.ins[cx.prog.root].dtype(cx.prog);
    let len = red.numel();
    let o = index::var(fx, begin);
    index::step_loop(fx, o, end, 1, |fx, ov| {
        let offs = index::offsets(fx, ov, &kept);
        let base: Vec<Value> = offs
            .iter()
            .enumerate()
            .map(|(l, &off)| index::addr(fx, cx.leaf_ptr[l], off, cx.prog.leaves[l].dtype.size()))
            .collect();
        let value_at = |fx: &mut Fx, i: Value| -> Result<Value> {
            let leaves: Vec<Value> = (0..n)
                .map(|l| {
                    let dt = cx.prog.leaves[l].dtype;
                    let st = red.strides[l].first().copied().unwrap_or(0);
                    let addr = if st == 0 {
                        base[l]
                    } else {
                        let idx = fx.b.ins().imul_imm_s(i, st as i64);
                        index::addr(fx, base[l], idx, dt.size())
                    };
                    ops::load(fx, mode, dt, addr, 0)
                })
                .collect();
            ops::eval(fx, cx.prog, mode, &leaves)
        };
        let zero = fx.b.ins().iconst(types::I64, 0);
        let first = value_at(fx, zero)?;
        let best = index::var(fx, first);
        let best_i = index::var(fx, zero);
        let one = fx.b.ins().iconst(types::I64, 1);
        let i = index::var(fx, one);
        let lenv = fx.b.ins().iconst(types::I64, len as i64);
        index::step_loop(fx, i, lenv, 1, |fx, iv| {
            let v = value_at(fx, iv)?;
            let b = fx.b.use_var(best);
            let better = if d.is_float() {
                let cc = if op == ArgOp::ArgMax { FloatCC::GreaterThan } else { FloatCC::LessThan };
                let c = fx.fcmp(cc, v, b);
                let vn = fx.isnan(v);
                let bn = fx.isnan(b);
                let bnn = fx.not(bn);
                let nan_first = fx.and(vn, bnn);
                fx.or(c, nan_first)
            } else {
                let cc = if op == ArgOp::ArgMax { IntCC::SignedGreaterThan } else { IntCC::SignedLessThan };
                fx.icmp(cc, v, b)
            };
            let nb = fx.b.ins().select(better, v, b);
            fx.b.def_var(best, nb);
            let bi = fx.b.use_var(best_i);
            let ni = fx.b.ins().select(better, iv, bi);
            fx.b.def_var(best_i, ni);
            Ok(())
        })?;
        let bi = fx.b.use_var(best_i);
        let addr = index::addr(fx, cx.out, ov, 8);
        fx.b.ins().store(super::mem(), bi, addr, 0);
        Ok(())
    })
}

/// The reduction kernel: output elements `begin..end`.
pub(crate) fn emit(fx: &mut Fx, cx: &Ctx, begin: Value, end: Value) -> Result<()> {
    match &cx.prog.tail {
        Tail::Arg { op, axis } => arg(fx, cx, *op, *axis, begin, end),
        Tail::Reduce { op, axes } => {
            let count: usize = axes.iter().map(|&a| cx.prog.space[a]).product();
            if count == 0 {
                return fill_empty(fx, cx, *op, begin, end);
            }
            let (kept, red) = index::split_space(cx.prog, axes);
            let acc = Accum { op: *op, d: cx.prog.out_dtype, count };
            if index::inner_is_reduced(cx.prog, axes) {
                inner(fx, cx, acc, &kept, &red, begin, end)
            } else {
                rows(fx, cx, &kept, begin, end, &mut Outer { acc, red: &red })
            }
        }
        Tail::None => unreachable!("elementwise kernels are emitted by elementwise.rs"),
    }
}
