//! TF's n-dimensional indexing, written as composites of `gather`, `scatter_add`, `unslice`
//! and `select` (so each is traced, compiled and differentiated through its parts, with no
//! rule of its own): `gather_nd`, `tensor_scatter_nd_add`/`_update`, the slice writes behind
//! `Variable::assign_slice`, and `boolean_mask` (eager only: its size depends on values).
//!
//! An index tensor `[..., q]` addresses the first `q` dims of a tensor; the composites
//! flatten those dims into one and turn each index into a row number. An index outside its
//! dim becomes a row number past the end, which `gather` and `scatter_add` report at run
//! time, as TF does.

use kiln_ir::{DType, Op};

use super::args::SliceArg;
use super::or_panic;
use crate::context::apply;
use crate::{Error, Result, Tensor};

/// How an index tensor `[..., q]` addresses `shape`.
struct NdIndex {
    /// One row number per index (`[m]`, i64); past the end where a component is out of range.
    rows: Tensor,
    /// The leading dims of the index tensor (the batch of indices).
    batch: Vec<usize>,
    /// `shape[..q]` flattened: the number of rows.
    n_rows: usize,
    /// `shape[q..]`: what each index selects.
    slab: Vec<usize>,
}

fn nd_index(op: &'static str, shape: &[usize], indices: &Tensor) -> Result<NdIndex> {
    let q = *indices.shape().last().ok_or_else(|| Error::invalid(op, "indices must have rank >= 1 ([..., q])"))?;
    if !indices.dtype().is_int() || q > shape.len() {
        return Err(Error::invalid(
            op,
            format!("indices must be integers [..., q] with q <= rank {}, got {}", shape.len(), indices.tensor_type()),
        ));
    }
    let batch = indices.shape()[..indices.rank() - 1].to_vec();
    let m: usize = batch.iter().product();
    let idx = indices.try_cast(DType::I64)?.try_reshape([m as i64, q as i64])?;
    let n_rows: usize = shape[..q].iter().product();
    // Row-major row number, and whether every component is inside its dim.
    let mut rows = Tensor::zeros(&[m], DType::I64);
    let mut inside = Tensor::fill(&[m], 1.0, DType::Bool);
    for (j, &dim) in shape[..q].iter().enumerate() {
        let stride: usize = shape[j + 1..q].iter().product();
        let c = idx.try_slice(&[SliceArg::all(1), SliceArg::Index(j as isize)])?;
        rows = rows.try_add(&c.try_mul(&Tensor::scalar(stride as i64))?)?;
        let ok =
            c.try_greater_equal(&Tensor::scalar(0i64))?.try_logical_and(&c.try_less(&Tensor::scalar(dim as i64))?)?;
        inside = inside.try_logical_and(&ok)?;
    }
    let rows = inside.try_select(&rows, &Tensor::scalar(n_rows as i64))?;
    Ok(NdIndex { rows, batch, n_rows, slab: shape[q..].to_vec() })
}

fn as_i64s(dims: &[usize]) -> Vec<i64> {
    dims.iter().map(|&d| d as i64).collect()
}

impl NdIndex {
    /// `t` (of the addressed shape) as `[n_rows, ...slab]`.
    fn flat(&self, t: &Tensor) -> Result<Tensor> {
        t.try_reshape(as_i64s(&[&[self.n_rows][..], &self.slab].concat()))
    }

    /// Updates `[...batch, ...slab]` as `[m, ...slab]`, checked against the index batch.
    fn updates(&self, op: &'static str, updates: &Tensor) -> Result<Tensor> {
        let want: Vec<usize> = [&self.batch[..], &self.slab].concat();
        if updates.shape() != want.as_slice() {
            return Err(Error::invalid(
                op,
                format!(
                    "updates must be {:?} (the indices' batch, then the slab), got {}",
                    want,
                    updates.tensor_type()
                ),
            ));
        }
        let m: usize = self.batch.iter().product();
        updates.try_reshape(as_i64s(&[&[m][..], &self.slab].concat()))
    }

    /// Zeros of `[n_rows, ...slab]` with `u` (`[m, ...slab]`) added at the rows.
    fn scatter(&self, u: &Tensor) -> Result<Tensor> {
        let shape = [&[self.n_rows][..], &self.slab].concat();
        apply(Op::ScatterAdd { axis: 0, shape: shape.into() }, &[u, &self.rows])
    }
}

impl Tensor {
    /// The slabs of `self` at n-dimensional `indices` (TF's `gather_nd`): `indices` is
    /// `[..., q]` integers, each last-axis vector addressing the first `q` dims; the result is
    /// `indices.shape[..-1] ++ self.shape[q..]`. An index out of range is an error (at run time
    /// when traced). Differentiable in `self`.
    ///
    /// ```
    /// use kiln::Tensor;
    /// let t = Tensor::new(&[[1i32, 2], [3, 4], [5, 6]]);
    /// let picked = t.gather_nd(&Tensor::new(&[[2i64, 0], [0, 1]]));
    /// assert_eq!(picked.to_vec::<i32>().unwrap(), vec![5, 2]);
    /// let rows = t.gather_nd(&Tensor::new(&[[1i64]]));
    /// assert_eq!((rows.shape(), rows.to_vec::<i32>().unwrap()), (&[1usize, 2][..], vec![3, 4]));
    /// ```
    #[track_caller]
    pub fn gather_nd(&self, indices: &Tensor) -> Tensor {
        or_panic(self.try_gather_nd(indices))
    }

