//! Ragged tensors (TF's `tf.RaggedTensor`): rows of different lengths, stored as one flat
//! tensor of `values` (`[nvalues, ...inner]`) and `row_splits` (`[nrows + 1]`, i64: row `i`
//! is `values[row_splits[i]..row_splits[i + 1]]`). One ragged dimension (the second); the
//! flat values may have uniform inner dims, and may be numbers (a [`Tensor`]) or strings
//! (a [`StringTensor`], what [`StringTensor::split`] returns).
//!
//! Every numeric op is a composite of dense kiln ops (`gather`, `scatter_add`, `select`,
//! reductions), so it runs eagerly, traces inside [`crate::function`], compiles, and carries
//! gradients to the flat values. Ops whose result *shape* depends on the row splits' values
//! (`to_tensor`, `gather`, `from_tensor` with padding, `bounding_shape`) need splits known
//! on the host: built from host data, which a traced function embeds as constants. When the
//! splits are a traced argument they are an `Err` that says so (`to_tensor_with_width` and
//! the reductions still trace). docs/DATA.md describes the layout and coverage.
//!
//! ```
//! use kiln::Tensor;
//! use kiln::ragged::RaggedTensor;
//! let r = RaggedTensor::from_row_lengths(Tensor::new(&[1.0f32, 2.0, 3.0, 4.0, 5.0]), &[2, 0, 3]).unwrap();
//! assert_eq!(r.sum_rows().unwrap().to_vec::<f32>().unwrap(), vec![3.0, 0.0, 12.0]);
//! assert_eq!(r.to_tensor(0.0).unwrap().shape(), &[3, 3]);
//! ```

mod combine;
mod convert;
mod elementwise;
mod function;
mod reduce;

use std::sync::Arc;

use crate::strings::StringTensor;
use crate::{DType, Error, Result, Tensor};

/// The flat values of a [`RaggedTensor`]: numbers or strings.
///
/// ```
/// use kiln::ragged::{RaggedTensor, RaggedValues};
/// let r = RaggedTensor::from_nested(&[vec![1i64], vec![2, 3]]).unwrap();
/// assert!(matches!(r.flat_values(), RaggedValues::Numeric(_)));
/// ```
#[derive(Clone, Debug)]
pub enum RaggedValues {
    /// A numeric tensor `[nvalues, ...inner]` (traceable).
    Numeric(Tensor),
    /// Host-side strings `[nvalues]` (never traced: kiln's graphs have no string dtype).
    Strings(StringTensor),
}

impl RaggedValues {
    /// The number of flat values (the leading dim).
    ///
    /// ```
    /// use kiln::ragged::RaggedValues;
    /// assert_eq!(RaggedValues::Numeric(kiln::Tensor::new(&[1.0f32, 2.0])).len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        match self {
            RaggedValues::Numeric(t) => t.shape().first().copied().unwrap_or(0),
            RaggedValues::Strings(s) => s.shape().first().copied().unwrap_or(0),
        }
    }

    /// Whether there are no flat values.
    ///
    /// ```
    /// use kiln::ragged::RaggedValues;
    /// assert!(RaggedValues::Numeric(kiln::Tensor::zeros(&[0], kiln::DType::F32)).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn rank(&self) -> usize {
        match self {
            RaggedValues::Numeric(t) => t.rank(),
            RaggedValues::Strings(s) => s.shape().len(),
        }
    }
}

/// A tensor `[nrows, None, ...inner]` whose second dim varies by row (TF's
/// `tf.RaggedTensor` with one ragged dimension): flat values plus i64 row splits.
///
/// ```
/// use kiln::Tensor;
/// use kiln::ragged::RaggedTensor;
/// let r = RaggedTensor::from_nested(&[vec![1.0f32, 2.0], vec![], vec![3.0]]).unwrap();
/// assert_eq!(r.nrows(), 3);
/// assert_eq!(r.row_splits().to_vec::<i64>().unwrap(), vec![0, 2, 2, 3]);
/// ```
#[derive(Clone, Debug)]
pub struct RaggedTensor {
    values: RaggedValues,
    row_splits: Tensor,
    /// The splits' values when known on the host (everything but a traced argument).
    host: Option<Arc<[i64]>>,
}

