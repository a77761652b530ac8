//! The row loop: the output range `begin..end` walked row by row over the innermost
//! dimension, with each leaf's row pointer computed once per row (broadcast operands along
//! outer dimensions cost one multiply-add per row, not per element), then 4x-unrolled
//! vectors, single vectors, and a scalar tail. `elementwise.rs` stores each value;
//! `reduce.rs` plugs in a chunk that reduces over outer axes instead.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::Variable;
use kiln_ir::Result;

use super::index::{self, Dims};
use super::{ops, Ctx, VecMode};
use crate::math::Fx;

/// Unroll factor of the vector loop.
pub(crate) const UNROLL: usize = 4;

/// The current row of the iteration.
pub(crate) struct Row {
    /// Each leaf's address of its element at column 0 of this row.
    pub leaf_row: Vec<Value>,
    /// Each leaf's stride along the row (0 or 1 elements).
    pub inner_stride: Vec<usize>,
    /// For leaves with stride 0: their one value for this row (scalar mode).
    pub bcast: Vec<Option<Value>>,
    /// Address of the output element at column 0 of this row.
    pub out_row: Value,
}

impl Row {
    /// Leaf `l`'s value for chunk `j` (of `mode.lanes` columns) at column `col`; `extra`
    /// is an element offset added to the leaf (the reduction's position), or `None`.
    #[allow(clippy::too_many_arguments)]
    pub fn leaf(
        &self,
        fx: &mut Fx,
        cx: &Ctx,
        mode: VecMode,
        l: usize,
        col: Value,
        j: usize,
        extra: Option<Value>,
    ) -> Value {
        let d = cx.prog.leaves[l].dtype;
        let size = d.size();
        if self.inner_stride[l] == 0 && extra.is_none() {
            let s = self.bcast[l].expect("broadcast leaf loaded per row");
            return ops::broadcast(fx, mode, d, s);
        }
        let mut idx = if self.inner_stride[l] == 0 { None } else { Some(col) };
        if let Some(e) = extra {
            idx = Some(match idx {
                Some(c) => fx.b.ins().iadd(c, e),
                None => e,
            });
        }
        let addr = match idx {
            Some(i) => index::addr(fx, self.leaf_row[l], i, size),
            None => self.leaf_row[l],
        };
        let off = if self.inner_stride[l] == 0 { 0 } else { (j * mode.lanes as usize * size) as i32 };
        let v = ops::load(fx, mode.scalar_if(self.inner_stride[l] == 0), d, addr, off);
        if self.inner_stride[l] == 0 {
            ops::broadcast(fx, mode, d, v)
        } else {
            v
        }
    }
}

impl VecMode {
    fn scalar_if(self, c: bool) -> VecMode {
        if c {
            self.scalar()
        } else {
            self
        }
    }
}

/// What is computed for `k` consecutive chunks of `mode.lanes` output columns.
pub(crate) trait Chunk {
    fn emit(&mut self, fx: &mut Fx, cx: &Ctx, mode: VecMode, k: usize, row: &Row, col: Value) -> Result<()>;
    /// Whether leaves with stride 0 along the row are loaded once per row.
    fn preload_broadcast(&self) -> bool {
        true
    }
    /// Emits the row's columns from the value of `i` to `col_end`, leaving `i` at
    /// `col_end` (by default [`column_loops`]).
    fn columns(&mut self, fx: &mut Fx, cx: &Ctx, row: &Row, i: Variable, col_end: Value) -> Result<()> {
        column_loops(self, fx, cx, row, i, col_end)
    }
}

/// Columns from the value of `i` to `col_end` through `chunk`: unrolled vector groups,
/// single vectors, then a scalar tail.
pub(crate) fn column_loops<C: Chunk + ?Sized>(
    chunk: &mut C,
    fx: &mut Fx,
    cx: &Ctx,
    row: &Row,
    i: Variable,
    col_end: Value,
) -> Result<()> {
    let lanes = cx.mode.lanes as usize;
    if cx.mode.is_vector() {
        index::step_loop(fx, i, col_end, UNROLL * lanes, |fx, col| chunk.emit(fx, cx, cx.mode, UNROLL, row, col))?;
        index::step_loop(fx, i, col_end, lanes, |fx, col| chunk.emit(fx, cx, cx.mode, 1, row, col))?;
    } else {
        index::step_loop(fx, i, col_end, UNROLL, |fx, col| chunk.emit(fx, cx, cx.mode, UNROLL, row, col))?;
    }
    index::step_loop(fx, i, col_end, 1, |fx, col| chunk.emit(fx, cx, cx.mode.scalar(), 1, row, col))
}

