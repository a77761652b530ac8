//! Reductions over the ragged axis, one result per row, with TF's values for empty rows:
//! `sum_rows` 0, `mean_rows` NaN, `max_rows` the dtype's lowest value and `min_rows` its
//! highest (what `tf.math.unsorted_segment_max`/`_min` give an empty segment).

use kiln_ir::Op;

use super::RaggedTensor;
use crate::context::apply;
use crate::{DType, Error, Result, Tensor};

impl RaggedTensor {
    /// The sum of each row, `[nrows, ...inner]` (TF's `reduce_sum(r, axis=1)`): one
    /// `scatter_add` of the flat values by row; traces and differentiates.
    ///
    /// ```
    /// let r = kiln::ragged::RaggedTensor::from_nested(&[vec![1.0f32, 2.0], vec![], vec![3.0]]).unwrap();
    /// assert_eq!(r.sum_rows().unwrap().to_vec::<f32>().unwrap(), vec![3.0, 0.0, 3.0]);
    /// ```
    pub fn sum_rows(&self) -> Result<Tensor> {
        let values = self.numeric("RaggedTensor::sum_rows")?;
        let (row, _) = self.positions()?;
        let shape = [&[self.nrows()][..], &values.shape()[1..]].concat();
        apply(Op::ScatterAdd { axis: 0, shape: shape.into() }, &[values, &row])
    }

    /// The mean of each row (NaN for an empty row, as TF); float values only.
    ///
    /// ```
    /// let r = kiln::ragged::RaggedTensor::from_nested(&[vec![1.0f32, 2.0], vec![], vec![3.0]]).unwrap();
    /// let m = r.mean_rows().unwrap().to_vec::<f32>().unwrap();
    /// assert_eq!((m[0], m[1].is_nan(), m[2]), (1.5, true, 3.0));
    /// ```
    pub fn mean_rows(&self) -> Result<Tensor> {
        let values = self.numeric("RaggedTensor::mean_rows")?;
        if !values.dtype().is_float() {
            return Err(Error::invalid(
                "RaggedTensor::mean_rows",
                format!("needs float values, got {} (cast them first)", values.tensor_type()),
            ));
        }
        let mut dims = vec![self.nrows() as i64];
        dims.extend(std::iter::repeat_n(1, values.rank() - 1));
        let count = self.row_lengths()?.try_cast(values.dtype())?.try_reshape(dims)?;
        self.sum_rows()?.try_div(&count)
    }

    /// The maximum of each row (the dtype's lowest value for an empty row, as TF).
    ///
    /// ```
    /// let r = kiln::ragged::RaggedTensor::from_nested(&[vec![1i32, 5], vec![], vec![3]]).unwrap();
    /// assert_eq!(r.max_rows().unwrap().to_vec::<i32>().unwrap(), vec![5, i32::MIN, 3]);
    /// ```
    pub fn max_rows(&self) -> Result<Tensor> {
        self.extreme_rows("RaggedTensor::max_rows", true)
    }

    /// The minimum of each row (the dtype's highest value for an empty row, as TF).
    ///
    /// ```
    /// let r = kiln::ragged::RaggedTensor::from_nested(&[vec![1.0f32, 5.0], vec![]]).unwrap();
    /// assert_eq!(r.min_rows().unwrap().to_vec::<f32>().unwrap(), vec![1.0, f32::MAX]);
    /// ```
    pub fn min_rows(&self) -> Result<Tensor> {
        self.extreme_rows("RaggedTensor::min_rows", false)
    }

    /// Max or min over the padded dense form (padded with the reduction's identity). Its
    /// width is the longest row, or every value when the splits are traced.
    fn extreme_rows(&self, op: &'static str, max: bool) -> Result<Tensor> {
        let values = self.numeric(op)?;
        let pad = match (values.dtype(), max) {
            (DType::F32, true) => Tensor::scalar(f32::MIN),
            (DType::F32, false) => Tensor::scalar(f32::MAX),
            (DType::F64, true) => Tensor::scalar(f64::MIN),
            (DType::F64, false) => Tensor::scalar(f64::MAX),
            (DType::I32, true) => Tensor::scalar(i32::MIN),
            (DType::I32, false) => Tensor::scalar(i32::MAX),
            (DType::I64, true) => Tensor::scalar(i64::MIN),
            (DType::I64, false) => Tensor::scalar(i64::MAX),
            (DType::Bool, _) => {
                return Err(Error::invalid(op, format!("needs numeric values, got {}", values.tensor_type())))
            }
        };
        let width = match self.host {
            Some(_) => self.bounding_shape()?[1],
            None => self.nvalues(),
        };
        let dense = self.padded(&pad, width.max(1))?;
        if max {
            dense.try_max(&[1], false)
        } else {
            dense.try_min(&[1], false)
        }
    }
}
