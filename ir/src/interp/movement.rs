//! Shape and movement ops: `Reshape`, `Transpose`, `Slice`, `Unslice`, `Concat`, `Gather`,
//! `ScatterAdd`. Indices and shapes are integers, so all of these are exact.

use crate::array::{Array, Data};
use crate::dtype::Element;
use crate::error::{Error, Result};
use crate::infer::slice_fits;
use crate::op::SliceDim;
use crate::shape::numel;
use crate::transpose::transpose_matrices;
use crate::with_data;

use super::layout::{permuted_runs, runs, signed_strides, Runs};
use super::scalar::Num;

pub(crate) fn reshape(a: &Array, shape: &[usize]) -> Result<Array> {
    a.reshaped(shape)
}

/// Output axis `i` is input axis `perm[i]`.
pub(crate) fn transpose(a: &Array, perm: &[usize]) -> Result<Array> {
    let rank = a.rank();
    let mut seen = vec![false; rank];
    if perm.len() != rank || perm.iter().any(|&p| p >= rank || std::mem::replace(&mut seen[p], true)) {
        return Err(Error::invalid("transpose", format!("{perm:?} is not a permutation of {rank} axes")));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| a.shape()[p]).collect();
    let swaps_last_two = rank >= 2
        && perm[..rank - 2].iter().enumerate().all(|(i, &p)| i == p)
        && perm[rank - 2..] == [rank - 1, rank - 2];
    if swaps_last_two {
        let (r, c) = (a.shape()[rank - 2], a.shape()[rank - 1]);
        // The backward pass of every matmul needs this.
        return Array::new(with_data!(a.data(), v => Element::into_data(transpose_matrices(v, r, c)?)), &shape);
    }
    let walk = permuted_runs(a.shape(), perm);
    Array::new(with_data!(a.data(), v => Element::into_data(walk.take(v))), &shape)
}

/// Where, in a buffer of shape `shape`, the slice `dims` reads its elements.
fn slice_runs(op: &'static str, dims: &[SliceDim], shape: &[usize]) -> Result<Runs> {
    if dims.len() != shape.len() {
        return Err(Error::invalid(op, format!("{} slice dims for rank {}", dims.len(), shape.len())));
    }
    for (ax, (d, &n)) in dims.iter().zip(shape).enumerate() {
        if !slice_fits(d, n) {
            return Err(Error::invalid(op, format!("slice {d:?} does not fit axis {ax} of size {n}")));
        }
    }
    let own = signed_strides(shape);
    let base: isize = dims.iter().zip(&own).map(|(d, &s)| d.start as isize * s).sum();
    // A dim of length 0 or 1 never steps, and its step may be as large as isize allows;
    // any longer one fits its axis, so `step * stride` stays inside the buffer.
    let st: Vec<isize> = dims.iter().zip(&own).map(|(d, &s)| if d.len > 1 { d.step * s } else { 0 }).collect();
    let lens: Vec<usize> = dims.iter().map(|d| d.len).collect();
    // An empty slice reads nothing; its base may point past the end, so skip it.
    Ok(if numel(&lens) == 0 { Runs { starts: Vec::new(), len: 1 } } else { runs(&lens, &st, base) })
}

pub(crate) fn slice(a: &Array, dims: &[SliceDim]) -> Result<Array> {
    let walk = slice_runs("slice", dims, a.shape())?;
    let lens: Vec<usize> = dims.iter().map(|d| d.len).collect();
    Array::new(with_data!(a.data(), v => Element::into_data(walk.take(v))), &lens)
}

/// Zeros of `shape` with `a` written where `Slice(dims)` would read it from.
pub(crate) fn unslice(a: &Array, dims: &[SliceDim], shape: &[usize]) -> Result<Array> {
    let walk = slice_runs("unslice", dims, shape)?;
    if walk.count() != a.len() {
        return Err(Error::invalid("unslice", format!("operand has {} elements, the slice {}", a.len(), walk.count())));
    }
    fn place<T: Element>(v: &[T], walk: &Runs, zero: T, n: usize) -> Data {
        let mut out = vec![zero; n];
        walk.place(v, &mut out);
        T::into_data(out)
    }
    let n = numel(shape);
    let data = match a.data() {
        Data::F32(v) => place(v, &walk, 0.0, n),
        Data::F64(v) => place(v, &walk, 0.0, n),
        Data::I32(v) => place(v, &walk, 0, n),
        Data::I64(v) => place(v, &walk, 0, n),
        Data::Bool(v) => place(v, &walk, false, n),
    };
    Array::new(data, shape)
}