/// Walks output elements `begin..end` of the space `kept` (row-major, the output's own
/// order) row by row and calls `chunk` on vector groups and the scalar tail.
pub(crate) fn rows(fx: &mut Fx, cx: &Ctx, kept: &Dims, begin: Value, end: Value, chunk: &mut dyn Chunk) -> Result<()> {
    let inner = kept.inner() as i64;
    let outer = kept.outer();
    let osize = cx.prog.out_dtype.size();
    let n = cx.prog.leaves.len();
    let (row0, col0) = if kept.rank() <= 1 {
        (fx.b.ins().iconst(types::I64, 0), begin)
    } else {
        let iv = fx.b.ins().iconst(types::I64, inner);
        (fx.b.ins().udiv(begin, iv), fx.b.ins().urem(begin, iv))
    };
    let pos = index::var(fx, begin);
    let row_v = index::var(fx, row0);
    let col_v = index::var(fx, col0);
    index::while_loop(
        fx,
        |fx| {
            let p = fx.b.use_var(pos);
            fx.b.ins().icmp(IntCC::UnsignedLessThan, p, end)
        },
        |fx| {
            let r = fx.b.use_var(row_v);
            let c0 = fx.b.use_var(col_v);
            let p = fx.b.use_var(pos);
            let offs = index::offsets(fx, r, &outer);
            let mut row = Row {
                leaf_row: Vec::with_capacity(n),
                inner_stride: Vec::with_capacity(n),
                bcast: vec![None; n],
                out_row: r,
            };
            for (l, off) in offs.into_iter().enumerate() {
                let size = cx.prog.leaves[l].dtype.size();
                let a = index::addr(fx, cx.leaf_ptr[l], off, size);
                row.leaf_row.push(a);
                row.inner_stride.push(kept.inner_stride(l));
            }
            if chunk.preload_broadcast() {
                for l in 0..n {
                    if row.inner_stride[l] == 0 {
                        let d = cx.prog.leaves[l].dtype;
                        row.bcast[l] = Some(ops::load(fx, cx.mode.scalar(), d, row.leaf_row[l], 0));
                    }
                }
            }
            let iv = fx.b.ins().iconst(types::I64, inner);
            let rflat = fx.b.ins().imul(r, iv);
            row.out_row = index::addr(fx, cx.out, rflat, osize);
            // This row's columns: c0 .. min(inner, c0 + (end - pos)).
            let remaining = fx.b.ins().isub(end, p);
            let lim = fx.b.ins().iadd(c0, remaining);
            let short = fx.b.ins().icmp(IntCC::UnsignedLessThan, lim, iv);
            let col_end = fx.b.ins().select(short, lim, iv);
            let i = index::var(fx, c0);
            chunk.columns(fx, cx, &row, i, col_end)?;
            let done = fx.b.ins().isub(col_end, c0);
            let np = fx.b.ins().iadd(p, done);
            fx.b.def_var(pos, np);
            let nr = fx.b.ins().iadd_imm_s(r, 1);
            fx.b.def_var(row_v, nr);
            let z = fx.b.ins().iconst(types::I64, 0);
            fx.b.def_var(col_v, z);
            Ok(())
        },
    )
}

/// Stores `values[j]`, chunk `j` of `mode.lanes` output columns from `col`.
pub(crate) fn store_out(fx: &mut Fx, cx: &Ctx, mode: VecMode, row: &Row, col: Value, values: Vec<Value>) {
    let d = cx.prog.out_dtype;
    let osize = d.size();
    let step = mode.lanes as usize;
    let addr = index::addr(fx, row.out_row, col, osize);
    for (j, v) in values.into_iter().enumerate() {
        ops::store(fx, mode, d, addr, (j * step * osize) as i32, v);
    }
}
