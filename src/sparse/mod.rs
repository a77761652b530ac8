//! Sparse tensors in TensorFlow's COO layout (`tf.sparse.SparseTensor`): `indices` `[nnz, rank]`
//! i64, `values` `[nnz]`, and a static `dense_shape`. Every op is a composite of dense kiln
//! ops (`gather`, `scatter_add`, `matmul`, ...), so it runs eagerly, traces inside
//! [`crate::function`], compiles and differentiates (in `values` and dense operands) with no
//! rule of its own. The ops whose number of stored entries depends on the indices' values
//! (`from_dense`, `slice`, `coalesce`) run eagerly only. Layout and coverage: `docs/DATA.md`.
//!
//! ```
//! use kiln::Tensor;
//! use kiln::sparse::SparseTensor;
//! let s = SparseTensor::new(Tensor::new(&[[0i64, 1], [1, 0]]), Tensor::new(&[3.0f32, 4.0]), &[2, 3]).unwrap();
//! let d = Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]]);
//! let p = kiln::sparse::matmul(&s, &d).unwrap();
//! assert_eq!(p.to_vec::<f32>().unwrap(), vec![9.0, 12.0, 4.0, 8.0]);
//! ```

mod function;
mod matmul;
mod ops;
mod order;
mod reduce;

use std::fmt;

use kiln_ir::DType;

pub use matmul::{matmul, matmul_with};
pub use ops::{add, add_dense, concat};

use crate::ops::args::SliceArg;
use crate::{Error, Result, Tensor};

/// A sparse tensor: the `values` at `indices` of a tensor of `dense_shape`, zeros elsewhere.
///
/// Canonical order is row-major (lexicographic) order of the indices with no repeats; ops
/// that return a `SparseTensor` return it in that order, as TF's do. A repeated index counts
/// once per entry: [`SparseTensor::to_dense`] and [`SparseTensor::reduce_sum`] add them up.
///
/// ```
/// use kiln::Tensor;
/// use kiln::sparse::SparseTensor;
/// let s = SparseTensor::new(Tensor::new(&[[1i64, 2]]), Tensor::new(&[5i32]), &[2, 3]).unwrap();
/// assert_eq!((s.nnz(), s.rank(), s.dense_shape()), (1, 2, &[2usize, 3][..]));
/// assert_eq!(s.to_dense().unwrap().to_vec::<i32>().unwrap(), vec![0, 0, 0, 0, 0, 5]);
/// ```
#[derive(Clone)]
pub struct SparseTensor {
    indices: Tensor,
    values: Tensor,
    dense_shape: Vec<usize>,
}

impl SparseTensor {
    /// A sparse tensor from its parts, checked: `indices` is `[nnz, rank]` I64, `values` is
    /// `[nnz]` of any dtype, `dense_shape` has `rank` dims. When `indices` is concrete each
    /// index must also be inside `dense_shape` (a negative or out-of-bounds index is an
    /// `Err` naming the entry); inside a traced function the values are unknown, and an index
    /// out of bounds is reported when the graph runs (by the `gather`/`scatter` it reaches).
    /// The order of the entries is not checked: see [`SparseTensor::reorder`].
    ///
    /// ```
    /// use kiln::Tensor;
    /// use kiln::sparse::SparseTensor;
    /// let ok = SparseTensor::new(Tensor::new(&[[0i64, 2]]), Tensor::new(&[1.0f32]), &[1, 3]);
    /// assert!(ok.is_ok());
    /// let out = SparseTensor::new(Tensor::new(&[[0i64, 3]]), Tensor::new(&[1.0f32]), &[1, 3]);
    /// assert!(out.unwrap_err().to_string().contains("out of bounds"));
    /// ```
    pub fn new(indices: Tensor, values: Tensor, dense_shape: &[usize]) -> Result<SparseTensor> {
        let op = "SparseTensor::new";
        if dense_shape.is_empty() {
            return Err(Error::invalid(op, "dense_shape must have rank >= 1"));
        }
        if indices.dtype() != DType::I64 || indices.rank() != 2 || indices.shape()[1] != dense_shape.len() {
            return Err(Error::invalid(
                op,
                format!(
                    "indices must be i64 [nnz, {}] (one row per entry, one column per dim of dense_shape {:?}), got {}",
                    dense_shape.len(),
                    dense_shape,
                    indices.tensor_type()
                ),
            ));
        }
        if values.rank() != 1 || values.shape()[0] != indices.shape()[0] {
            return Err(Error::invalid(
                op,
                format!(
                    "values must be [nnz] with nnz = {} (the rows of indices), got {}",
                    indices.shape()[0],
                    values.tensor_type()
                ),
            ));
        }
        linear_strides(op, dense_shape)?;
        let s = SparseTensor { indices, values, dense_shape: dense_shape.to_vec() };
        if let Some(rows) = s.host_indices()? {
            s.check_bounds(op, &rows)?;
        }
        Ok(s)
    }

