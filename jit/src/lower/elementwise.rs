//! The elementwise kernel: the row loop of `loops.rs` storing each computed value, or,
//! where the body has transcendentals worth a host routine, the tiles of `tiled.rs`.

use cranelift_codegen::ir::Value;
use kiln_ir::Result;

use super::index;
use super::loops::{rows, store_out, Chunk, Row};
use super::{ops, Ctx, VecMode};
use crate::math::Fx;

/// Evaluates the body and stores it: the elementwise kernel's chunk.
struct Store;

impl Chunk for Store {
    fn emit(&mut self, fx: &mut Fx, cx: &Ctx, mode: VecMode, k: usize, row: &Row, col: Value) -> Result<()> {
        // Scalar-only programs unroll with scalars: chunk j is column col + j.
        let mut values = Vec::with_capacity(k);
        for j in 0..k {
            let leaves: Vec<Value> =
                (0..cx.prog.leaves.len()).map(|l| row.leaf(fx, cx, mode, l, col, j, None)).collect();
            values.push(ops::eval(fx, cx.prog, mode, &leaves)?);
        }
        store_out(fx, cx, mode, row, col, values);
        Ok(())
    }
}

/// The elementwise kernel: output elements `begin..end`.
pub(crate) fn emit(fx: &mut Fx, cx: &Ctx, begin: Value, end: Value) -> Result<()> {
    let (kept, _) = index::split_space(cx.prog, &[]);
    match super::tiled::plan(cx.prog, cx.mode, &kept) {
        Some(plan) => {
            let mut tiled = super::tiled::Tiled::new(fx, plan);
            rows(fx, cx, &kept, begin, end, &mut tiled)
        }
        None => rows(fx, cx, &kept, begin, end, &mut Store),
    }
}
