//! Set operations along the last axis (TF's `tf.sets`): each row `[..., :]` of an integer
//! tensor, or each group of a [`SparseTensor`] sharing all but its last index, is a set of
//! values; `intersection`, `union` and `difference` combine the rows of `a` and `b` pairwise
//! and return a `SparseTensor` laid out as TF's: row `r`'s result, sorted ascending, at
//! indices `[...r, 0..len]`, dense shape `[...leading dims, longest result]`. `size` counts
//! each row's distinct values.
//!
//! These are host ops: they read the values, so inside a traced function they are an `Err`.
//! The set algorithm is written over rows of any `Ord + Clone` element ([`SetRows`]); string
//! sets ([`strings`]) use it with a sparse result that holds strings ([`SparseStrings`]).
//!
//! ```
//! use kiln::Tensor;
//! let a = Tensor::new(&[[1i64, 2, 3]]);
//! let b = Tensor::new(&[[2i64, 3, 4]]);
//! let i = kiln::sets::intersection(&a, &b).unwrap();
//! assert_eq!(i.values().to_vec::<i64>().unwrap(), vec![2, 3]);
//! assert_eq!(i.dense_shape(), &[1, 2]);
//! ```

use std::collections::BTreeSet;

use kiln_ir::{DType, Element};

use crate::sparse::SparseTensor;
use crate::{Error, Result, Tensor};

/// Which set operation combines a row of `a` with the row of `b`.
///
/// ```
/// use kiln::sets::{SetOp, SetRows};
/// let a = SetRows { lead: vec![1], rows: vec![vec![1, 2]] };
/// let b = SetRows { lead: vec![1], rows: vec![vec![2, 3]] };
/// assert_eq!(a.combine(&b, SetOp::BMinusA).unwrap().rows, vec![vec![3]]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOp {
    /// Values in both.
    Intersection,
    /// Values in either.
    Union,
    /// Values of `a` not in `b`.
    AMinusB,
    /// Values of `b` not in `a`.
    BMinusA,
}

impl SetOp {
    fn name(self) -> &'static str {
        match self {
            SetOp::Intersection => "sets.intersection",
            SetOp::Union => "sets.union",
            SetOp::AMinusB | SetOp::BMinusA => "sets.difference",
        }
    }

    /// The sorted, distinct result of one pair of rows.
    fn apply<T: Ord + Clone>(self, a: &[T], b: &[T]) -> Vec<T> {
        let (a, b): (BTreeSet<&T>, BTreeSet<&T>) = (a.iter().collect(), b.iter().collect());
        let out: Vec<&T> = match self {
            SetOp::Intersection => a.intersection(&b).copied().collect(),
            SetOp::Union => a.union(&b).copied().collect(),
            SetOp::AMinusB => a.difference(&b).copied().collect(),
            SetOp::BMinusA => b.difference(&a).copied().collect(),
        };
        out.into_iter().cloned().collect()
    }
}

/// Sets as rows of elements: `rows[r]` is the set at leading position `r` (row-major over
/// `lead`, the dims before the last). The element-type-independent middle of every set op.
///
/// ```
/// use kiln::sets::{SetOp, SetRows};
/// let a = SetRows { lead: vec![2], rows: vec![vec!["x", "y"], vec!["z"]] };
/// let b = SetRows { lead: vec![2], rows: vec![vec!["y"], vec![]] };
/// let u = a.combine(&b, SetOp::AMinusB).unwrap();
/// assert_eq!(u.rows, vec![vec!["x"], vec!["z"]]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetRows<T> {
    /// The leading dims (all but the set axis).
    pub lead: Vec<usize>,
    /// One set per leading position, row-major.
    pub rows: Vec<Vec<T>>,
}

impl<T: Ord + Clone> SetRows<T> {
    /// Row-by-row `op` of `self` and `other`, whose leading dims must match (each result
    /// row sorted and distinct).
    ///
    /// ```
    /// use kiln::sets::{SetOp, SetRows};
    /// let a = SetRows { lead: vec![1], rows: vec![vec![3, 1, 3]] };
    /// let b = SetRows { lead: vec![1], rows: vec![vec![2]] };
    /// assert_eq!(a.combine(&b, SetOp::Union).unwrap().rows, vec![vec![1, 2, 3]]);
    /// ```
    pub fn combine(&self, other: &SetRows<T>, op: SetOp) -> Result<SetRows<T>> {
        if self.lead != other.lead {
            return Err(Error::invalid(
                op.name(),
                format!(
                    "a and b must have the same dims before the last (the set axis): {:?} vs {:?}",
                    self.lead, other.lead
                ),
            ));
        }
        let rows = self.rows.iter().zip(&other.rows).map(|(a, b)| op.apply(a, b)).collect();
        Ok(SetRows { lead: self.lead.clone(), rows })
    }

