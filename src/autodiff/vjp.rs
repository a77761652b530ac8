//! One VJP rule per op of `kiln_ir::Op`, found by the op's name: given the operands `x`, the
//! result `y` and the gradient `g` of the result, the gradient of each operand (`None`: no
//! gradient flows to it). Rules are written with kiln ops, so they record on outer tapes
//! (gradients of gradients) and trace into the graph inside `kiln::function`.
//!
//! Conventions at kinks follow TensorFlow (docs/AUTODIFF.md): relu'(0) = 0, abs'(0) = 0
//! (through `sign`), `maximum`'s tie goes to the first operand and `minimum`'s too, and the
//! `max`/`min` reductions split the gradient equally among tied extremes.

use kiln_ir::{BinaryOp, Op, ReduceOp, SliceDim, UnaryOp};

use crate::context::apply;
use crate::context::recording::{Entry, Recorded};
use crate::ops::linalg::matmul_t;
use crate::{Error, Result, Tensor};

type Grads = Result<Vec<Option<Tensor>>>;

/// The gradients of a recorded entry's inputs, given the gradients of its outputs (`None`:
/// no gradient reached that output; at least one did). `needed[i]` says whether input `i`
/// leads to a source: a product computes only the needed operands' gradients (eagerly, one
/// nobody reads would still be computed; elementwise ones are deferred and never are).
pub(crate) fn of_entry(e: &Entry, gs: &[Option<Tensor>], needed: &[bool]) -> Grads {
    match &e.recorded {
        Recorded::Op(op) if !op.regions().is_empty() => super::region::vjp(op, &e.inputs, &e.outputs, gs),
        Recorded::Op(op) => of_op(op, &e.inputs, &e.outputs[0], only(gs), needed),
        Recorded::Unstack => unstack(&e.inputs[0], gs),
        Recorded::Custom(f) => {
            let grads = f(only(gs))?;
            if grads.len() != e.inputs.len() {
                return Err(Error::Gradient(format!(
                    "a custom_gradient function returned {} gradients for {} inputs",
                    grads.len(),
                    e.inputs.len()
                )));
            }
            Ok(grads)
        }
    }
}

/// The gradient of a one-output entry.
fn only(gs: &[Option<Tensor>]) -> &Tensor {
    gs[0].as_ref().expect("the backward walk visits an entry only when a gradient reached it")
}

fn of_op(op: &Op, x: &[Tensor], y: &Tensor, g: &Tensor, needed: &[bool]) -> Grads {
    match op {
        Op::Unary(u) => Ok(vec![unary(*u, &x[0], y, g)]),
        Op::Binary(b) => binary(*b, &x[0], &x[1], y, g),
        Op::Select => select(&x[0], &x[1], &x[2], g),
        Op::Cast(_) => Ok(vec![cast(&x[0], g)?]),
        Op::BroadcastTo(_) => Ok(vec![Some(unbroadcast(g, x[0].shape())?)]),
        Op::Reshape(_) => Ok(vec![Some(g.try_reshape(x[0].shape().to_vec())?)]),
        Op::Transpose(perm) => Ok(vec![Some(g.try_transpose(inverse_permutation(perm))?)]),
        Op::Slice(dims) => Ok(vec![Some(apply(Op::Unslice { dims: dims.clone(), shape: x[0].shape().into() }, &[g])?)]),
        Op::Unslice { dims, .. } => Ok(vec![Some(apply(Op::Slice(dims.clone()), &[g])?)]),
        Op::Concat { axis } => concat(*axis, x, g),
        Op::Gather { axis } => {
            let scatter = Op::ScatterAdd { axis: *axis, shape: x[0].shape().into() };
            Ok(vec![Some(apply(scatter, &[g, &x[1]])?), None])
        }
        Op::ScatterAdd { axis, .. } => Ok(vec![Some(apply(Op::Gather { axis: *axis }, &[g, &x[1]])?), None]),
        Op::Reduce { op, axes, .. } => Ok(vec![Some(reduce(*op, axes, &x[0], y, g)?)]),
        Op::MatMul => matmul(&x[0], &x[1], g, needed),
        // Integer results, random numbers and graph sources carry no gradient.
        Op::ArgReduce { .. } | Op::Random { .. } | Op::Input(_) | Op::Const(_) | Op::ReadVar(_) | Op::AssignVar(_) => {
            Ok(vec![None; x.len()])
        }
        // A print has no value to differentiate.
        Op::Print(_) => Ok(vec![None; x.len()]),
        Op::AllReduce(r) => Ok(vec![Some(all_reduce(*r, &x[0], y, g)?)]),
        Op::Broadcast(root) => Ok(vec![Some(broadcast(*root, g)?)]),
        Op::AllGather(_) => Ok(vec![Some(all_gather(g)?)]),
        Op::Case(_) | Op::While(_) | Op::Scan(_) | Op::WhileGrad(_) | Op::Get(_) => Err(Error::Gradient(format!(
            "`{}` is recorded as a whole region (control_flow's own rules), never one output at a time",
            op.name()
        ))),
        Op::Fused(_) => Err(Error::Gradient(
            "`fused` has no VJP: fused kernels exist only after the optimization passes, which never run under a tape"
                .into(),
        )),
    }
}