    /// The fallible form of [`Tensor::gather_nd`].
    pub fn try_gather_nd(&self, indices: &Tensor) -> Result<Tensor> {
        let ix = nd_index("gather_nd", self.shape(), indices)?;
        let picked = ix.flat(self)?.try_gather(&ix.rows, 0)?;
        picked.try_reshape(as_i64s(&[&ix.batch[..], &ix.slab].concat()))
    }

    /// `self` with `updates` added at n-dimensional `indices` (TF's `tensor_scatter_nd_add`;
    /// repeated indices add up). `updates` is `indices.shape[..-1] ++ self.shape[q..]`.
    ///
    /// ```
    /// use kiln::Tensor;
    /// let t = Tensor::new(&[1.0f32, 1.0, 1.0, 1.0]);
    /// let s = t.tensor_scatter_nd_add(&Tensor::new(&[[1i64], [3], [1]]), &Tensor::new(&[5.0f32, 7.0, 1.0]));
    /// assert_eq!(s.to_vec::<f32>().unwrap(), vec![1.0, 7.0, 1.0, 8.0]);
    /// ```
    #[track_caller]
    pub fn tensor_scatter_nd_add(&self, indices: &Tensor, updates: &Tensor) -> Tensor {
        or_panic(self.try_tensor_scatter_nd_add(indices, updates))
    }

    /// The fallible form of [`Tensor::tensor_scatter_nd_add`].
    pub fn try_tensor_scatter_nd_add(&self, indices: &Tensor, updates: &Tensor) -> Result<Tensor> {
        let ix = nd_index("tensor_scatter_nd_add", self.shape(), indices)?;
        let added = ix.scatter(&ix.updates("tensor_scatter_nd_add", updates)?)?;
        self.try_add(&added.try_reshape(as_i64s(self.shape()))?)
    }

    /// `self` with the slabs at n-dimensional `indices` replaced by `updates` (TF's
    /// `tensor_scatter_nd_update`). Where an index repeats, TF keeps one of the updates
    /// (unspecified which); here they add up, so give each position once.
    ///
    /// ```
    /// use kiln::Tensor;
    /// let t = Tensor::new(&[[0i32, 0], [0, 0]]);
    /// let s = t.tensor_scatter_nd_update(&Tensor::new(&[[0i64, 1], [1, 0]]), &Tensor::new(&[42i32, 7]));
    /// assert_eq!(s.to_vec::<i32>().unwrap(), vec![0, 42, 7, 0]);
    /// ```
    #[track_caller]
    pub fn tensor_scatter_nd_update(&self, indices: &Tensor, updates: &Tensor) -> Tensor {
        or_panic(self.try_tensor_scatter_nd_update(indices, updates))
    }

    /// The fallible form of [`Tensor::tensor_scatter_nd_update`].
    pub fn try_tensor_scatter_nd_update(&self, indices: &Tensor, updates: &Tensor) -> Result<Tensor> {
        let op = "tensor_scatter_nd_update";
        let ix = nd_index(op, self.shape(), indices)?;
        let u = ix.updates(op, updates)?;
        let placed = ix.scatter(&u)?;
        let hit = ix.scatter(&Tensor::fill(u.shape(), 1.0, DType::I32))?.try_greater(&Tensor::scalar(0i32))?;
        let full = as_i64s(self.shape());
        hit.try_reshape(full.clone())?.try_select(&placed.try_reshape(full)?, self)
    }

    /// `self` with the slice `args` (as [`Tensor::slice`] reads it) replaced by `value`,
    /// broadcast to the slice's shape: numpy's `t[0, 1:] = value` without mutation. What
    /// [`crate::Variable::assign_slice`] writes.
    ///
    /// ```
    /// use kiln::{s, Tensor};
    /// let t = Tensor::new(&[[1i32, 2, 3], [4, 5, 6]]);
    /// let u = t.with_slice(&s![.., 2], &Tensor::new(&[0i32, 1])).unwrap();
    /// assert_eq!(u.to_vec::<i32>().unwrap(), vec![1, 2, 0, 4, 5, 1]);
    /// ```
    pub fn with_slice(&self, args: &[SliceArg], value: &Tensor) -> Result<Tensor> {
        let (dims, kept) = self.slice_plan(args)?;
        let value = value.try_cast(self.dtype())?.try_broadcast_to(&kept)?;
        // The slice's shape with every dim kept (indexed dims as 1), as `unslice` takes it.
        let with_ones: Vec<i64> = dims.iter().map(|d| d.len as i64).collect();
        let unslice = Op::Unslice { dims: dims.clone(), shape: self.shape().into() };
        let placed = apply(unslice.clone(), &[&value.try_reshape(with_ones.clone())?])?;
        let ones = Tensor::fill(&with_ones.iter().map(|&d| d as usize).collect::<Vec<_>>(), 1.0, DType::I32);
        let hit = apply(unslice, &[&ones])?.try_greater(&Tensor::scalar(0i32))?;
        hit.try_select(&placed, self)
    }