    /// The number of distinct elements of each row.
    ///
    /// ```
    /// use kiln::sets::SetRows;
    /// let a = SetRows { lead: vec![2], rows: vec![vec![1, 1, 2], vec![]] };
    /// assert_eq!(a.sizes(), vec![2, 0]);
    /// ```
    pub fn sizes(&self) -> Vec<i32> {
        self.rows.iter().map(|r| r.iter().collect::<BTreeSet<_>>().len() as i32).collect()
    }

    /// TF's sparse layout of the rows: the `[nnz, rank]` indices, the flat elements and the
    /// dense shape `[...lead, longest row]`.
    ///
    /// ```
    /// use kiln::sets::SetRows;
    /// let a = SetRows { lead: vec![2], rows: vec![vec![7], vec![8, 9]] };
    /// let (idx, flat, shape) = a.sparse_layout();
    /// assert_eq!((idx, flat, shape), (vec![0, 0, 1, 0, 1, 1], vec![7, 8, 9], vec![2, 2]));
    /// ```
    pub fn sparse_layout(&self) -> (Vec<i64>, Vec<T>, Vec<usize>) {
        let strides: Vec<usize> = (0..self.lead.len()).map(|d| self.lead[d + 1..].iter().product()).collect();
        let (mut idx, mut flat) = (Vec::new(), Vec::new());
        for (r, row) in self.rows.iter().enumerate() {
            for (k, v) in row.iter().enumerate() {
                idx.extend(strides.iter().zip(&self.lead).map(|(&s, &d)| ((r / s) % d) as i64));
                idx.push(k as i64);
                flat.push(v.clone());
            }
        }
        let longest = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        (idx, flat, [&self.lead[..], &[longest]].concat())
    }
}

