//! Reductions: `Reduce` (sum, mean, max, min, prod over sorted axes) and `ArgReduce`.
//!
//! Each output element's group of input elements is found by walking the input with the
//! reduced axes moved last, so every group is a contiguous run of offsets.
//!
//! Float accuracy: sums (and means) of f32 *and* f64 are accumulated in f64 by pairwise
//! summation, and products in f64 sequentially, then rounded once to the tensor's dtype.
//! The f32 results are therefore almost always the correctly rounded f32 of the exact
//! value; the JIT, which accumulates in f32, is compared against them with a tolerance.
//! A mean of finite values never overflows (see [`mean`]). Integer sums and products
//! wrap; integer means sum exactly (in i128) and truncate.

use crate::array::{Array, Data};
use crate::error::{Error, Result};
use crate::op::{ArgOp, ReduceOp};

use super::layout::permuted_offsets;
use super::scalar::{maximum, minimum, Num};

/// The input offsets grouped by output element: `groups.chunks(count)`, with `count`
/// elements per group and `outputs` groups in row-major output order.
struct Groups {
    offs: Vec<usize>,
    count: usize,
    outputs: usize,
}

fn groups(op: &'static str, shape: &[usize], axes: &[usize]) -> Result<Groups> {
    let rank = shape.len();
    for (k, &ax) in axes.iter().enumerate() {
        if ax >= rank {
            return Err(Error::Axis { op, axis: ax as isize, rank });
        }
        if k > 0 && axes[k - 1] >= ax {
            return Err(Error::invalid(op, format!("axes {axes:?} must be sorted and unique")));
        }
    }
    let kept: Vec<usize> = (0..rank).filter(|a| !axes.contains(a)).collect();
    let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let count: usize = axes.iter().map(|&a| shape[a]).product();
    let outputs: usize = kept.iter().map(|&a| shape[a]).product();
    Ok(Groups { offs: permuted_offsets(shape, &perm), count, outputs })
}

/// The result shape: reduced axes dropped, or kept as 1 with `keepdims`.
fn reduced_shape(shape: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    let keep = |(i, &d): (usize, &usize)| match (axes.contains(&i), keepdims) {
        (false, _) => Some(d),
        (true, true) => Some(1),
        (true, false) => None,
    };
    shape.iter().enumerate().filter_map(keep).collect()
}

/// Pairwise (cascade) summation: error grows with log n rather than n. An empty sum is
/// +0.0 (numpy's; Rust's `Iterator::sum` would give -0.0), a sum of -0.0s stays -0.0.
fn pairwise(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else if v.len() <= 16 {
        v.iter().sum()
    } else {
        let (a, b) = v.split_at(v.len() / 2);
        pairwise(a) + pairwise(b)
    }
}

/// The mean by pairwise summation; 0/0 is NaN, the mean of an empty axis. A sum of finite
/// values that overflows (f64 values near `f64::MAX`) is redone with every value scaled by
/// `2^-k` (`2^k ≥ n`), which cannot overflow and is exact, as the JIT always sums.
fn mean(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    let sum = pairwise(v);
    if sum.is_finite() || v.iter().any(|x| !x.is_finite()) {
        return sum / n;
    }
    let scale = 2f64.powi(-(v.len().next_power_of_two().trailing_zeros() as i32));
    let scaled: Vec<f64> = v.iter().map(|x| x * scale).collect();
    pairwise(&scaled) / (n * scale)
}

fn float_reduce<T: Num>(op: ReduceOp, v: &[T], g: &Groups) -> Vec<T> {
    let mut out = Vec::with_capacity(g.outputs);
    let mut buf: Vec<f64> = Vec::with_capacity(g.count);
    for r in 0..g.outputs {
        let offs = &g.offs[r * g.count..(r + 1) * g.count];
        buf.clear();
        buf.extend(offs.iter().map(|&o| v[o].to_f64()));
        out.push(T::from_f64(match op {
            ReduceOp::Sum => pairwise(&buf),
            ReduceOp::Mean => mean(&buf),
            ReduceOp::Prod => buf.iter().product(),
            ReduceOp::Max => buf.iter().fold(f64::NEG_INFINITY, |a, &b| maximum(a, b)),
            ReduceOp::Min => buf.iter().fold(f64::INFINITY, |a, &b| minimum(a, b)),
        }));
    }
    out
}