impl RaggedTensor {
    /// From flat values and row splits `[nrows + 1]` (any integer dtype; kept as i64). Splits
    /// known on the host are checked as TF checks them: they start at 0, never decrease and
    /// end at the number of values. Traced splits are checked for rank and dtype only.
    ///
    /// ```
    /// use kiln::Tensor;
    /// use kiln::ragged::RaggedTensor;
    /// let r = RaggedTensor::from_row_splits(Tensor::new(&[1i32, 2, 3]), &Tensor::new(&[0i64, 1, 3])).unwrap();
    /// assert_eq!(r.row_lengths().unwrap().to_vec::<i64>().unwrap(), vec![1, 2]);
    /// assert!(RaggedTensor::from_row_splits(Tensor::new(&[1i32, 2, 3]), &Tensor::new(&[0i64, 2])).is_err());
    /// ```
    pub fn from_row_splits(values: impl Into<RaggedValues>, row_splits: &Tensor) -> Result<RaggedTensor> {
        let op = "RaggedTensor::from_row_splits";
        let values = values.into();
        if values.rank() == 0 {
            return Err(Error::invalid(op, "values must have rank >= 1 ([nvalues, ...])"));
        }
        if row_splits.rank() != 1 || !row_splits.dtype().is_int() || row_splits.shape()[0] == 0 {
            return Err(Error::invalid(
                op,
                format!("row_splits must be integers [nrows + 1] (at least [0]), got {}", row_splits.tensor_type()),
            ));
        }
        let row_splits = row_splits.try_cast(DType::I64)?;
        let host = if row_splits.is_symbolic() {
            None
        } else {
            let s = row_splits.to_vec::<i64>()?;
            check_splits(op, &s, values.len())?;
            Some(Arc::from(s))
        };
        Ok(RaggedTensor { values, row_splits, host })
    }

    /// From flat values and one length per row (TF's `from_row_lengths`); lengths must be
    /// non-negative and add up to the number of values.
    ///
    /// ```
    /// use kiln::Tensor;
    /// use kiln::ragged::RaggedTensor;
    /// let r = RaggedTensor::from_row_lengths(Tensor::new(&[1.0f32, 2.0, 3.0]), &[2, 0, 1]).unwrap();
    /// assert_eq!(r.row_splits().to_vec::<i64>().unwrap(), vec![0, 2, 2, 3]);
    /// assert!(RaggedTensor::from_row_lengths(Tensor::new(&[1.0f32]), &[2, -1]).is_err());
    /// ```
    pub fn from_row_lengths(values: impl Into<RaggedValues>, row_lengths: &[i64]) -> Result<RaggedTensor> {
        if let Some(l) = row_lengths.iter().find(|&&l| l < 0) {
            return Err(Error::invalid(
                "RaggedTensor::from_row_lengths",
                format!("row lengths must be non-negative, got {l} in {row_lengths:?}"),
            ));
        }
        let splits = splits_of_lengths(row_lengths);
        let n = splits.len();
        Self::from_row_splits(values, &Tensor::from_vec(splits, &[n])?)
    }

    /// From nested rows of numbers (`tf.ragged.constant` for one ragged dim).
    ///
    /// ```
    /// use kiln::ragged::RaggedTensor;
    /// let r = RaggedTensor::from_nested(&[vec![1.0f64, 2.0], vec![], vec![3.0]]).unwrap();
    /// assert_eq!(r.to_nested::<f64>().unwrap(), vec![vec![1.0, 2.0], vec![], vec![3.0]]);
    /// ```
    pub fn from_nested<T: crate::Element>(rows: &[Vec<T>]) -> Result<RaggedTensor> {
        let flat: Vec<T> = rows.iter().flatten().copied().collect();
        let n = flat.len();
        let lengths: Vec<i64> = rows.iter().map(|r| r.len() as i64).collect();
        Self::from_row_lengths(Tensor::from_vec(flat, &[n])?, &lengths)
    }

