//! The reference interpreter: the meaning of every op, written to be obviously right.
//!
//! [`eval`] applies one op to concrete arrays; [`run`] executes a whole [`Graph`]. Eager
//! execution, constant folding and the JIT's equivalence tests all defer to these, so the
//! numeric conventions live here (see `docs/SEMANTICS.md`):
//!
//! - no dtype promotion; numpy broadcasting; zero-sized dims everywhere;
//! - integer arithmetic wraps; integer `div` truncates toward zero and dividing by zero is
//!   [`Error::Runtime`]; integer `pow` is rejected by [`infer`](crate::infer);
//! - float unary ops and `pow` on f32 are evaluated in f64 and rounded once;
//! - `round` is half-to-even; `sign(NaN)` is NaN and `sign(±0)` is `+0`; `relu(NaN)` is NaN;
//!   `softplus` and `sigmoid` are evaluated in overflow-free forms;
//! - casts follow Rust's `as` (float → int truncates toward zero and saturates, NaN → 0;
//!   int → int wraps); to `bool`: nonzero (and NaN) is `true`; from `bool`: `true` is 1;
//! - `maximum`/`minimum` and the max/min reductions propagate NaN; max/min over an empty axis
//!   give the identity (∓inf, or the integer MIN/MAX); float sums and means accumulate in f64
//!   (pairwise), so the mean of an empty float axis is NaN; the mean of an empty integer axis
//!   is a runtime error and integer means truncate;
//! - argmax/argmin return i64, the first index on ties, the first NaN if there is one;
//! - gather/scatter indices (i32 or i64) outside `0..size` (negatives included) are runtime errors;
//! - `Random` is counter-based (splitmix64), documented in the `random` module.
//!
//! ```
//! use kiln_ir::{interp, Array, BinaryOp, DType, Op, TensorType};
//! let a = Array::from_vec(vec![7i32, -7], &[2]).unwrap();
//! let b = Array::from_vec(vec![2i32], &[1]).unwrap();
//! let ty = TensorType::new(DType::I32, &[2]);
//! let q = interp::eval(&Op::Binary(BinaryOp::Div), &[&a, &b], &ty).unwrap();
//! assert_eq!(q.to_vec::<i32>().unwrap(), vec![3, -3]);
//! let zero = Array::from_vec(vec![0i32], &[1]).unwrap();
//! assert!(interp::eval(&Op::Binary(BinaryOp::Div), &[&a, &zero], &ty).is_err());
//! ```

pub mod collective;
mod elementwise;
mod layout;
mod matmul;
mod movement;
mod random;
mod reduce;
pub mod region;
mod run;
mod scalar;

pub use matmul::{matmul_transposed, matmul_transposed_on};
pub use run::{run, Outcome};

use crate::array::Array;
use crate::error::{Error, Result};
use crate::infer::TensorType;
use crate::op::Op;

#[inline]
fn arity(op: &Op, args: &[&Array], n: usize) -> Result<()> {
    if args.len() != n {
        return Err(Error::invalid(op.name(), format!("expects {n} operand(s), got {}", args.len())));
    }
    Ok(())
}