fn unary(u: UnaryOp, x: &Tensor, y: &Tensor, g: &Tensor) -> Option<Tensor> {
    use UnaryOp::*;
    Some(match u {
        Neg => -g,
        // sign(0) = 0, so abs'(0) = 0 as in TF.
        Abs => g * &x.sign(),
        Exp => g * y,
        Log => g / x,
        Log1p => g / &(x + 1.0),
        // e^x, not y + 1: that rounds to 0 once expm1(x) rounds to -1 (x < -17 in f32).
        Expm1 => g * &x.exp(),
        Sqrt => g * 0.5 / y,
        // -y³/2 with the half taken first: y³ alone overflows where the result still fits.
        Rsqrt => g * &((y * -0.5) * y.square()),
        Square => g * &(x * 2.0),
        Tanh => g * &(1.0 - y.square()),
        Sigmoid => g * &(y * &(1.0 - y)),
        // relu'(0) = 0 (TF tests the output > 0).
        Relu => y.greater(&y.scalar_like(0.0)).select(g, &g.scalar_like(0.0)),
        // softplus' = sigmoid, which never overflows.
        Softplus => g * &x.sigmoid(),
        Sin => g * &x.cos(),
        Cos => -(g * &x.sin()),
        // Piecewise constant: TF gives zeros for sign and no gradient for the roundings.
        Sign => g.zeros_like(),
        Floor | Ceil | Round | LogicalNot => return None,
    })
}

fn binary(b: BinaryOp, x1: &Tensor, x2: &Tensor, y: &Tensor, g: &Tensor) -> Grads {
    use BinaryOp::*;
    let (g1, g2) = match b {
        Add => (g.clone(), g.clone()),
        Sub => (g.clone(), -g),
        Mul => (g * x2, g * x1),
        Div => (g / x2, g * &((-x1 / x2) / x2)),
        Pow => {
            // p·x^(p-1), with the exponent 1 where p = 0 (as JAX): d/dx x⁰ = 0·x = 0 even at
            // x = 0, where 0·0⁻¹ is NaN, and no 0⁻¹ for a second derivative to meet.
            let p_zero = x2.equal(&x2.scalar_like(0.0));
            let g1 = g * x2 * &x1.pow(&p_zero.select(&x2.scalar_like(1.0), &(x2 - 1.0)));
            // d/dp x^p = x^p ln x, taken as 0 where x <= 0 (TF's convention: ln is undefined
            // there). The logarithm reads 1 there, so its own gradient never divides by 0.
            let positive = x1.greater(&x1.scalar_like(0.0));
            let log_x = positive.select(&positive.select(x1, &x1.scalar_like(1.0)).log(), &x1.scalar_like(0.0));
            (g1, g * y * &log_x)
        }
        // Ties go to the first operand (TF: x >= y for maximum, x <= y for minimum).
        Maximum => split(&x1.greater_equal(x2), g),
        Minimum => split(&x1.less_equal(x2), g),
        Equal | NotEqual | Less | LessEqual | Greater | GreaterEqual | LogicalAnd | LogicalOr => {
            return Ok(vec![None, None])
        }
    };
    Ok(vec![Some(unbroadcast(&g1, x1.shape())?), Some(unbroadcast(&g2, x2.shape())?)])
}

/// `g` where `mask`, else 0; and the complement.
fn split(mask: &Tensor, g: &Tensor) -> (Tensor, Tensor) {
    let zero = g.scalar_like(0.0);
    (mask.select(g, &zero), mask.select(&zero, g))
}

fn select(cond: &Tensor, a: &Tensor, b: &Tensor, g: &Tensor) -> Grads {
    let (ga, gb) = split(cond, g);
    Ok(vec![None, Some(unbroadcast(&ga, a.shape())?), Some(unbroadcast(&gb, b.shape())?)])
}

/// Float-to-float casts pass the gradient back in the operand's dtype; casts to or from
/// integers and booleans cut it.
fn cast(x: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
    if x.dtype().is_float() && g.dtype().is_float() {
        Ok(Some(g.try_cast(x.dtype())?))
    } else {
        Ok(None)
    }
}