    /// The flat values, numbers or strings.
    ///
    /// ```
    /// use kiln::ragged::{RaggedTensor, RaggedValues};
    /// let words = kiln::strings::StringTensor::new(&["a b"], &[1]).unwrap().split(" ").unwrap();
    /// assert!(matches!(words.flat_values(), RaggedValues::Strings(_)));
    /// ```
    pub fn flat_values(&self) -> &RaggedValues {
        &self.values
    }

    /// The flat numeric values `[nvalues, ...inner]`; an `Err` for a ragged tensor of strings.
    ///
    /// ```
    /// use kiln::ragged::RaggedTensor;
    /// let r = RaggedTensor::from_nested(&[vec![1i32], vec![2, 3]]).unwrap();
    /// assert_eq!(r.values().unwrap().to_vec::<i32>().unwrap(), vec![1, 2, 3]);
    /// ```
    pub fn values(&self) -> Result<&Tensor> {
        self.numeric("RaggedTensor::values")
    }

    /// The flat string values; an `Err` for a numeric ragged tensor.
    ///
    /// ```
    /// let t = kiln::strings::StringTensor::new(&["a b", "c"], &[2]).unwrap();
    /// let words = t.split(" ").unwrap();
    /// assert_eq!(words.string_values().unwrap().as_slice(), &["a", "b", "c"]);
    /// ```
    pub fn string_values(&self) -> Result<&StringTensor> {
        match &self.values {
            RaggedValues::Strings(s) => Ok(s),
            RaggedValues::Numeric(t) => Err(Error::invalid(
                "RaggedTensor::string_values",
                format!("the flat values are numbers ({}), not strings", t.tensor_type()),
            )),
        }
    }

    /// The row splits `[nrows + 1]`, i64.
    ///
    /// ```
    /// let r = kiln::ragged::RaggedTensor::from_nested(&[vec![1i32], vec![]]).unwrap();
    /// assert_eq!(r.row_splits().to_vec::<i64>().unwrap(), vec![0, 1, 1]);
    /// ```
    pub fn row_splits(&self) -> &Tensor {
        &self.row_splits
    }

    /// The number of rows (known when traced too).
    ///
    /// ```
    /// let r = kiln::ragged::RaggedTensor::from_nested(&[vec![1i32], vec![]]).unwrap();
    /// assert_eq!(r.nrows(), 2);
    /// ```
    pub fn nrows(&self) -> usize {
        self.row_splits.shape()[0] - 1
    }

    /// The number of flat values.
    ///
    /// ```
    /// let r = kiln::ragged::RaggedTensor::from_nested(&[vec![1i32], vec![2, 3]]).unwrap();
    /// assert_eq!(r.nvalues(), 3);
    /// ```
    pub fn nvalues(&self) -> usize {
        self.values.len()
    }

    /// Each row's length `[nrows]`, i64 (traces: a difference of the splits).
    ///
    /// ```
    /// let r = kiln::ragged::RaggedTensor::from_nested(&[vec![1i32], vec![], vec![2, 3]]).unwrap();
    /// assert_eq!(r.row_lengths().unwrap().to_vec::<i64>().unwrap(), vec![1, 0, 2]);
    /// ```
    pub fn row_lengths(&self) -> Result<Tensor> {
        let n = self.row_splits.shape()[0] as isize;
        let hi = self.row_splits.try_slice(&[(1..n).into()])?;
        let lo = self.row_splits.try_slice(&[(0..n - 1).into()])?;
        hi.try_sub(&lo)
    }

    /// The row splits' values on the host; an `Err` naming `op` when they are traced.
    pub(crate) fn host_splits(&self, op: &'static str) -> Result<&[i64]> {
        self.host.as_deref().ok_or_else(|| {
            Error::invalid(
                op,
                "the result's shape depends on the row splits' values, which a traced function does not know \
                 (the splits are a traced argument); build the ragged tensor from host splits, or use an op \
                 with a fixed shape (to_tensor_with_width, the *_rows reductions)",
            )
        })
    }