/// Applies `op` to `args`; `ty` is the result type (from the graph or from [`infer`](crate::infer)).
///
/// Every op but `Input`, `ReadVar` and `AssignVar` (which need a graph: see [`run`]).
/// `Const` returns its value; `Fused` runs its body graph. In debug builds the op's
/// shape/dtype rule is re-checked against `ty`. Runtime failures (integer division by zero,
/// an index out of range) are [`Error::Runtime`].
///
/// ```
/// use kiln_ir::{interp, Array, DType, Op, TensorType, UnaryOp};
/// let x = Array::from_vec(vec![0.5f64, 1.5, 2.5, -0.5], &[4]).unwrap();
/// let r = interp::eval(&Op::Unary(UnaryOp::Round), &[&x], &TensorType::new(DType::F64, &[4])).unwrap();
/// assert_eq!(r.to_vec::<f64>().unwrap(), vec![0.0, 2.0, 2.0, -0.0]);
/// ```
pub fn eval(op: &Op, args: &[&Array], ty: &TensorType) -> Result<Array> {
    #[cfg(debug_assertions)]
    check_rule(op, args, ty)?;
    probe_result(op, ty)?;
    let out = match op {
        Op::Input(_)
        | Op::ReadVar(_)
        | Op::AssignVar(_)
        | Op::Case(_)
        | Op::While(_)
        | Op::Scan(_)
        | Op::WhileGrad(_)
        | Op::Get(_) => return Err(Error::invalid(op.name(), "needs a graph and its bindings; use interp::run")),
        Op::Print(message) => {
            region::print_line(region::print_text(message, args));
            crate::array::Array::zeros(&[0], crate::DType::Bool)
        }
        Op::AllReduce(r) => {
            arity(op, args, 1)?;
            collective::all_reduce(args[0], *r)?
        }
        Op::Broadcast(root) => {
            arity(op, args, 1)?;
            collective::broadcast(args[0], *root)?
        }
        Op::AllGather(ranks) => {
            arity(op, args, 1)?;
            collective::all_gather(args[0], *ranks)?
        }
        Op::Const(a) => {
            arity(op, args, 0)?;
            a.clone()
        }
        Op::Random { dist, seed } => {
            if args.len() > 1 {
                return Err(Error::invalid(op.name(), format!("expects 0 or 1 operand, got {}", args.len())));
            }
            random::random(*dist, *seed, args.first().copied(), ty.dtype, &ty.shape)?
        }
        Op::Unary(u) => {
            arity(op, args, 1)?;
            elementwise::unary(*u, args[0])?
        }
        Op::Binary(b) => {
            arity(op, args, 2)?;
            elementwise::binary(*b, args[0], args[1])?
        }
        Op::Select => {
            arity(op, args, 3)?;
            elementwise::select(args[0], args[1], args[2])?
        }
        Op::Cast(d) => {
            arity(op, args, 1)?;
            elementwise::cast(args[0], *d)?
        }
        Op::BroadcastTo(shape) => {
            arity(op, args, 1)?;
            elementwise::broadcast_to(args[0], shape)?
        }
        Op::Reshape(shape) => {
            arity(op, args, 1)?;
            movement::reshape(args[0], shape)?
        }
        Op::Transpose(perm) => {
            arity(op, args, 1)?;
            movement::transpose(args[0], perm)?
        }
        Op::Slice(dims) => {
            arity(op, args, 1)?;
            movement::slice(args[0], dims)?
        }
        Op::Unslice { dims, shape } => {
            arity(op, args, 1)?;
            movement::unslice(args[0], dims, shape)?
        }
        Op::Concat { axis } => movement::concat(args, *axis)?,
        Op::Gather { axis } => {
            arity(op, args, 2)?;
            movement::gather(args[0], args[1], *axis)?
        }
        Op::ScatterAdd { axis, shape } => {
            arity(op, args, 2)?;
            movement::scatter_add(args[0], args[1], *axis, shape)?
        }
        Op::Reduce { op: r, axes, keepdims } => {
            arity(op, args, 1)?;
            reduce::reduce(args[0], *r, axes, *keepdims)?
        }
        Op::ArgReduce { op: r, axis, keepdims } => {
            arity(op, args, 1)?;
            reduce::arg_reduce(args[0], *r, *axis, *keepdims)?
        }
        Op::MatMul => {
            arity(op, args, 2)?;
            matmul::matmul(args[0], args[1])?
        }
        Op::Fused(k) => {
            let inputs: Vec<Array> = args.iter().map(|&a| a.clone()).collect();
            let mut outcome = run(&k.body, &inputs, &[])?;
            if outcome.outputs.len() != 1 {
                return Err(Error::invalid("fused", format!("a kernel has one output, got {}", outcome.outputs.len())));
            }
            outcome.outputs.pop().expect("one output")
        }
    };
    if out.dtype() != ty.dtype || out.shape() != ty.shape.as_slice() {
        return Err(Error::invalid(
            op.name(),
            format!("computed {}{:?} but the node's type is {ty}", out.dtype(), out.shape()),
        ));
    }
    Ok(out)
}

/// `Err` if the result (and the index table a movement or broadcasting kernel builds, one
/// `usize` per element) cannot be allocated, before any of it is: the kernels below allocate
/// with plain `Vec` functions, which abort on a refusal.
fn probe_result(op: &Op, ty: &TensorType) -> Result<()> {
    if matches!(op, Op::Const(_) | Op::Reshape(_) | Op::Fused(_) | Op::Print(_)) {
        return Ok(()); // no buffer of their own: a value, a view, a body whose nodes probe
    }
    let indexed = !matches!(
        op,
        Op::Unary(_)
            | Op::Cast(_)
            | Op::Reduce { .. }
            | Op::ArgReduce { .. }
            | Op::MatMul
            | Op::Random { .. }
            | Op::Concat { .. }
            | Op::AllReduce(_)
            | Op::Broadcast(_)
            | Op::AllGather(_)
    );
    let table = if indexed { std::mem::size_of::<usize>() } else { 0 };
    let bytes = ty
        .checked_bytes()
        .and_then(|b| b.checked_add(ty.numel().checked_mul(table)?))
        .ok_or_else(|| Error::Overflow { op: op.name(), what: ty.to_string() })?;
    if bytes < crate::recycle::MIN_BYTES {
        return Ok(()); // probe_alloc skips these too; this spares small eager ops its call
    }
    crate::array::probe_alloc(op.name(), bytes, || ty.to_string())
}

/// Debug builds: the op's rule from [`infer`](crate::infer) must give exactly `ty`.
#[cfg(debug_assertions)]
fn check_rule(op: &Op, args: &[&Array], ty: &TensorType) -> Result<()> {
    if matches!(op, Op::Input(_) | Op::ReadVar(_) | Op::Random { .. } | Op::Get(_)) {
        return Ok(());
    }
    let tys: Vec<TensorType> = args.iter().map(|a| TensorType::new(a.dtype(), a.shape())).collect();
    let inferred = crate::infer::infer(op, &tys)?;
    if &inferred != ty {
        return Err(Error::invalid(op.name(), format!("the node's type is {ty} but the operands give {inferred}")));
    }
    Ok(())
}