pub(crate) fn concat(args: &[&Array], axis: usize) -> Result<Array> {
    let first = args.first().ok_or_else(|| Error::invalid("concat", "needs at least one operand"))?;
    if axis >= first.rank() {
        return Err(Error::Axis { op: "concat", axis: axis as isize, rank: first.rank() });
    }
    let mut shape = first.shape().to_vec();
    shape[axis] = 0;
    for a in args {
        let ok = a.rank() == first.rank()
            && a.shape().iter().zip(first.shape()).enumerate().all(|(i, (x, y))| i == axis || x == y);
        if !ok {
            return Err(Error::ShapeMismatch { op: "concat", lhs: first.shape().into(), rhs: a.shape().into() });
        }
        shape[axis] += a.shape()[axis];
    }
    let outer = numel(&shape[..axis]);
    // Each operand contributes, per outer index, one contiguous chunk of this many elements.
    let chunks: Vec<usize> = args.iter().map(|a| numel(&a.shape()[axis..])).collect();
    fn join<T: Element>(parts: &[&[T]], chunks: &[usize], outer: usize) -> Data {
        let mut out = Vec::with_capacity(chunks.iter().sum::<usize>() * outer);
        for o in 0..outer {
            for (p, &c) in parts.iter().zip(chunks) {
                out.extend_from_slice(&p[o * c..(o + 1) * c]);
            }
        }
        T::into_data(out)
    }
    fn typed<'a, T: Element>(args: &[&'a Array]) -> Result<Vec<&'a [T]>> {
        args.iter()
            .map(|a| a.as_slice::<T>().ok_or(Error::DTypeMismatch { op: "concat", lhs: T::DTYPE, rhs: a.dtype() }))
            .collect()
    }
    let data = match first.data() {
        Data::F32(_) => join(&typed::<f32>(args)?, &chunks, outer),
        Data::F64(_) => join(&typed::<f64>(args)?, &chunks, outer),
        Data::I32(_) => join(&typed::<i32>(args)?, &chunks, outer),
        Data::I64(_) => join(&typed::<i64>(args)?, &chunks, outer),
        Data::Bool(_) => join(&typed::<bool>(args)?, &chunks, outer),
    };
    Array::new(data, &shape)
}

/// The indices as `usize`, each checked against `0..size`.
fn indices(op: &'static str, idx: &Array, size: usize) -> Result<Vec<usize>> {
    let wide: Vec<i64> = match idx.data() {
        Data::I32(v) => v.iter().map(|&i| i as i64).collect(),
        Data::I64(v) => v.clone(),
        d => return Err(Error::UnsupportedDType { op, dtype: d.dtype(), expected: "integer indices" }),
    };
    wide.iter()
        .map(|&i| {
            if i >= 0 && (i as u64) < size as u64 {
                Ok(i as usize)
            } else {
                Err(Error::runtime(op, format!("index {i} is out of range for an axis of size {size}")))
            }
        })
        .collect()
}

/// `params[..axis] ++ indices ++ params[axis+1..]`: for each outer index and each index `k`,
/// the slab `params[outer, indices[k], ..]`.
pub(crate) fn gather(p: &Array, idx: &Array, axis: usize) -> Result<Array> {
    if axis >= p.rank() {
        return Err(Error::Axis { op: "gather", axis: axis as isize, rank: p.rank() });
    }
    let size = p.shape()[axis];
    let ids = indices("gather", idx, size)?;
    let outer = numel(&p.shape()[..axis]);
    let inner = numel(&p.shape()[axis + 1..]);
    // One run per slab, copied whole (a table of one offset per element was the cost of
    // every row gather, e.g. sparse matmul's).
    let mut starts = Vec::with_capacity(outer * ids.len());
    for o in 0..outer {
        starts.extend(ids.iter().map(|&k| (o * size + k) * inner));
    }
    let slabs = Runs { starts, len: inner };
    let mut shape = p.shape()[..axis].to_vec();
    shape.extend_from_slice(idx.shape());
    shape.extend_from_slice(&p.shape()[axis + 1..]);
    Array::new(with_data!(p.data(), v => Element::into_data(slabs.take(v))), &shape)
}

/// Zeros of `shape` with each slab of `updates` added at its index along `axis`
/// (repeated indices accumulate, integers wrapping).
pub(crate) fn scatter_add(u: &Array, idx: &Array, axis: usize, shape: &[usize]) -> Result<Array> {
    if axis >= shape.len() {
        return Err(Error::Axis { op: "scatter_add", axis: axis as isize, rank: shape.len() });
    }
    let size = shape[axis];
    let ids = indices("scatter_add", idx, size)?;
    let outer = numel(&shape[..axis]);
    let inner = numel(&shape[axis + 1..]);
    if u.len() != outer * ids.len() * inner {
        return Err(Error::invalid("scatter_add", format!("updates {:?} do not match the indices", u.shape())));
    }
    fn add<T: Num>(v: &[T], ids: &[usize], outer: usize, inner: usize, size: usize) -> Data {
        let mut out = vec![T::ZERO; outer * size * inner];
        let mut src = v.chunks_exact(inner.max(1));
        for o in 0..outer {
            for &k in ids {
                let dst = (o * size + k) * inner;
                if inner == 0 {
                    continue;
                }
                for (d, &x) in out[dst..dst + inner].iter_mut().zip(src.next().expect("length checked")) {
                    *d = d.add(x);
                }
            }
        }
        T::into_data(out)
    }
    let data = match u.data() {
        Data::F32(v) => add(v, &ids, outer, inner, size),
        Data::F64(v) => add(v, &ids, outer, inner, size),
        Data::I32(v) => add(v, &ids, outer, inner, size),
        Data::I64(v) => add(v, &ids, outer, inner, size),
        Data::Bool(_) => {
            return Err(Error::UnsupportedDType { op: "scatter_add", dtype: u.dtype(), expected: "a numeric dtype" })
        }
    };
    Array::new(data, shape)
}