    /// `[nrows, max row length, ...inner]` (TF's `bounding_shape`); needs host splits.
    ///
    /// ```
    /// let r = kiln::ragged::RaggedTensor::from_nested(&[vec![1i32], vec![], vec![2, 3]]).unwrap();
    /// assert_eq!(r.bounding_shape().unwrap(), vec![3, 2]);
    /// ```
    pub fn bounding_shape(&self) -> Result<Vec<usize>> {
        let s = self.host_splits("RaggedTensor::bounding_shape")?;
        let width = s.windows(2).map(|w| (w[1] - w[0]) as usize).max().unwrap_or(0);
        let inner = match &self.values {
            RaggedValues::Numeric(t) => t.shape()[1..].to_vec(),
            RaggedValues::Strings(st) => st.shape()[1..].to_vec(),
        };
        Ok([vec![self.nrows(), width], inner].concat())
    }

    /// The rows as nested vectors (eager; one-dimensional flat values).
    ///
    /// ```
    /// let r = kiln::ragged::RaggedTensor::from_nested(&[vec![1i32], vec![], vec![2, 3]]).unwrap();
    /// assert_eq!(r.to_nested::<i32>().unwrap(), vec![vec![1], vec![], vec![2, 3]]);
    /// ```
    pub fn to_nested<T: crate::Element>(&self) -> Result<Vec<Vec<T>>> {
        let op = "RaggedTensor::to_nested";
        let v = self.numeric(op)?;
        if v.rank() != 1 {
            return Err(Error::invalid(op, format!("needs one-dimensional flat values, got {}", v.tensor_type())));
        }
        let flat = v.to_vec::<T>()?;
        Ok(self.host_splits(op)?.windows(2).map(|w| flat[w[0] as usize..w[1] as usize].to_vec()).collect())
    }

    /// The rows of a ragged tensor of strings as nested vectors.
    ///
    /// ```
    /// let words = kiln::strings::StringTensor::new(&["a b", "c"], &[2]).unwrap().split(" ").unwrap();
    /// assert_eq!(words.to_nested_strings().unwrap(), vec![vec!["a", "b"], vec!["c"]]);
    /// ```
    pub fn to_nested_strings(&self) -> Result<Vec<Vec<String>>> {
        let flat = self.string_values()?.as_slice();
        let s = self.host_splits("RaggedTensor::to_nested_strings")?;
        Ok(s.windows(2).map(|w| flat[w[0] as usize..w[1] as usize].to_vec()).collect())
    }

    /// The numeric values, or an `Err` naming `op` for strings.
    pub(crate) fn numeric(&self, op: &'static str) -> Result<&Tensor> {
        match &self.values {
            RaggedValues::Numeric(t) => Ok(t),
            RaggedValues::Strings(_) => Err(Error::invalid(
                op,
                "the flat values are strings; this op needs numbers (map them with kiln::strings first, \
                 e.g. StringLookup or to_number)",
            )),
        }
    }

    /// The same row splits around new flat values (whose leading dim must match).
    pub(crate) fn with_values(&self, op: &'static str, values: RaggedValues) -> Result<RaggedTensor> {
        if values.len() != self.nvalues() || values.rank() == 0 {
            return Err(Error::invalid(
                op,
                format!("the new flat values must keep the leading dim {}, got {}", self.nvalues(), values.len()),
            ));
        }
        Ok(RaggedTensor { values, row_splits: self.row_splits.clone(), host: self.host.clone() })
    }

    /// Row id and column of every flat value, `[nvalues]` i64 each: from the host splits, or
    /// (traced splits) by comparing every value index with every row end.
    pub(crate) fn positions(&self) -> Result<(Tensor, Tensor)> {
        let n = self.nvalues();
        if let Some(s) = &self.host {
            let mut rows = Vec::with_capacity(n);
            let mut cols = Vec::with_capacity(n);
            for (r, w) in s.windows(2).enumerate() {
                rows.extend(std::iter::repeat_n(r as i64, (w[1] - w[0]) as usize));
                cols.extend(0..w[1] - w[0]);
            }
            return Ok((Tensor::from_vec(rows, &[n])?, Tensor::from_vec(cols, &[n])?));
        }
        let nrows = self.nrows() as isize;
        let index = Tensor::try_arange(0.0, n as f64, 1.0, DType::I64)?;
        let ends = self.row_splits.try_slice(&[(1..nrows + 1).into()])?.try_reshape([1, nrows as i64])?;
        let row =
            ends.try_less_equal(&index.try_reshape([n as i64, 1])?)?.try_cast(DType::I64)?.try_sum(&[1], false)?;
        let start = self.row_splits.try_gather(&row, 0)?;
        Ok((row.clone(), index.try_sub(&start)?))
    }

