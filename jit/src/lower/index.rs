//! Index math: the iteration space with each leaf's broadcast strides, collapsed to as
//! few dimensions as possible, and the emitters for offsets and counted loops.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::Variable;
use kiln_ir::Result;

use super::Program;
use crate::math::Fx;

/// A set of dimensions with, for each leaf, its stride (in elements) along each one.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Dims {
    pub sizes: Vec<usize>,
    /// `strides[leaf][dim]`; 0 where the leaf is broadcast.
    pub strides: Vec<Vec<usize>>,
}

impl Dims {
    pub fn numel(&self) -> usize {
        self.sizes.iter().product()
    }

    pub fn rank(&self) -> usize {
        self.sizes.len()
    }

    /// The innermost size (1 for no dimension).
    pub fn inner(&self) -> usize {
        self.sizes.last().copied().unwrap_or(1)
    }

    /// Leaf `l`'s stride along the innermost dimension.
    pub fn inner_stride(&self, l: usize) -> usize {
        self.strides[l].last().copied().unwrap_or(0)
    }

    /// All but the innermost dimension.
    pub fn outer(&self) -> Dims {
        let r = self.rank().saturating_sub(1);
        Dims { sizes: self.sizes[..r].to_vec(), strides: self.strides.iter().map(|s| s[..r].to_vec()).collect() }
    }
}

/// The iteration space of `prog` split into kept and reduced dimensions (`reduced` lists
/// the reduced axes of `prog.space`), collapsed: size-1 dimensions dropped, and
/// neighbours of the same kind merged wherever every leaf's strides allow it.
pub(crate) fn split_space(prog: &Program, reduced: &[usize]) -> (Dims, Dims) {
    let space = &prog.space;
    let leaf_strides: Vec<kiln_ir::Shape> =
        prog.leaves.iter().map(|l| kiln_ir::broadcast_strides(&l.shape, space)).collect();
    // (size, is_reduced, strides per leaf)
    let mut dims: Vec<(usize, bool, Vec<usize>)> = Vec::new();
    for (d, &size) in space.iter().enumerate() {
        if size == 1 {
            continue;
        }
        let red = reduced.contains(&d);
        let st: Vec<usize> = leaf_strides.iter().map(|s| s[d]).collect();
        if let Some(last) = dims.last_mut() {
            let mergeable = last.1 == red && last.2.iter().zip(&st).all(|(&a, &b)| a == b * size);
            if mergeable {
                last.0 *= size;
                last.2 = st;
                continue;
            }
        }
        dims.push((size, red, st));
    }
    let n = prog.leaves.len();
    let mut kept = Dims { sizes: vec![], strides: vec![vec![]; n] };
    let mut red = Dims { sizes: vec![], strides: vec![vec![]; n] };
    for (size, r, st) in dims {
        let target = if r { &mut red } else { &mut kept };
        target.sizes.push(size);
        for (l, s) in st.into_iter().enumerate() {
            target.strides[l].push(s);
        }
    }
    (kept, red)
}

/// Whether the innermost dimension of the collapsed space is a reduced one.
pub(crate) fn inner_is_reduced(prog: &Program, reduced: &[usize]) -> bool {
    let last = prog.space.iter().rposition(|&s| s != 1);
    last.is_some_and(|d| reduced.contains(&d))
}

/// Each leaf's element offset for the flat (row-major) index `flat` over `dims`.
pub(crate) fn offsets(fx: &mut Fx, flat: Value, dims: &Dims) -> Vec<Value> {
    let n = dims.strides.len();
    let zero = fx.b.ins().iconst(types::I64, 0);
    let mut offs = vec![zero; n];
    let mut rest = flat;
    for d in (0..dims.rank()).rev() {
        let size = dims.sizes[d] as i64;
        let (coord, next) = if d == 0 {
            (rest, rest)
        } else {
            let sv = fx.b.ins().iconst(types::I64, size);
            (fx.b.ins().urem(rest, sv), fx.b.ins().udiv(rest, sv))
        };
        for (l, off) in offs.iter_mut().enumerate() {
            let st = dims.strides[l][d];
            if st != 0 {
                let sv = fx.b.ins().iconst(types::I64, st as i64);
                let t = fx.b.ins().imul(coord, sv);
                *off = fx.b.ins().iadd(*off, t);
            }
        }
        rest = next;
    }
    offs
}

/// `ptr + idx * size` (bytes).
pub(crate) fn addr(fx: &mut Fx, ptr: Value, idx: Value, size: usize) -> Value {
    let s = fx.b.ins().iconst(types::I64, size as i64);
    let b = fx.b.ins().imul(idx, s);
    fx.b.ins().iadd(ptr, b)
}

/// A new `i64` variable holding `init`.
pub(crate) fn var(fx: &mut Fx, init: Value) -> Variable {
    let t = fx.ty(init);
    let v = fx.b.declare_var(t);
    fx.b.def_var(v, init);
    v
}

/// `while cond() { body() }`, with `cond` emitted in the loop header.
pub(crate) fn while_loop(
    fx: &mut Fx,
    mut cond: impl FnMut(&mut Fx) -> Value,
    mut body: impl FnMut(&mut Fx) -> Result<()>,
) -> Result<()> {
    let header = fx.b.create_block();
    let body_b = fx.b.create_block();
    let exit = fx.b.create_block();
    fx.b.ins().jump(header, &[]);
    fx.b.switch_to_block(header);
    let c = cond(fx);
    fx.b.ins().brif(c, body_b, &[], exit, &[]);
    fx.b.switch_to_block(body_b);
    body(fx)?;
    fx.b.ins().jump(header, &[]);
    fx.b.switch_to_block(exit);
    Ok(())
}

/// `for i in var..end step step` where `var` holds the start: the loop runs while
/// `i + step <= end`, and `var` holds the first index not processed afterwards.
pub(crate) fn step_loop(
    fx: &mut Fx,
    i: Variable,
    end: Value,
    step: usize,
    mut body: impl FnMut(&mut Fx, Value) -> Result<()>,
) -> Result<()> {
    while_loop(
        fx,
        |fx| {
            let cur = fx.b.use_var(i);
            let st = fx.b.ins().iconst(types::I64, step as i64);
            let next = fx.b.ins().iadd(cur, st);
            fx.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, next, end)
        },
        |fx| {
            let cur = fx.b.use_var(i);
            body(fx, cur)?;
            let st = fx.b.ins().iconst(types::I64, step as i64);
            let next = fx.b.ins().iadd(cur, st);
            fx.b.def_var(i, next);
            Ok(())
        },
    )
}