    /// The `[nnz, rank]` I64 positions of the stored entries.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[3i64]]), Tensor::new(&[1.0f32]), &[4]).unwrap();
    /// assert_eq!(s.indices().to_vec::<i64>().unwrap(), vec![3]);
    /// ```
    pub fn indices(&self) -> &Tensor {
        &self.indices
    }

    /// The `[nnz]` stored values.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[3i64]]), Tensor::new(&[1.5f32]), &[4]).unwrap();
    /// assert_eq!(s.values().to_vec::<f32>().unwrap(), vec![1.5]);
    /// ```
    pub fn values(&self) -> &Tensor {
        &self.values
    }

    /// The shape of the dense tensor this one stands for.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[3i64]]), Tensor::new(&[1.5f32]), &[4]).unwrap();
    /// assert_eq!(s.dense_shape(), &[4]);
    /// ```
    pub fn dense_shape(&self) -> &[usize] {
        &self.dense_shape
    }

    /// The number of stored entries (repeats counted).
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[1i64], [1]]), Tensor::new(&[1.0f32, 2.0]), &[4]).unwrap();
    /// assert_eq!(s.nnz(), 2);
    /// ```
    pub fn nnz(&self) -> usize {
        self.indices.shape()[0]
    }

    /// The number of dims of the dense shape.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[1i64, 0, 0]]), Tensor::new(&[1.0f32]), &[2, 2, 2]).unwrap();
    /// assert_eq!(s.rank(), 3);
    /// ```
    pub fn rank(&self) -> usize {
        self.dense_shape.len()
    }

    /// The dtype of the values.
    ///
    /// ```
    /// # use kiln::{DType, Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[1i64]]), Tensor::new(&[1i32]), &[4]).unwrap();
    /// assert_eq!(s.dtype(), DType::I32);
    /// ```
    pub fn dtype(&self) -> DType {
        self.values.dtype()
    }

    /// The dense tensor: zeros of `dense_shape` with the values added at their indices
    /// (repeated indices add up; TF's `to_dense` refuses them). Traces and differentiates.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[0i64, 1], [1, 0]]), Tensor::new(&[3.0f32, 4.0]), &[2, 2]).unwrap();
    /// assert_eq!(s.to_dense().unwrap().to_vec::<f32>().unwrap(), vec![0.0, 3.0, 4.0, 0.0]);
    /// ```
    pub fn to_dense(&self) -> Result<Tensor> {
        Tensor::try_zeros(&self.dense_shape, self.dtype())?.try_tensor_scatter_nd_add(&self.indices, &self.values)
    }

    /// The non-zero entries of `dense`, in row-major order (TF's `sparse.from_dense`). The
    /// number of entries depends on the values, so this runs eagerly only (an `Err` inside a
    /// traced function); the values are gathered from `dense`, so gradients reach it.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::from_dense(&Tensor::new(&[[0.0f32, 2.0], [0.0, 0.0]])).unwrap();
    /// assert_eq!(s.indices().to_vec::<i64>().unwrap(), vec![0, 1]);
    /// assert_eq!(s.values().to_vec::<f32>().unwrap(), vec![2.0]);
    /// ```
    pub fn from_dense(dense: &Tensor) -> Result<SparseTensor> {
        let op = "sparse.from_dense";
        let a = concrete(op, dense)?;
        if dense.rank() == 0 {
            return Err(Error::invalid(op, "needs a tensor of rank >= 1, got a scalar"));
        }
        let strides = row_major_strides(dense.shape());
        let mut flat = Vec::new();
        for i in (0..a.len()).filter(|&i| a.get_f64(i) != 0.0) {
            flat.extend(strides.iter().zip(dense.shape()).map(|(&s, &d)| ((i / s) % d) as i64));
        }
        let nnz = flat.len() / dense.rank();
        let indices = Tensor::from_vec(flat, &[nnz, dense.rank()])?;
        let values = dense.try_gather_nd(&indices)?;
        SparseTensor::new(indices, values, dense.shape())
    }

    /// The same indices with new `values` (`[nnz]`, any dtype).
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[1i64]]), Tensor::new(&[2.0f32]), &[3]).unwrap();
    /// let t = s.with_values(Tensor::new(&[7i32])).unwrap();
    /// assert_eq!(t.to_dense().unwrap().to_vec::<i32>().unwrap(), vec![0, 7, 0]);
    /// ```
    pub fn with_values(&self, values: Tensor) -> Result<SparseTensor> {
        if values.shape() != self.values.shape() {
            return Err(Error::invalid(
                "sparse.with_values",
                format!("the new values must be [{}] (one per entry), got {}", self.nnz(), values.tensor_type()),
            ));
        }
        Ok(SparseTensor { indices: self.indices.clone(), values, dense_shape: self.dense_shape.clone() })
    }

    /// `f` applied to the values, the indices unchanged (TF's `sparse.map_values`); `f` must
    /// keep one value per entry. Only meaningful for ops that map 0 to 0 if the result is to
    /// stand for `f` of the dense tensor (as TF says too).
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[1i64]]), Tensor::new(&[4.0f32]), &[3]).unwrap();
    /// let r = s.map_values(|v| v.sqrt()).unwrap();
    /// assert_eq!(r.values().to_vec::<f32>().unwrap(), vec![2.0]);
    /// ```
    pub fn map_values(&self, f: impl FnOnce(&Tensor) -> Tensor) -> Result<SparseTensor> {
        self.with_values(f(&self.values))
    }

    /// The absolute values.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[1i64]]), Tensor::new(&[-4.0f32]), &[3]).unwrap();
    /// assert_eq!(s.abs().unwrap().values().to_vec::<f32>().unwrap(), vec![4.0]);
    /// ```
    pub fn abs(&self) -> Result<SparseTensor> {
        self.with_values(self.values.try_abs()?)
    }

    /// The values negated.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[1i64]]), Tensor::new(&[4i64]), &[3]).unwrap();
    /// assert_eq!(s.neg().unwrap().values().to_vec::<i64>().unwrap(), vec![-4]);
    /// ```
    pub fn neg(&self) -> Result<SparseTensor> {
        self.with_values(self.values.try_neg()?)
    }

    /// The values times a scalar (of the values' dtype, as `&t * 2.0` takes it).
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[1i64]]), Tensor::new(&[4.0f32]), &[3]).unwrap();
    /// assert_eq!(s.mul_scalar(0.5).unwrap().values().to_vec::<f32>().unwrap(), vec![2.0]);
    /// ```
    pub fn mul_scalar(&self, k: f64) -> Result<SparseTensor> {
        self.with_values(self.values.try_mul(&self.values.try_scalar_like(k)?)?)
    }

    /// The values converted to `dtype`.
    ///
    /// ```
    /// # use kiln::{DType, Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[1i64]]), Tensor::new(&[4.7f32]), &[3]).unwrap();
    /// assert_eq!(s.cast(DType::I32).unwrap().values().to_vec::<i32>().unwrap(), vec![4]);
    /// ```
    pub fn cast(&self, dtype: DType) -> Result<SparseTensor> {
        self.with_values(self.values.try_cast(dtype)?)
    }

    /// The indices as host rows, or `None` while tracing (their values are unknown).
    fn host_indices(&self) -> Result<Option<Vec<Vec<i64>>>> {
        if self.indices.is_symbolic() {
            return Ok(None);
        }
        let flat = self.indices.to_vec::<i64>()?;
        let r = self.rank();
        Ok(Some(flat.chunks(r.max(1)).take(self.nnz()).map(<[i64]>::to_vec).collect()))
    }

    fn check_bounds(&self, op: &'static str, rows: &[Vec<i64>]) -> Result<()> {
        for (e, row) in rows.iter().enumerate() {
            for (d, (&i, &n)) in row.iter().zip(&self.dense_shape).enumerate() {
                if i < 0 || i as u64 >= n as u64 {
                    let what = if i < 0 { "is negative" } else { "is out of bounds" };
                    return Err(Error::invalid(
                        op,
                        format!(
                            "index {row:?} of entry {e} {what}: dim {d} of dense_shape {:?} has size {n}",
                            self.dense_shape
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks that the entries are in canonical order: row-major, no index twice (TF's
    /// `validate_indices`). Eager only. `Err` names the first entry out of order.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[1i64], [0]]), Tensor::new(&[1.0f32, 2.0]), &[2]).unwrap();
    /// assert!(s.check_canonical().unwrap_err().to_string().contains("out of order"));
    /// assert!(s.reorder().unwrap().check_canonical().is_ok());
    /// ```
    pub fn check_canonical(&self) -> Result<()> {
        let op = "sparse.check_canonical";
        let rows = self.host_indices()?.ok_or_else(|| needs_values(op))?;
        for (e, w) in rows.windows(2).enumerate() {
            if w[0] >= w[1] {
                let what = if w[0] == w[1] { "repeats the previous index" } else { "is out of order" };
                return Err(Error::invalid(
                    op,
                    format!(
                        "index {:?} of entry {} {what} ({:?}): sorted indices are required here; use `reorder` or `coalesce`",
                        w[1],
                        e + 1,
                        w[0]
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Column `d` of the indices, `[nnz]`.
    fn index_column(&self, d: usize) -> Result<Tensor> {
        self.indices.try_slice(&[SliceArg::all(1), SliceArg::Index(d as isize)])
    }

    /// A checked sparse tensor whose indices are known to be in bounds (built by an op).
    fn from_parts(indices: Tensor, values: Tensor, dense_shape: Vec<usize>) -> SparseTensor {
        SparseTensor { indices, values, dense_shape }
    }
}

impl std::ops::Neg for &SparseTensor {
    type Output = SparseTensor;
    #[track_caller]
    fn neg(self) -> SparseTensor {
        crate::ops::or_panic(SparseTensor::neg(self))
    }
}

impl std::ops::Mul<f64> for &SparseTensor {
    type Output = SparseTensor;
    #[track_caller]
    fn mul(self, k: f64) -> SparseTensor {
        crate::ops::or_panic(self.mul_scalar(k))
    }
}

impl fmt::Debug for SparseTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SparseTensor(indices={}, values={}, dense_shape={:?})", self.indices, self.values, self.dense_shape)
    }
}

impl fmt::Display for SparseTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Row-major strides of `shape` (elements per step of each dim).
fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    (0..shape.len()).map(|d| shape[d + 1..].iter().product()).collect()
}

/// The row-major strides as i64, or an `Err` if the dense tensor has more than `i64::MAX`
/// elements (a linear position would not fit).
fn linear_strides(op: &'static str, shape: &[usize]) -> Result<Vec<i64>> {
    shape.iter().try_fold(1i64, |acc, &d| acc.checked_mul(d as i64)).ok_or_else(|| Error::Overflow {
        op,
        what: format!("dense_shape {shape:?}: its element count does not fit in i64"),
    })?;
    Ok(row_major_strides(shape).into_iter().map(|s| s as i64).collect())
}

/// The concrete value of `t`, or an `Err` that says `op` runs eagerly only.
fn concrete<'a>(op: &'static str, t: &'a Tensor) -> Result<&'a kiln_ir::Array> {
    t.array().ok_or_else(|| needs_values(op))
}

fn needs_values(op: &'static str) -> Error {
    Error::invalid(
        op,
        "the result's number of entries depends on the indices' values, which a traced function does not know: run it eagerly (outside kiln::function)",
    )
}
