//! Sparse × dense matrix product as a composite: gather the dense rows each entry reads,
//! scale them by the entry's value, and add them into the output rows (`scatter_add`). Its
//! gradients (in the values and in the dense operand) are those of `gather`, `mul` and
//! `scatter_add`.

use kiln_ir::Op;

use super::SparseTensor;
use crate::context::apply;
use crate::{Error, Result, Tensor};

/// `a @ b` for a sparse `[m, k]` `a` and a dense `[k, n]` `b`, a dense `[m, n]` result (TF's
/// `sparse.sparse_dense_matmul`). Repeated indices in `a` add up; the order of `a`'s entries
/// does not matter. Traces, compiles and differentiates in `a`'s values and in `b`.
///
/// ```
/// use kiln::Tensor;
/// use kiln::sparse::SparseTensor;
/// let s = SparseTensor::new(Tensor::new(&[[0i64, 1], [1, 0]]), Tensor::new(&[3.0f32, 4.0]), &[2, 3]).unwrap();
/// let d = Tensor::new(&[[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]]);
/// let p = kiln::sparse::matmul(&s, &d).unwrap();
/// assert_eq!(p.to_vec::<f32>().unwrap(), vec![9.0, 12.0, 4.0, 8.0]);
/// ```
pub fn matmul(a: &SparseTensor, b: &Tensor) -> Result<Tensor> {
    matmul_with(a, b, false, false)
}

/// [`matmul`] with TF's `adjoint_a` and `adjoint_b`: the product of `a` transposed (when
/// `adjoint_a`) and `b` transposed (when `adjoint_b`). Transposing `a` swaps its index
/// columns (no sort: the product does not depend on the entries' order). kiln's dtypes are
/// real, so the adjoint is the transpose. Traces, compiles and differentiates.
///
/// ```
/// use kiln::Tensor;
/// use kiln::sparse::SparseTensor;
/// let s = SparseTensor::new(Tensor::new(&[[0i64, 1]]), Tensor::new(&[2.0f32]), &[1, 2]).unwrap();
/// let d = Tensor::new(&[[1.0f32, 3.0]]);
/// let p = kiln::sparse::matmul_with(&s, &d, true, false).unwrap(); // s^T @ d: [2, 2]
/// assert_eq!(p.to_vec::<f32>().unwrap(), vec![0.0, 0.0, 2.0, 6.0]);
/// ```
pub fn matmul_with(a: &SparseTensor, b: &Tensor, adjoint_a: bool, adjoint_b: bool) -> Result<Tensor> {
    let op = "sparse.matmul";
    let b = if adjoint_b && b.rank() == 2 { b.try_transpose(&[1, 0])? } else { b.clone() };
    let b = &b;
    let (m, k) = match a.dense_shape[..] {
        [m, k] if !adjoint_a => (m, k),
        [k, m] => (m, k),
        _ => (0, usize::MAX),
    };
    if b.rank() != 2 || k != b.shape()[0] {
        return Err(Error::invalid(
            op,
            format!(
                "needs a sparse [m, k] and a dense [k, n] (adjoint_a = {adjoint_a}, adjoint_b = {adjoint_b}), got sparse {:?} and dense {}",
                a.dense_shape,
                b.tensor_type()
            ),
        ));
    }
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op, lhs: a.dtype(), rhs: b.dtype() });
    }
    let (rows, cols) = (a.index_column(0)?, a.index_column(1)?);
    let (rows, cols) = if adjoint_a { (cols, rows) } else { (rows, cols) };
    let scaled = b.try_gather(&cols, 0)?.try_mul(&a.values.try_expand_dims(1)?)?;
    let shape = [m, b.shape()[1]];
    apply(Op::ScatterAdd { axis: 0, shape: shape[..].into() }, &[&scaled, &rows])
}
