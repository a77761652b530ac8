//! Shape and data-movement ops: reshape, transpose, broadcast, slicing, concat/stack, gather.

use kiln_ir::{shape::fmt_shape, Op, Shape, SliceDim};

use super::args::{axes_of, axis_of, IntList, SliceArg};
use super::or_panic;
use crate::context::apply;
use crate::{Error, Result, Tensor};

impl Tensor {
    /// Same elements, new shape; one dim may be `-1` (inferred).
    ///
    /// ```
    /// let t = kiln::Tensor::new(&[1i32, 2, 3, 4, 5, 6]);
    /// assert_eq!(t.reshape(&[-1, 3]).shape(), &[2, 3]);
    /// ```
    #[track_caller]
    pub fn reshape(&self, shape: impl IntList) -> Tensor {
        or_panic(self.try_reshape(shape))
    }

    /// The fallible form of [`Tensor::reshape`].
    pub fn try_reshape(&self, shape: impl IntList) -> Result<Tensor> {
        let dims = shape.to_i64s();
        let bad = || Error::Reshape { from: self.shape().into(), to: format!("{dims:?}") };
        let given: Vec<usize> = dims.iter().filter(|&&d| d >= 0).map(|&d| d as usize).collect();
        let known = kiln_ir::checked_numel(&given).ok_or_else(bad)?;
        let mut out = Shape::new();
        let mut inferred = false;
        for &d in &dims {
            if d >= 0 {
                out.push(d as usize);
            } else if d == -1 && !inferred {
                inferred = true;
                if known == 0 || self.numel() % known != 0 {
                    return Err(bad());
                }
                out.push(self.numel() / known);
            } else {
                return Err(bad());
            }
        }
        if out.as_slice() == self.shape() {
            return Ok(self.clone());
        }
        apply(Op::Reshape(out), &[self])
    }

    /// Permutes axes: output axis `i` is input axis `perm[i]` (negative axes allowed).
    ///
    /// ```
    /// let t = kiln::Tensor::zeros(&[2, 3, 4], kiln::DType::F32);
    /// assert_eq!(t.transpose(&[2, 0, 1]).shape(), &[4, 2, 3]);
    /// ```
    #[track_caller]
    pub fn transpose(&self, perm: impl IntList) -> Tensor {
        or_panic(self.try_transpose(perm))
    }

    /// The fallible form of [`Tensor::transpose`].
    pub fn try_transpose(&self, perm: impl IntList) -> Result<Tensor> {
        let rank = self.rank();
        let p = perm.to_i64s().into_iter().map(|a| axis_of("transpose", a, rank)).collect::<Result<Vec<_>>>()?;
        apply(Op::Transpose(p), &[self])
    }

    /// Alias of [`Tensor::transpose`] (PyTorch's name).
    #[track_caller]
    pub fn permute(&self, perm: impl IntList) -> Tensor {
        self.transpose(perm)
    }

    /// Swaps the last two axes (a matrix transpose, batched).
    ///
    /// ```
    /// assert_eq!(kiln::Tensor::zeros(&[5, 2, 3], kiln::DType::F32).t().shape(), &[5, 3, 2]);
    /// ```
    #[track_caller]
    pub fn t(&self) -> Tensor {
        let r = self.rank();
        assert!(r >= 2, "t: needs rank >= 2, got shape {}", fmt_shape(self.shape()));
        let mut p: Vec<usize> = (0..r).collect();
        p.swap(r - 2, r - 1);
        self.transpose(p)
    }

