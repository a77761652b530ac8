//! Matrix multiplication.

use kiln_ir::Op;

use super::or_panic;
use crate::context::apply;
use crate::{Result, Tensor};

impl Tensor {
    /// `[..., m, k] @ [..., k, n] -> [..., m, n]`, batch dims broadcast (numpy `matmul`
    /// for rank ≥ 2). Computed by the `gemm` crate.
    ///
    /// ```
    /// use kiln::Tensor;
    /// let a = Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0]]);
    /// let i = Tensor::eye(2, kiln::DType::F32);
    /// assert_eq!(a.matmul(&i).to_vec::<f32>().unwrap(), a.to_vec::<f32>().unwrap());
    /// ```
    #[track_caller]
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        or_panic(self.try_matmul(other))
    }

    /// The fallible form of [`Tensor::matmul`].
    pub fn try_matmul(&self, other: &Tensor) -> Result<Tensor> {
        apply(Op::MatMul, &[self, other])
    }
}