fn int_reduce<T: Num + Into<i128> + TryFrom<i128>>(op: ReduceOp, v: &[T], g: &Groups) -> Result<Vec<T>> {
    if op == ReduceOp::Mean && g.count == 0 && g.outputs > 0 {
        return Err(Error::runtime("mean", format!("mean of an empty axis of {} (division by zero)", T::DTYPE)));
    }
    let mut out = Vec::with_capacity(g.outputs);
    for r in 0..g.outputs {
        let vals = g.offs[r * g.count..(r + 1) * g.count].iter().map(|&o| v[o]);
        out.push(match op {
            ReduceOp::Sum => vals.fold(T::ZERO, T::add),
            ReduceOp::Prod => vals.fold(T::ONE, T::mul),
            ReduceOp::Max => vals.fold(T::LOWEST, maximum),
            ReduceOp::Min => vals.fold(T::HIGHEST, minimum),
            ReduceOp::Mean => {
                // Exact sum, truncating division: the mean of in-range values is in range.
                let sum: i128 = vals.map(Into::into).sum();
                match T::try_from(sum / g.count as i128) {
                    Ok(m) => m,
                    Err(_) => unreachable!("a mean lies between the extremes of its values"),
                }
            }
        });
    }
    Ok(out)
}

pub(crate) fn reduce(a: &Array, op: ReduceOp, axes: &[usize], keepdims: bool) -> Result<Array> {
    let g = groups(op.name(), a.shape(), axes)?;
    let data = match a.data() {
        Data::F32(v) => Data::F32(float_reduce(op, v, &g)),
        Data::F64(v) => Data::F64(float_reduce(op, v, &g)),
        Data::I32(v) => Data::I32(int_reduce(op, v, &g)?),
        Data::I64(v) => Data::I64(int_reduce(op, v, &g)?),
        Data::Bool(_) => {
            return Err(Error::UnsupportedDType { op: op.name(), dtype: a.dtype(), expected: "a numeric dtype" })
        }
    };
    Array::new(data, &reduced_shape(a.shape(), axes, keepdims))
}

/// The first index of the maximum (minimum); a NaN beats everything, so the first NaN wins
/// (numpy's rule, for both argmax and argmin).
fn arg_of<T: Num>(op: ArgOp, v: &[T], offs: &[usize]) -> i64 {
    let better = |x: T, best: T| match op {
        ArgOp::ArgMax => x > best,
        ArgOp::ArgMin => x < best,
    };
    let mut best = 0;
    for (j, &o) in offs.iter().enumerate().skip(1) {
        let (x, b) = (v[o], v[offs[best]]);
        if b.is_nan() {
            break;
        }
        if x.is_nan() || better(x, b) {
            best = j;
        }
    }
    best as i64
}

pub(crate) fn arg_reduce(a: &Array, op: ArgOp, axis: usize, keepdims: bool) -> Result<Array> {
    let g = groups(op.name(), a.shape(), &[axis])?;
    if g.count == 0 && g.outputs > 0 {
        return Err(Error::runtime(op.name(), format!("empty axis {axis} of shape {:?}", a.shape())));
    }
    fn all<T: Num>(op: ArgOp, v: &[T], g: &Groups) -> Vec<i64> {
        (0..g.outputs).map(|r| arg_of(op, v, &g.offs[r * g.count..(r + 1) * g.count])).collect()
    }
    let out = match a.data() {
        Data::F32(v) => all(op, v, &g),
        Data::F64(v) => all(op, v, &g),
        Data::I32(v) => all(op, v, &g),
        Data::I64(v) => all(op, v, &g),
        Data::Bool(_) => {
            return Err(Error::UnsupportedDType { op: op.name(), dtype: a.dtype(), expected: "a numeric dtype" })
        }
    };
    Array::from_vec(out, &reduced_shape(a.shape(), &[axis], keepdims))
}
