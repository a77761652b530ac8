//! Elementwise ops on a ragged tensor are ops on its flat values, under the same row splits
//! (TF's `ragged.map_flat_values` and ragged arithmetic).

use super::{RaggedTensor, RaggedValues};
use crate::{Error, Result, Tensor};

macro_rules! ragged_binary {
    ($($name:ident $scalar:ident $try:ident $sym:literal;)*) => {
        impl RaggedTensor {
            $(
                #[doc = concat!("`self ", $sym, " other` elementwise, for two ragged tensors with the same row splits.")]
                ///
                /// ```
                /// let a = kiln::ragged::RaggedTensor::from_nested(&[vec![1.0f32, 2.0], vec![3.0]]).unwrap();
                #[doc = concat!("let c = a.", stringify!($name), "(&a).unwrap();")]
                /// assert_eq!(c.row_splits().to_vec::<i64>().unwrap(), vec![0, 2, 3]);
                /// ```
                pub fn $name(&self, other: &RaggedTensor) -> Result<RaggedTensor> {
                    self.zip_values(other, |a, b| a.$try(b))
                }

                #[doc = concat!("`self ", $sym, " s` for every flat value (`s` in the values' dtype).")]
                ///
                /// ```
                /// let a = kiln::ragged::RaggedTensor::from_nested(&[vec![4.0f32, 2.0], vec![]]).unwrap();
                #[doc = concat!("let c = a.", stringify!($scalar), "(2.0).unwrap();")]
                /// assert_eq!(c.nvalues(), 2);
                /// ```
                pub fn $scalar(&self, s: f64) -> Result<RaggedTensor> {
                    self.map_values(|v| v.$try(&v.try_scalar_like(s)?))
                }
            )*
        }
    };
}

ragged_binary! {
    add add_scalar try_add "+";
    sub sub_scalar try_sub "-";
    mul mul_scalar try_mul "*";
    div div_scalar try_div "/";
    maximum maximum_scalar try_maximum "max";
    minimum minimum_scalar try_minimum "min";
}

impl RaggedTensor {
    /// `f` applied to the flat numeric values, under the same row splits (TF's
    /// `ragged.map_flat_values`); `f` must keep the number of values. Traces and
    /// differentiates as `f` does.
    ///
    /// ```
    /// let r = kiln::ragged::RaggedTensor::from_nested(&[vec![1.0f32, 4.0], vec![9.0]]).unwrap();
    /// let s = r.map_values(|v| Ok(v.sqrt())).unwrap();
    /// assert_eq!(s.to_nested::<f32>().unwrap(), vec![vec![1.0, 2.0], vec![3.0]]);
    /// ```
    pub fn map_values(&self, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<RaggedTensor> {
        let op = "RaggedTensor::map_values";
        self.with_values(op, RaggedValues::Numeric(f(self.numeric(op)?)?))
    }

    /// `f` on the flat values of `self` and `other`, which must share row splits (compared
    /// by value when both are on the host, by shape when traced).
    ///
    /// ```
    /// let a = kiln::ragged::RaggedTensor::from_nested(&[vec![1.0f32], vec![2.0]]).unwrap();
    /// let b = kiln::ragged::RaggedTensor::from_nested(&[vec![1.0f32, 2.0], vec![]]).unwrap();
    /// assert!(a.zip_values(&b, |x, y| x.try_add(y)).is_err());
    /// ```
    pub fn zip_values(
        &self,
        other: &RaggedTensor,
        f: impl FnOnce(&Tensor, &Tensor) -> Result<Tensor>,
    ) -> Result<RaggedTensor> {
        let op = "RaggedTensor::zip_values";
        let same = match (&self.host, &other.host) {
            (Some(a), Some(b)) => a == b,
            _ => self.row_splits.shape() == other.row_splits.shape() && self.nvalues() == other.nvalues(),
        };
        if !same {
            return Err(Error::invalid(
                op,
                format!(
                    "the two ragged tensors must have the same row splits, got {} and {}",
                    describe_splits(self),
                    describe_splits(other)
                ),
            ));
        }
        let v = f(self.numeric(op)?, other.numeric(op)?)?;
        self.with_values(op, RaggedValues::Numeric(v))
    }
}

fn describe_splits(r: &RaggedTensor) -> String {
    match &r.host {
        Some(s) => format!("{s:?}"),
        None => format!("traced splits {}", r.row_splits.tensor_type()),
    }
}
