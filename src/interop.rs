//! Conversions to and from `ndarray::ArrayD` (cargo feature `ndarray`).

use ndarray::{ArrayD, IxDyn};

use crate::{Element, Result, Tensor};

impl Tensor {
    /// Copies an `ndarray` array (any layout) into a tensor.
    ///
    /// ```
    /// let a = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 2]), vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    /// let t = kiln::Tensor::from_ndarray(&a);
    /// assert_eq!(t.shape(), &[2, 2]);
    /// assert_eq!(t.to_ndarray::<f32>().unwrap(), a);
    /// ```
    pub fn from_ndarray<T: Element>(a: &ArrayD<T>) -> Tensor {
        let data: Vec<T> = a.iter().copied().collect();
        Tensor::from_vec(data, a.shape()).expect("an ndarray's elements fit its shape")
    }

    /// Copies the tensor into an `ndarray` array; `Err` if `T` is not its dtype or it is symbolic.
    pub fn to_ndarray<T: Element>(&self) -> Result<ArrayD<T>> {
        let v = self.to_vec::<T>()?;
        Ok(ArrayD::from_shape_vec(IxDyn(self.shape()), v).expect("a tensor's elements fit its shape"))
    }
}

impl<T: Element> From<&ArrayD<T>> for Tensor {
    fn from(a: &ArrayD<T>) -> Tensor {
        Tensor::from_ndarray(a)
    }
}