    /// The numeric values and row splits, to pass to a [`crate::function`] whose closure takes
    /// a `&RaggedTensor` (it receives them as two arguments); an `Err` for strings, which
    /// cannot be traced.
    ///
    /// ```
    /// use kiln::ragged::RaggedTensor;
    /// let f = kiln::function(|r: &RaggedTensor| r.sum_rows());
    /// let r = RaggedTensor::from_nested(&[vec![1.0f32, 2.0], vec![3.0]]).unwrap();
    /// assert_eq!(f.call(r.as_args().unwrap()).unwrap().to_vec::<f32>().unwrap(), vec![3.0, 3.0]);
    /// ```
    pub fn as_args(&self) -> Result<Vec<Tensor>> {
        let v = match &self.values {
            RaggedValues::Numeric(t) => t.clone(),
            RaggedValues::Strings(_) => return Err(strings_not_traced()),
        };
        Ok(vec![v, self.row_splits.clone()])
    }
}

/// The error for strings where a traced value is needed.
pub(crate) fn strings_not_traced() -> Error {
    Error::invalid(
        "kiln::function",
        "a ragged tensor of strings cannot be traced (kiln's graphs have no string dtype): map the strings \
         to numbers on the host first (kiln::strings::StringLookup, to_number, to_hash_bucket_fast)",
    )
}

impl From<Tensor> for RaggedValues {
    fn from(t: Tensor) -> RaggedValues {
        RaggedValues::Numeric(t)
    }
}

impl From<StringTensor> for RaggedValues {
    fn from(s: StringTensor) -> RaggedValues {
        RaggedValues::Strings(s)
    }
}

/// Splits `[0, l0, l0 + l1, ...]` of non-negative lengths.
pub(crate) fn splits_of_lengths(lengths: &[i64]) -> Vec<i64> {
    std::iter::once(0).chain(lengths.iter().scan(0, |acc, &l| Some(*acc + l).inspect(|&v| *acc = v))).collect()
}

/// TF's checks of row splits against `nvalues` values.
fn check_splits(op: &'static str, s: &[i64], nvalues: usize) -> Result<()> {
    if s[0] != 0 {
        return Err(Error::invalid(op, format!("row_splits must start at 0, got {s:?}")));
    }
    if let Some(w) = s.windows(2).find(|w| w[1] < w[0]) {
        return Err(Error::invalid(op, format!("row_splits must not decrease, got {} after {} in {s:?}", w[1], w[0])));
    }
    let last = *s.last().expect("non-empty");
    if last != nvalues as i64 {
        return Err(Error::invalid(
            op,
            format!("row_splits must end at the number of values {nvalues}, got {last} in {s:?}"),
        ));
    }
    Ok(())
}

impl std::fmt::Display for RaggedTensor {
    /// `<RaggedTensor [[1, 2], [], [3]]>` as TF prints it (host splits), else the parts.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: Option<Vec<String>> = self.host.as_ref().and_then(|s| {
            let items: Vec<String> = match &self.values {
                RaggedValues::Strings(st) => st.as_slice().iter().map(|x| format!("{x:?}")).collect(),
                RaggedValues::Numeric(t) if t.rank() == 1 && !t.is_symbolic() => {
                    t.try_cast(DType::F64).ok()?.to_vec::<f64>().ok()?.iter().map(|x| format!("{x}")).collect()
                }
                RaggedValues::Numeric(_) => return None,
            };
            Some(s.windows(2).map(|w| format!("[{}]", items[w[0] as usize..w[1] as usize].join(", "))).collect())
        });
        match rows {
            Some(r) => write!(f, "<RaggedTensor [{}]>", r.join(", ")),
            None => write!(f, "<RaggedTensor values={:?} row_splits={}>", self.values, self.row_splits),
        }
    }
}
