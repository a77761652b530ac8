//! Sparse ops that move entries: `add`, `add_dense`, `concat`, `transpose`, `slice`.

use kiln_ir::DType;

use super::{needs_values, SparseTensor};
use crate::{Error, Result, Tensor};

fn same_dtype(op: &'static str, a: DType, b: DType) -> Result<()> {
    if a != b {
        return Err(Error::DTypeMismatch { op, lhs: a, rhs: b });
    }
    Ok(())
}

fn same_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<()> {
    if a != b {
        return Err(Error::ShapeMismatch { op, lhs: a.into(), rhs: b.into() });
    }
    Ok(())
}

/// `a + b` for two sparse tensors of one dense shape and dtype (TF's `sparse.add`): eagerly
/// the result is canonical with repeated positions added into one entry (explicit zeros
/// kept, as TF's default threshold 0 keeps them). Inside a traced function the result's
/// size cannot depend on values, so it holds all `a.nnz() + b.nnz()` entries in canonical
/// order, a position stored in both appearing twice: the same dense tensor, and
/// [`SparseTensor::to_dense`] and [`SparseTensor::reduce_sum`] add the pair up.
///
/// ```
/// use kiln::Tensor;
/// use kiln::sparse::SparseTensor;
/// let a = SparseTensor::new(Tensor::new(&[[0i64], [2]]), Tensor::new(&[1.0f32, 2.0]), &[3]).unwrap();
/// let b = SparseTensor::new(Tensor::new(&[[2i64]]), Tensor::new(&[5.0f32]), &[3]).unwrap();
/// let c = kiln::sparse::add(&a, &b).unwrap();
/// assert_eq!(c.indices().to_vec::<i64>().unwrap(), vec![0, 2]);
/// assert_eq!(c.values().to_vec::<f32>().unwrap(), vec![1.0, 7.0]);
/// ```
pub fn add(a: &SparseTensor, b: &SparseTensor) -> Result<SparseTensor> {
    let op = "sparse.add";
    same_shape(op, &a.dense_shape, &b.dense_shape)?;
    same_dtype(op, a.dtype(), b.dtype())?;
    let both = SparseTensor::from_parts(
        Tensor::try_concat(&[&a.indices, &b.indices], 0)?,
        Tensor::try_concat(&[&a.values, &b.values], 0)?,
        a.dense_shape.clone(),
    );
    if both.indices.is_symbolic() {
        both.reorder()
    } else {
        both.coalesce()
    }
}

/// `a + b` for a sparse `a` and a dense `b` of `a`'s dense shape: a dense result (TF's
/// `sparse.add(sparse, dense)`). Traces and differentiates in both.
///
/// ```
/// use kiln::Tensor;
/// use kiln::sparse::SparseTensor;
/// let a = SparseTensor::new(Tensor::new(&[[1i64]]), Tensor::new(&[5.0f32]), &[2]).unwrap();
/// let c = kiln::sparse::add_dense(&a, &Tensor::new(&[1.0f32, 1.0])).unwrap();
/// assert_eq!(c.to_vec::<f32>().unwrap(), vec![1.0, 6.0]);
/// ```
pub fn add_dense(a: &SparseTensor, b: &Tensor) -> Result<Tensor> {
    let op = "sparse.add_dense";
    same_shape(op, &a.dense_shape, b.shape())?;
    same_dtype(op, a.dtype(), b.dtype())?;
    b.try_tensor_scatter_nd_add(&a.indices, &a.values)
}

