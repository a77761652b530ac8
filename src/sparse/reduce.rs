//! Sums over dims of a sparse tensor, giving a dense tensor (TF's `sparse.reduce_sum`).

use super::SparseTensor;
use crate::ops::args::axes_of;
use crate::{IntList, Result, Tensor};

impl SparseTensor {
    /// The sum over `axes` (negative from the end) as a dense tensor: each value is added
    /// into the position its index has in the kept dims (TF's `sparse.reduce_sum`; repeated
    /// indices add up). `keepdims` keeps the summed dims as size 1. Traces and differentiates
    /// in the values.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[0i64, 1], [1, 0], [1, 2]]), Tensor::new(&[1.0f32, 2.0, 3.0]), &[2, 3]).unwrap();
    /// assert_eq!(s.reduce_sum(&[1], false).unwrap().to_vec::<f32>().unwrap(), vec![1.0, 5.0]);
    /// assert_eq!(s.reduce_sum(&[0], true).unwrap().shape(), &[1, 3]);
    /// assert_eq!(s.reduce_sum(&[0, 1], false).unwrap().to_scalar::<f32>().unwrap(), 6.0);
    /// ```
    pub fn reduce_sum(&self, axes: impl IntList, keepdims: bool) -> Result<Tensor> {
        let axes = axes_of("sparse.reduce_sum", &axes, self.rank())?;
        let kept: Vec<usize> = (0..self.rank()).filter(|d| !axes.contains(d)).collect();
        let kept_shape: Vec<usize> = kept.iter().map(|&d| self.dense_shape[d]).collect();
        let summed = if kept.is_empty() {
            self.values.try_sum(&[0], false)?
        } else {
            let cols = Tensor::from_vec(kept.iter().map(|&d| d as i64).collect(), &[kept.len()])?;
            Tensor::try_zeros(&kept_shape, self.dtype())?
                .try_tensor_scatter_nd_add(&self.indices.try_gather(&cols, 1)?, &self.values)?
        };
        if !keepdims {
            return Ok(summed);
        }
        let shape: Vec<usize> =
            (0..self.rank()).map(|d| if axes.contains(&d) { 1 } else { self.dense_shape[d] }).collect();
        summed.try_reshape(shape)
    }

    /// The sum of every entry, a scalar.
    ///
    /// ```
    /// # use kiln::{Tensor, sparse::SparseTensor};
    /// let s = SparseTensor::new(Tensor::new(&[[0i64], [0]]), Tensor::new(&[1i64, 2]), &[4]).unwrap();
    /// assert_eq!(s.reduce_sum_all().unwrap().to_scalar::<i64>().unwrap(), 3);
    /// ```
    pub fn reduce_sum_all(&self) -> Result<Tensor> {
        self.values.try_sum(&[0], false)
    }
}