    /// The elements (or slabs) where `mask` is true, in row-major order (TF's
    /// `boolean_mask`): `mask` is bool with the shape of `self`'s leading dims; the result
    /// is `[count, ...rest]`. Its size depends on the mask's values, so it exists eagerly
    /// only (inside `kiln::function` it is an `Err`; use `select` there). Differentiable in
    /// `self` (through `gather`).
    ///
    /// ```
    /// use kiln::Tensor;
    /// let t = Tensor::new(&[[1i32, 2], [3, 4], [5, 6]]);
    /// let rows = t.boolean_mask(&Tensor::new(&[true, false, true])).unwrap();
    /// assert_eq!(rows.to_vec::<i32>().unwrap(), vec![1, 2, 5, 6]);
    /// ```
    pub fn boolean_mask(&self, mask: &Tensor) -> Result<Tensor> {
        self.check_mask("boolean_mask", mask)?;
        if mask.is_symbolic() {
            return Err(Error::invalid(
                "boolean_mask",
                "the result's size depends on the mask's values, which a traced function does not know; use `boolean_mask_sized` (a fixed size, as JAX's `size=`) or `select` there",
            ));
        }
        let k = mask.rank();
        let picked: Vec<i64> =
            mask.to_vec::<bool>()?.iter().enumerate().filter(|(_, &b)| b).map(|(i, _)| i as i64).collect();
        let rest = &self.shape()[k..];
        let flat = self.try_reshape(as_i64s(&[&[mask.shape().iter().product::<usize>()][..], rest].concat()))?;
        flat.try_gather(&Tensor::from_vec(picked.clone(), &[picked.len()])?, 0)
    }

    /// [`Tensor::boolean_mask`] with a fixed result size, so it also runs inside a traced
    /// function (JAX's `size=` and `fill_value=`): the first `size` selected slabs in
    /// row-major order, then slabs of `fill`. Differentiable in `self`.
    ///
    /// ```
    /// use kiln::Tensor;
    /// let t = Tensor::new(&[1.0f32, 2.0, 3.0, 4.0]);
    /// let m = Tensor::new(&[false, true, false, true]);
    /// let f = kiln::function(|a: &[Tensor]| a[0].boolean_mask_sized(&a[1], 3, -1.0));
    /// assert_eq!(f.call(&[t, m][..]).unwrap().to_vec::<f32>().unwrap(), vec![2.0, 4.0, -1.0]);
    /// ```
    pub fn boolean_mask_sized(&self, mask: &Tensor, size: usize, fill: f64) -> Result<Tensor> {
        self.check_mask("boolean_mask_sized", mask)?;
        let k = mask.rank();
        let n: usize = mask.shape().iter().product();
        let rest = self.shape()[k..].to_vec();
        let flat_mask = mask.try_reshape([n as i64])?;
        // Each selected slab's place: how many were selected before it (a running count).
        let (_, before) = crate::scan(
            |count: &[Tensor], m: &[Tensor]| {
                let next = count[0].try_add(&m[0].try_cast(DType::I64)?)?;
                Ok((vec![next], vec![count[0].clone()]))
            },
            &[Tensor::scalar(0i64)],
            std::slice::from_ref(&flat_mask),
        )?;
        let kept = flat_mask.try_logical_and(&before[0].try_less(&Tensor::scalar(size as i64))?)?;
        // Slabs not kept go to a spare row past the end, dropped below.
        let rows = kept.try_select(&before[0], &Tensor::scalar(size as i64))?;
        let shape: Vec<usize> = [&[size + 1][..], &rest].concat();
        let flat = self.try_reshape(as_i64s(&[&[n][..], &rest].concat()))?;
        let scatter = |t: &Tensor| apply(Op::ScatterAdd { axis: 0, shape: shape.clone().into() }, &[t, &rows]);
        let placed = scatter(&flat)?;
        let hit = scatter(&Tensor::fill(flat.shape(), 1.0, DType::I32))?.try_greater(&Tensor::scalar(0i32))?;
        let out = hit.try_select(&placed, &placed.try_scalar_like(fill)?)?;
        out.try_slice(&[SliceArg::from(0..size as isize)])
    }

    fn check_mask(&self, op: &'static str, mask: &Tensor) -> Result<()> {
        let k = mask.rank();
        if mask.dtype() != DType::Bool || k == 0 || self.shape().get(..k) != Some(mask.shape()) {
            let msg = format!(
                "the mask must be bool with the leading dims of {}, got {}",
                self.tensor_type(),
                mask.tensor_type()
            );
            return Err(Error::invalid(op, msg));
        }
        Ok(())
    }
}