fn inverse_permutation(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

/// Each operand's gradient is its block of `g` along `axis`.
fn concat(axis: usize, x: &[Tensor], g: &Tensor) -> Grads {
    let mut start = 0;
    let mut out = Vec::with_capacity(x.len());
    for t in x {
        let len = t.shape()[axis];
        let dims: Vec<SliceDim> = g
            .shape()
            .iter()
            .enumerate()
            .map(|(a, &n)| if a == axis { SliceDim { start, step: 1, len } } else { SliceDim::full(n) })
            .collect();
        out.push(Some(apply(Op::Slice(dims), &[g])?));
        start += len;
    }
    Ok(out)
}

fn reduce(op: ReduceOp, axes: &[usize], x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Tensor> {
    // The reduced shape with kept dims of 1, so results broadcast back against `x`.
    let kept: Vec<usize> = x.shape().iter().enumerate().map(|(a, &n)| if axes.contains(&a) { 1 } else { n }).collect();
    let g = g.try_reshape(kept.clone())?;
    let y = y.try_reshape(kept)?;
    let grad = match op {
        ReduceOp::Sum => g,
        ReduceOp::Mean => {
            let count: usize = axes.iter().map(|&a| x.shape()[a]).product();
            &g / count as f64
        }
        ReduceOp::Max | ReduceOp::Min => {
            // TF's rule: the gradient is shared equally by every element equal to the extreme.
            let hit = x.equal(&y).cast(x.dtype());
            let ties = hit.sum(axes.to_vec(), true);
            &hit / &ties * &g
        }
        ReduceOp::Prod => prod_grad(axes, x, &g)?,
    };
    grad.try_broadcast_to(x.shape())
}

/// d prod / d x_i = product of the other elements, computed without dividing by zero:
/// with no zero in the group it is `prod / x_i`; with exactly one zero, only the zero's
/// position gets the product of the rest; with two or more zeros, all of it is 0.
fn prod_grad(axes: &[usize], x: &Tensor, g: &Tensor) -> Result<Tensor> {
    let zero = x.scalar_like(0.0);
    let is_zero = x.equal(&zero);
    let zeros = is_zero.cast(x.dtype()).sum(axes.to_vec(), true);
    let nonzero_x = is_zero.select(&x.scalar_like(1.0), x);
    let nonzero_prod = nonzero_x.prod(axes.to_vec(), true);
    let no_zero = zeros.equal(&zero);
    let one_zero = zeros.equal(&x.scalar_like(1.0));
    let others =
        no_zero.select(&(&nonzero_prod / &nonzero_x), &one_zero.logical_and(&is_zero).select(&nonzero_prod, &zero));
    Ok(&others * g)
}

/// The rows of `x` along axis 0: their gradients `gs` stacked, zeros where none reached a
/// row.
fn unstack(x: &Tensor, gs: &[Option<Tensor>]) -> Grads {
    let zeros = Tensor::zeros(&x.shape()[1..], x.dtype());
    let parts: Vec<&Tensor> = gs.iter().map(|g| g.as_ref().unwrap_or(&zeros)).collect();
    Ok(vec![Some(Tensor::try_stack(&parts, 0)?)])
}

/// `[..., m, k] @ [..., k, n]`: dA = g @ Bᵀ, dB = Aᵀ @ g, each summed over the batch dims
/// its operand was broadcast along, and each only where `needed` asks for it.
fn matmul(a: &Tensor, b: &Tensor, g: &Tensor, needed: &[bool]) -> Grads {
    let ga = if needed[0] { Some(unbroadcast(&matmul_t(g, false, b, true)?, a.shape())?) } else { None };
    let gb = if needed[1] { Some(unbroadcast(&matmul_t(a, true, g, false)?, b.shape())?) } else { None };
    Ok(vec![ga, gb])
}

/// Undoes numpy broadcasting: sums `g` over the axes along which `shape` was broadcast.
pub(crate) fn unbroadcast(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    let lead = g.rank() - shape.len();
    let axes: Vec<usize> = (0..g.rank()).filter(|&a| a < lead || (shape[a - lead] == 1 && g.shape()[a] != 1)).collect();
    let summed = if axes.is_empty() { g.clone() } else { g.try_sum(axes, true)? };
    summed.try_reshape(shape.to_vec())
}

/// Each process's loss is a term of one global loss, so a process's operand reaches every
/// process's result: its gradient sums the cotangents of all processes (docs/DISTRIBUTED.md).
fn all_reduce(r: ReduceOp, x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Tensor> {
    use crate::distributed::all_reduce as reduce;
    match r {
        ReduceOp::Sum => reduce(g, ReduceOp::Sum),
        ReduceOp::Mean => reduce(g, ReduceOp::Mean),
        // The processes holding the extreme share the summed cotangent equally, as the
        // `max`/`min` reductions split among tied elements.
        ReduceOp::Max | ReduceOp::Min => {
            let mask = x.try_equal(y)?.try_cast(g.dtype())?;
            let ties = reduce(&mask, ReduceOp::Sum)?;
            reduce(g, ReduceOp::Sum)?.try_mul(&mask)?.try_div(&ties.try_maximum(&ties.try_scalar_like(1.0)?)?)
        }
        ReduceOp::Prod => Err(Error::Gradient(
            "all_reduce(prod) has no gradient rule (each process would need the product of the others)".into(),
        )),
    }
}

/// Only the root's operand reaches the results: it gets every process's cotangent.
fn broadcast(root: usize, g: &Tensor) -> Result<Tensor> {
    let total = crate::distributed::all_reduce(g, ReduceOp::Sum)?;
    if kiln_ir::interp::collective::rank() == root {
        Ok(total)
    } else {
        Ok(total.zeros_like())
    }
}

/// This process's operand is row `rank` of every process's result.
fn all_gather(g: &Tensor) -> Result<Tensor> {
    let total = crate::distributed::all_reduce(g, ReduceOp::Sum)?;
    total.try_slice(&[crate::SliceArg::Index(kiln_ir::interp::collective::rank() as isize)])
}