/// What a set op accepts: a dense integer [`Tensor`] (each last-axis row a set) or a
/// [`SparseTensor`] (each group of entries sharing all but the last index a set; its
/// indices must be in canonical order, as TF's `validate_indices` requires).
///
/// ```
/// use kiln::{Tensor, sets::SetInput};
/// assert_eq!(Tensor::new(&[[1i32, 2]]).set_dtype(), kiln::DType::I32);
/// ```
pub trait SetInput {
    /// The dtype of the elements.
    fn set_dtype(&self) -> DType;
    /// The sets as rows of `T` (the dtype's element type).
    #[doc(hidden)]
    fn set_rows<T: Element + Ord>(&self, op: &'static str) -> Result<SetRows<T>>;
}

fn host_op(op: &'static str) -> Error {
    Error::invalid(
        op,
        "set operations are host ops that read the values; inside a traced function the values are unknown (call it eagerly, outside kiln::function)",
    )
}

fn check_rank(op: &'static str, shape: &[usize]) -> Result<()> {
    if shape.len() < 2 {
        return Err(Error::invalid(
            op,
            format!("needs rank >= 2 (sets along the last axis, as TF), got shape {shape:?}"),
        ));
    }
    Ok(())
}

impl SetInput for Tensor {
    fn set_dtype(&self) -> DType {
        self.dtype()
    }
    fn set_rows<T: Element + Ord>(&self, op: &'static str) -> Result<SetRows<T>> {
        check_rank(op, self.shape())?;
        if self.is_symbolic() {
            return Err(host_op(op));
        }
        let (lead, n) = self.shape().split_at(self.rank() - 1);
        let flat = self.to_vec::<T>()?;
        let rows = if n[0] == 0 {
            vec![Vec::new(); lead.iter().product()]
        } else {
            flat.chunks(n[0]).map(<[T]>::to_vec).collect()
        };
        Ok(SetRows { lead: lead.to_vec(), rows })
    }
}

impl SetInput for SparseTensor {
    fn set_dtype(&self) -> DType {
        self.dtype()
    }
    fn set_rows<T: Element + Ord>(&self, op: &'static str) -> Result<SetRows<T>> {
        check_rank(op, self.dense_shape())?;
        if self.indices().is_symbolic() || self.values().is_symbolic() {
            return Err(host_op(op));
        }
        self.check_canonical().map_err(|e| Error::invalid(op, e.to_string()))?;
        let lead = self.dense_shape()[..self.rank() - 1].to_vec();
        let mut rows = vec![Vec::new(); lead.iter().product()];
        let (idx, vals) = (self.indices().to_vec::<i64>()?, self.values().to_vec::<T>()?);
        for (entry, v) in idx.chunks(self.rank()).zip(vals) {
            let r = entry[..lead.len()].iter().zip(&lead).fold(0usize, |acc, (&i, &d)| acc * d + i as usize);
            rows[r].push(v);
        }
        Ok(SetRows { lead, rows })
    }
}

/// Runs `op` on the rows of `a` and `b`, for the integer dtypes.
fn set_operation(a: &impl SetInput, b: &impl SetInput, op: SetOp) -> Result<SparseTensor> {
    fn typed<T: Element + Ord>(a: &impl SetInput, b: &impl SetInput, op: SetOp) -> Result<SparseTensor> {
        let rows = a.set_rows::<T>(op.name())?.combine(&b.set_rows::<T>(op.name())?, op)?;
        let (idx, flat, shape) = rows.sparse_layout();
        let nnz = flat.len();
        let indices = Tensor::from_vec(idx, &[nnz, shape.len()])?;
        SparseTensor::new(indices, Tensor::from_vec(flat, &[nnz])?, &shape)
    }
    if a.set_dtype() != b.set_dtype() {
        return Err(Error::DTypeMismatch { op: op.name(), lhs: a.set_dtype(), rhs: b.set_dtype() });
    }
    match a.set_dtype() {
        DType::I32 => typed::<i32>(a, b, op),
        DType::I64 => typed::<i64>(a, b, op),
        dtype @ (DType::F32 | DType::F64 | DType::Bool) => Err(Error::UnsupportedDType {
            op: op.name(),
            dtype,
            expected: "I32 or I64 (TF's set ops take integers and strings)",
        }),
    }
}

/// The values in both `a` and `b`, row by row (TF's `sets.intersection`).
///
/// ```
/// use kiln::Tensor;
/// let i = kiln::sets::intersection(&Tensor::new(&[[1i64, 2, 3]]), &Tensor::new(&[[2i64, 3, 4]])).unwrap();
/// assert_eq!(i.indices().to_vec::<i64>().unwrap(), vec![0, 0, 0, 1]);
/// ```
pub fn intersection(a: &impl SetInput, b: &impl SetInput) -> Result<SparseTensor> {
    set_operation(a, b, SetOp::Intersection)
}

/// The values in `a` or `b`, row by row (TF's `sets.union`).
///
/// ```
/// use kiln::Tensor;
/// let u = kiln::sets::union(&Tensor::new(&[[1i32, 1], [5, 6]]), &Tensor::new(&[[2i32], [5]])).unwrap();
/// assert_eq!(u.values().to_vec::<i32>().unwrap(), vec![1, 2, 5, 6]);
/// assert_eq!(u.dense_shape(), &[2, 2]);
/// ```
pub fn union(a: &impl SetInput, b: &impl SetInput) -> Result<SparseTensor> {
    set_operation(a, b, SetOp::Union)
}

/// The values of `a` not in `b` (`aminusb`), or of `b` not in `a`, row by row (TF's
/// `sets.difference`).
///
/// ```
/// use kiln::Tensor;
/// let (a, b) = (Tensor::new(&[[1i64, 2, 3]]), Tensor::new(&[[2i64, 4]]));
/// assert_eq!(kiln::sets::difference(&a, &b, true).unwrap().values().to_vec::<i64>().unwrap(), vec![1, 3]);
/// assert_eq!(kiln::sets::difference(&a, &b, false).unwrap().values().to_vec::<i64>().unwrap(), vec![4]);
/// ```
pub fn difference(a: &impl SetInput, b: &impl SetInput, aminusb: bool) -> Result<SparseTensor> {
    set_operation(a, b, if aminusb { SetOp::AMinusB } else { SetOp::BMinusA })
}

/// The number of distinct values in each row, an I32 tensor of the leading dims (TF's
/// `sets.size`, which takes sparse input; a dense one is accepted too).
///
/// ```
/// use kiln::Tensor;
/// let n = kiln::sets::size(&Tensor::new(&[[1i64, 1, 2], [3, 4, 5]])).unwrap();
/// assert_eq!(n.to_vec::<i32>().unwrap(), vec![2, 3]);
/// ```
pub fn size(a: &impl SetInput) -> Result<Tensor> {
    let op = "sets.size";
    let rows = match a.set_dtype() {
        DType::I32 => a.set_rows::<i32>(op)?.sizes_with_lead(),
        DType::I64 => a.set_rows::<i64>(op)?.sizes_with_lead(),
        dtype @ (DType::F32 | DType::F64 | DType::Bool) => {
            return Err(Error::UnsupportedDType { op, dtype, expected: "I32 or I64" })
        }
    };
    Tensor::from_vec(rows.1, &rows.0)
}

impl<T: Ord + Clone> SetRows<T> {
    fn sizes_with_lead(&self) -> (Vec<usize>, Vec<i32>) {
        (self.lead.clone(), self.sizes())
    }
}

/// TF's `SparseTensor` of strings, as the string set ops return it: `indices` `[nnz, rank]`
/// i64, `values` the `nnz` strings, `dense_shape`.
#[derive(Clone, Debug)]
pub struct SparseStrings {
    pub indices: Tensor,
    pub values: crate::strings::StringTensor,
    pub dense_shape: Vec<usize>,
}

/// Set operations on the last-axis rows of dense string tensors (TF's `tf.sets` on strings;
/// rows compare bytewise, as TF's).
///
/// ```
/// use kiln::strings::StringTensor;
/// let a = StringTensor::new(&["a", "b", "c", "x", "x", "y"], &[2, 3]).unwrap();
/// let b = StringTensor::new(&["c", "b", "z", "y", "q", "q"], &[2, 3]).unwrap();
/// let i = kiln::sets::strings::intersection(&a, &b).unwrap();
/// assert_eq!(i.values.to_vec(), vec!["b", "c", "y"]);
/// assert_eq!(i.dense_shape, vec![2, 2]);
/// assert_eq!(kiln::sets::strings::size(&a).unwrap().to_vec::<i32>().unwrap(), vec![3, 2]);
/// ```
pub mod strings {
    use super::{check_rank, SetOp, SetRows, SparseStrings};
    use crate::strings::StringTensor;
    use crate::{Result, Tensor};