/// Joins sparse tensors along `axis` (TF's `sparse.concat`): the other dims must match; the
/// result is in canonical order (each input's repeated indices kept). Traces (its sort is
/// the traced one of [`SparseTensor::reorder`]).
///
/// ```
/// use kiln::Tensor;
/// use kiln::sparse::SparseTensor;
/// let a = SparseTensor::new(Tensor::new(&[[0i64, 1]]), Tensor::new(&[1.0f32]), &[1, 2]).unwrap();
/// let b = SparseTensor::new(Tensor::new(&[[0i64, 0]]), Tensor::new(&[2.0f32]), &[1, 3]).unwrap();
/// let c = kiln::sparse::concat(1, &[&a, &b]).unwrap();
/// assert_eq!(c.dense_shape(), &[1, 5]);
/// assert_eq!(c.indices().to_vec::<i64>().unwrap(), vec![0, 1, 0, 2]);
/// ```
pub fn concat(axis: i64, inputs: &[&SparseTensor]) -> Result<SparseTensor> {
    let op = "sparse.concat";
    let first = inputs.first().ok_or_else(|| Error::invalid(op, "needs at least one sparse tensor"))?;
    let axis = crate::ops::args::axis_of(op, axis, first.rank())?;
    let mut shape = first.dense_shape.clone();
    shape[axis] = 0;
    let mut indices = Vec::with_capacity(inputs.len());
    for s in inputs {
        same_dtype(op, first.dtype(), s.dtype())?;
        let others_match =
            s.rank() == first.rank() && (0..s.rank()).all(|d| d == axis || s.dense_shape[d] == first.dense_shape[d]);
        if !others_match {
            return Err(Error::invalid(
                op,
                format!("dense shapes {:?} and {:?} differ outside axis {axis}", first.dense_shape, s.dense_shape),
            ));
        }
        let mut offset = vec![0i64; s.rank()];
        offset[axis] = shape[axis] as i64;
        indices.push(s.indices.try_add(&Tensor::from_vec(offset, &[s.rank()])?)?);
        shape[axis] += s.dense_shape[axis];
    }
    let values: Vec<&Tensor> = inputs.iter().map(|s| &s.values).collect();
    let indices: Vec<&Tensor> = indices.iter().collect();
    SparseTensor::from_parts(Tensor::try_concat(&indices, 0)?, Tensor::try_concat(&values, 0)?, shape).reorder()
}

impl SparseTensor {
    /// Permutes the dims (TF's `sparse.transpose`): output dim `i` is input dim `perm[i]`
    /// (negative from the end); the result is in canonical order. Traces.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[0i64, 2], [1, 0]]), Tensor::new(&[1.0f32, 2.0]), &[2, 3]).unwrap();
    /// let t = s.transpose(&[1, 0]).unwrap();
    /// assert_eq!(t.dense_shape(), &[3, 2]);
    /// assert_eq!(t.indices().to_vec::<i64>().unwrap(), vec![0, 1, 2, 0]);
    /// assert_eq!(t.values().to_vec::<f32>().unwrap(), vec![2.0, 1.0]);
    /// ```
    pub fn transpose(&self, perm: impl crate::IntList) -> Result<SparseTensor> {
        let op = "sparse.transpose";
        let perm = perm
            .to_i64s()
            .into_iter()
            .map(|a| crate::ops::args::axis_of(op, a, self.rank()))
            .collect::<Result<Vec<usize>>>()?;
        let mut seen = perm.clone();
        seen.sort_unstable();
        if seen != (0..self.rank()).collect::<Vec<_>>() {
            return Err(Error::invalid(op, format!("perm {perm:?} must name each of the {} dims once", self.rank())));
        }
        let cols = Tensor::from_vec(perm.iter().map(|&d| d as i64).collect(), &[perm.len()])?;
        let shape = perm.iter().map(|&d| self.dense_shape[d]).collect();
        SparseTensor::from_parts(self.indices.try_gather(&cols, 1)?, self.values.clone(), shape).reorder()
    }

    /// The entries inside the box `start .. start + size` (TF's `sparse.slice`), shifted to
    /// start at 0; the dense shape is `size` clipped to the tensor. Entries keep their order.
    /// How many fall inside depends on the indices' values, so this runs eagerly only (an
    /// `Err` inside a traced function); the values are gathered, so gradients reach them.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[0i64, 1], [1, 2]]), Tensor::new(&[1.0f32, 2.0]), &[2, 3]).unwrap();
    /// let t = s.slice(&[0, 1], &[2, 5]).unwrap();
    /// assert_eq!(t.dense_shape(), &[2, 2]);
    /// assert_eq!(t.indices().to_vec::<i64>().unwrap(), vec![0, 0, 1, 1]);
    /// ```
    pub fn slice(&self, start: &[usize], size: &[usize]) -> Result<SparseTensor> {
        let op = "sparse.slice";
        if start.len() != self.rank() || size.len() != self.rank() {
            return Err(Error::invalid(
                op,
                format!(
                    "start {start:?} and size {size:?} must each have one entry per dim of dense_shape {:?}",
                    self.dense_shape
                ),
            ));
        }
        if let Some(d) = (0..self.rank()).find(|&d| start[d] > self.dense_shape[d]) {
            return Err(Error::invalid(
                op,
                format!("start {start:?} is past the end of dim {d} of dense_shape {:?}", self.dense_shape),
            ));
        }
        let rows = self.host_indices()?.ok_or_else(|| needs_values(op))?;
        let shape: Vec<usize> = (0..self.rank()).map(|d| size[d].min(self.dense_shape[d] - start[d])).collect();
        let inside = |row: &Vec<i64>| {
            row.iter().enumerate().all(|(d, &i)| i >= start[d] as i64 && i < (start[d] + shape[d]) as i64)
        };
        let kept: Vec<i64> = rows.iter().enumerate().filter(|(_, r)| inside(r)).map(|(e, _)| e as i64).collect();
        let kept = Tensor::from_vec(kept.clone(), &[kept.len()])?;
        let origin: Vec<i64> = start.iter().map(|&s| s as i64).collect();
        let indices = self.indices.try_gather(&kept, 0)?.try_sub(&Tensor::from_vec(origin, &[self.rank()])?)?;
        Ok(SparseTensor::from_parts(indices, self.values.try_gather(&kept, 0)?, shape))
    }

