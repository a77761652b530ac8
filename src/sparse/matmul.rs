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
    let op = "sparse.matmul";
    if a.rank() != 2 || b.rank() != 2 || a.dense_shape[1] != b.shape()[0] {
        return Err(Error::invalid(
            op,
            format!(
                "needs a sparse [m, k] and a dense [k, n], got sparse {:?} and dense {}",
                a.dense_shape,
                b.tensor_type()
            ),
        ));
    }
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op, lhs: a.dtype(), rhs: b.dtype() });
    }
    let (rows, cols) = (a.index_column(0)?, a.index_column(1)?);
    let scaled = b.try_gather(&cols, 0)?.try_mul(&a.values.try_expand_dims(1)?)?;
    let shape = [a.dense_shape[0], b.shape()[1]];
    apply(Op::ScatterAdd { axis: 0, shape: shape[..].into() }, &[&scaled, &rows])
}