    fn rows(a: &StringTensor, op: &'static str) -> Result<SetRows<String>> {
        check_rank(op, a.shape())?;
        let (lead, n) = a.shape().split_at(a.shape().len() - 1);
        let rows = if n[0] == 0 {
            vec![Vec::new(); lead.iter().product()]
        } else {
            a.as_slice().chunks(n[0]).map(<[String]>::to_vec).collect()
        };
        Ok(SetRows { lead: lead.to_vec(), rows })
    }

    fn operation(a: &StringTensor, b: &StringTensor, op: SetOp) -> Result<SparseStrings> {
        let (idx, flat, shape) = rows(a, op.name())?.combine(&rows(b, op.name())?, op)?.sparse_layout();
        let nnz = flat.len();
        Ok(SparseStrings {
            indices: Tensor::from_vec(idx, &[nnz, shape.len()])?,
            values: StringTensor::from_vec(flat, &[nnz])?,
            dense_shape: shape,
        })
    }

    /// The strings in both rows (TF's `sets.intersection`).
    pub fn intersection(a: &StringTensor, b: &StringTensor) -> Result<SparseStrings> {
        operation(a, b, SetOp::Intersection)
    }

    /// The strings in either row (TF's `sets.union`).
    pub fn union(a: &StringTensor, b: &StringTensor) -> Result<SparseStrings> {
        operation(a, b, SetOp::Union)
    }

    /// The strings of `a`'s row not in `b`'s (`aminusb`), or the reverse (TF's `sets.difference`).
    pub fn difference(a: &StringTensor, b: &StringTensor, aminusb: bool) -> Result<SparseStrings> {
        operation(a, b, if aminusb { SetOp::AMinusB } else { SetOp::BMinusA })
    }

    /// The number of distinct strings in each row, I32 over the leading dims (TF's `sets.size`).
    pub fn size(a: &StringTensor) -> Result<Tensor> {
        let (lead, sizes) = rows(a, "sets.size")?.sizes_with_lead();
        Tensor::from_vec(sizes, &lead)
    }
}
