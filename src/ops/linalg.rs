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

/// `a @ b` with `a`'s last two axes transposed first when `ta`, and `b`'s when `tb`: what
/// the gradient of a product needs. Eagerly, one product that reads the operand transposed
/// (no transposed copy, as the executor runs a product of a `transpose` node); inside a
/// trace or under a recording tape, `t()` then `matmul`, which the trace or tape records.
pub(crate) fn matmul_t(a: &Tensor, ta: bool, b: &Tensor, tb: bool) -> Result<Tensor> {
    use crate::context::{is_recording, is_tracing};
    if !is_tracing() && !is_recording() && !a.is_symbolic() && !b.is_symbolic() {
        let product = crate::eager::matmul(a.try_array("matmul")?, ta, b.try_array("matmul")?, tb)?;
        return Ok(Tensor::from_array(product));
    }
    let t = |x: &Tensor, t: bool| if t { x.try_transpose(last_two_swapped(x.rank())) } else { Ok(x.clone()) };
    t(a, ta)?.try_matmul(&t(b, tb)?)
}

/// The permutation swapping the last two of `rank` axes (`rank` below 2: the identity, and
/// `matmul` then reports the rank).
fn last_two_swapped(rank: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..rank).collect();
    if rank >= 2 {
        p.swap(rank - 2, rank - 1);
    }
    p
}