    /// Repeats the tensor along broadcast dims to `shape` (numpy rules).
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        or_panic(self.try_broadcast_to(shape))
    }

    /// The fallible form of [`Tensor::broadcast_to`].
    pub fn try_broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        apply(Op::BroadcastTo(shape.into()), &[self])
    }

    /// Inserts a dim of size 1 at `axis` (`-1` appends).
    #[track_caller]
    pub fn expand_dims(&self, axis: i64) -> Tensor {
        or_panic(self.try_expand_dims(axis))
    }

    /// The fallible form of [`Tensor::expand_dims`].
    pub fn try_expand_dims(&self, axis: i64) -> Result<Tensor> {
        let a = axis_of("expand_dims", axis, self.rank() + 1)?;
        let mut s: Vec<usize> = self.shape().to_vec();
        s.insert(a, 1);
        self.try_reshape(s)
    }

    /// Removes the given dims of size 1 (all of them for an empty list).
    #[track_caller]
    pub fn squeeze(&self, axes: impl IntList) -> Tensor {
        or_panic(self.try_squeeze(axes))
    }

    /// The fallible form of [`Tensor::squeeze`].
    pub fn try_squeeze(&self, axes: impl IntList) -> Result<Tensor> {
        let axes = axes_of("squeeze", &axes, self.rank())?;
        let s: Vec<usize> = if axes.is_empty() {
            self.shape().iter().copied().filter(|&d| d != 1).collect()
        } else {
            for &a in &axes {
                if self.shape()[a] != 1 {
                    return Err(Error::invalid(
                        "squeeze",
                        format!("axis {a} of shape {} is not 1", fmt_shape(self.shape())),
                    ));
                }
            }
            (0..self.rank()).filter(|a| !axes.contains(a)).map(|a| self.shape()[a]).collect()
        };
        self.try_reshape(s)
    }

    /// Keeps dim 0 and flattens the rest (`[n, ...] -> [n, prod(...)]`).
    #[track_caller]
    pub fn flatten_batch(&self) -> Tensor {
        let n = self.shape().first().copied().unwrap_or(1);
        let rest: usize = self.shape().iter().skip(1).product();
        self.reshape([n, rest])
    }

    /// numpy-style slicing, one [`SliceArg`] per leading dim (see [`crate::s!`]);
    /// an index drops its dim, ranges may have negative ends and steps.
    #[track_caller]
    pub fn slice(&self, args: &[SliceArg]) -> Tensor {
        or_panic(self.try_slice(args))
    }

    /// The fallible form of [`Tensor::slice`].
    pub fn try_slice(&self, args: &[SliceArg]) -> Result<Tensor> {
        let (dims, kept) = self.slice_plan(args)?;
        let whole = dims.iter().zip(self.shape()).all(|(d, &n)| *d == SliceDim::full(n));
        let sliced = if whole { self.clone() } else { apply(Op::Slice(dims), &[self])? };
        sliced.try_reshape(kept)
    }

    /// The per-axis slices and the result shape of `self.slice(args)`, with `Ellipsis`
    /// expanded and `NewAxis` dims (size 1) in the result shape.
    pub(crate) fn slice_plan(&self, args: &[SliceArg]) -> Result<(Vec<SliceDim>, Vec<usize>)> {
        let named = args.iter().filter(|a| !matches!(a, SliceArg::NewAxis | SliceArg::Ellipsis)).count();
        let ellipses = args.iter().filter(|a| matches!(a, SliceArg::Ellipsis)).count();
        if named > self.rank() || ellipses > 1 {
            let what = if ellipses > 1 { "more than one Ellipsis".to_string() } else { format!("{named} slice items") };
            return Err(Error::invalid("slice", format!("{what} for shape {}", fmt_shape(self.shape()))));
        }
        let whole_dims = self.rank() - named;
        let mut items: Vec<SliceArg> = Vec::with_capacity(self.rank() + args.len());
        for a in args {
            match a {
                SliceArg::Ellipsis => items.extend(std::iter::repeat_n(SliceArg::all(1), whole_dims)),
                a => items.push(*a),
            }
        }
        if ellipses == 0 {
            items.extend(std::iter::repeat_n(SliceArg::all(1), whole_dims));
        }
        let mut dims = Vec::with_capacity(self.rank());
        let mut kept = Vec::new();
        for item in items {
            if item == SliceArg::NewAxis {
                kept.push(1);
                continue;
            }
            let axis = dims.len();
            let (d, keep) = item.resolve(self.shape()[axis], axis)?;
            if keep {
                kept.push(d.len);
            }
            dims.push(d);
        }
        Ok((dims, kept))
    }

    /// Joins tensors of one dtype along `axis`; other dims must match.
    ///
    /// ```
    /// use kiln::Tensor;
    /// let c = Tensor::concat(&[&Tensor::new(&[1i32, 2]), &Tensor::new(&[3i32])], 0);
    /// assert_eq!(c.to_vec::<i32>().unwrap(), vec![1, 2, 3]);
    /// ```
    #[track_caller]
    pub fn concat(tensors: &[&Tensor], axis: i64) -> Tensor {
        or_panic(Tensor::try_concat(tensors, axis))
    }

    /// The fallible form of [`Tensor::concat`].
    pub fn try_concat(tensors: &[&Tensor], axis: i64) -> Result<Tensor> {
        let first = tensors.first().ok_or_else(|| Error::invalid("concat", "needs at least one tensor"))?;
        let axis = axis_of("concat", axis, first.rank())?;
        if tensors.len() == 1 {
            return Ok((*first).clone());
        }
        apply(Op::Concat { axis }, tensors)
    }

    /// Stacks same-shape tensors along a new `axis`.
    ///
    /// ```
    /// use kiln::Tensor;
    /// let s = Tensor::stack(&[&Tensor::new(&[1i32, 2]), &Tensor::new(&[3i32, 4])], 1);
    /// assert_eq!(s.to_vec::<i32>().unwrap(), vec![1, 3, 2, 4]);
    /// ```
    #[track_caller]
    pub fn stack(tensors: &[&Tensor], axis: i64) -> Tensor {
        or_panic(Tensor::try_stack(tensors, axis))
    }

    /// The fallible form of [`Tensor::stack`].
    pub fn try_stack(tensors: &[&Tensor], axis: i64) -> Result<Tensor> {
        let first = tensors.first().ok_or_else(|| Error::invalid("stack", "needs at least one tensor"))?;
        for t in tensors {
            if t.shape() != first.shape() {
                return Err(Error::ShapeMismatch { op: "stack", lhs: first.shape().into(), rhs: t.shape().into() });
            }
        }
        let expanded = tensors.iter().map(|t| t.try_expand_dims(axis)).collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = expanded.iter().collect();
        let a = axis_of("stack", axis, first.rank() + 1)? as i64;
        Tensor::try_concat(&refs, a)
    }

    /// Picks slices along `axis` by integer `indices` (I32 or I64); the result's shape is
    /// `shape[..axis] ++ indices.shape ++ shape[axis+1..]`. Out-of-range indices are an error.
    ///
    /// ```
    /// use kiln::Tensor;
    /// let t = Tensor::new(&[10.0f32, 20.0, 30.0]);
    /// let g = t.gather(&Tensor::new(&[2i64, 0]), 0);
    /// assert_eq!(g.to_vec::<f32>().unwrap(), vec![30.0, 10.0]);
    /// ```
    #[track_caller]
    pub fn gather(&self, indices: &Tensor, axis: i64) -> Tensor {
        or_panic(self.try_gather(indices, axis))
    }

    /// The fallible form of [`Tensor::gather`].
    pub fn try_gather(&self, indices: &Tensor, axis: i64) -> Result<Tensor> {
        let axis = axis_of("gather", axis, self.rank())?;
        apply(Op::Gather { axis }, &[self, indices])
    }

    /// One-hot encoding of integer `self` over `depth` classes, as `dtype`.
    ///
    /// ```
    /// let y = kiln::Tensor::new(&[2i64, 0]).one_hot(3, kiln::DType::F32);
    /// assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn one_hot(&self, depth: usize, dtype: kiln_ir::DType) -> Tensor {
        let classes = Tensor::arange(0.0, depth as f64, 1.0, self.dtype());
        self.expand_dims(-1).equal(&classes).cast(dtype)
    }
}