    /// The same entries in a tensor of `shape` with as many elements (TF's `sparse.reshape`;
    /// one dim may be `-1`, inferred): each index becomes the index of the same row-major
    /// position. Row-major order is kept, so a canonical tensor stays canonical. Traces.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[1i64, 2]]), Tensor::new(&[1.0f32]), &[2, 3]).unwrap();
    /// let r = s.reshape(&[3, -1]).unwrap();
    /// assert_eq!(r.dense_shape(), &[3, 2]);
    /// assert_eq!(r.indices().to_vec::<i64>().unwrap(), vec![2, 1]);
    /// ```
    pub fn reshape(&self, shape: impl crate::IntList) -> Result<SparseTensor> {
        let op = "sparse.reshape";
        let numel: usize = self.dense_shape.iter().product();
        let shape = reshaped(op, &self.dense_shape, &shape.to_i64s(), numel)?;
        // A dim of 0 leaves no entries; `max(1)` only keeps the divisions below defined.
        let strides: Vec<i64> = super::linear_strides(op, &shape)?.into_iter().map(|s| s.max(1)).collect();
        let key = self.key_tensor()?.try_expand_dims(1)?;
        let dims: Vec<i64> = shape.iter().map(|&d| d.max(1) as i64).collect();
        let (strides, dims) = (Tensor::from_vec(strides, &[shape.len()])?, Tensor::from_vec(dims, &[shape.len()])?);
        // (key / stride) mod dim, with truncating division (keys are non-negative).
        let q = key.try_div(&strides)?;
        let indices = q.try_sub(&q.try_div(&dims)?.try_mul(&dims)?)?;
        Ok(SparseTensor::from_parts(indices, self.values.clone(), shape))
    }

    /// The entries where `keep` (bool `[nnz]`) is true, in order (TF's `sparse.retain`). How
    /// many are kept depends on `keep`'s values, so this runs eagerly only (an `Err` inside a
    /// traced function); the values are gathered, so gradients reach them.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[0i64], [2]]), Tensor::new(&[1.0f32, 2.0]), &[3]).unwrap();
    /// let r = s.retain(&Tensor::new(&[false, true])).unwrap();
    /// assert_eq!(r.indices().to_vec::<i64>().unwrap(), vec![2]);
    /// ```
    pub fn retain(&self, keep: &Tensor) -> Result<SparseTensor> {
        let op = "sparse.retain";
        if keep.dtype() != DType::Bool || keep.shape() != [self.nnz()] {
            return Err(Error::invalid(
                op,
                format!("keep must be bool [{}] (one per entry), got {}", self.nnz(), keep.tensor_type()),
            ));
        }
        if keep.is_symbolic() {
            return Err(needs_values(op));
        }
        Ok(SparseTensor::from_parts(
            self.indices.boolean_mask(keep)?,
            self.values.boolean_mask(keep)?,
            self.dense_shape.clone(),
        ))
    }
}

/// `dims` (one may be `-1`) resolved for a tensor of `numel` elements.
fn reshaped(op: &'static str, from: &[usize], dims: &[i64], numel: usize) -> Result<Vec<usize>> {
    let bad = || Error::invalid(op, format!("cannot reshape dense_shape {from:?} ({numel} elements) to {dims:?}"));
    let known: usize = dims.iter().filter(|&&d| d >= 0).map(|&d| d as usize).product();
    let inferred = dims.iter().filter(|&&d| d == -1).count();
    if dims.is_empty() || inferred > 1 || dims.iter().any(|&d| d < -1) {
        return Err(bad());
    }
    let out: Vec<usize> =
        dims.iter().map(|&d| if d == -1 && known != 0 { numel / known } else { d.max(0) as usize }).collect();
    if out.iter().product::<usize>() != numel {
        return Err(bad());
    }
    Ok(out)
}
