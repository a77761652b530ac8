//! A `SparseTensor` as an argument or result of `kiln::function`: it travels as three
//! tensors, `indices`, `values`, and an empty bool tensor of shape `[0, ...dense_shape]` whose
//! type carries the static dense shape, so a new dense shape (or nnz) is a new signature and
//! traces again, as a new dense shape does.

use kiln_ir::DType;

use super::SparseTensor;
use crate::function::{CallArgs, Outputs, TraceFn};
use crate::{Result, Tensor};

impl SparseTensor {
    /// The three tensors a traced function sees.
    fn flat(&self) -> Vec<Tensor> {
        let witness_shape: Vec<usize> = [&[0][..], &self.dense_shape].concat();
        vec![self.indices.clone(), self.values.clone(), Tensor::zeros(&witness_shape, DType::Bool)]
    }

    /// Rebuilds from [`SparseTensor::flat`]'s three tensors.
    fn unflat(t: &[Tensor]) -> SparseTensor {
        SparseTensor::from_parts(t[0].clone(), t[1].clone(), t[2].shape()[1..].to_vec())
    }
}

/// `f.call(&sparse)`.
impl CallArgs for &SparseTensor {
    fn into_tensors(self) -> Vec<Tensor> {
        self.flat()
    }
}

/// `f.call((&sparse, &dense))`.
impl CallArgs for (&SparseTensor, &Tensor) {
    fn into_tensors(self) -> Vec<Tensor> {
        let mut t = self.0.flat();
        t.push(self.1.clone());
        t
    }
}

/// `f.call((&a, &b))` for two sparse tensors.
impl CallArgs for (&SparseTensor, &SparseTensor) {
    fn into_tensors(self) -> Vec<Tensor> {
        [self.0.flat(), self.1.flat()].concat()
    }
}

impl<F, O> TraceFn<(SparseTensor,)> for F
where
    F: Fn(&SparseTensor) -> O + Send + Sync + 'static,
    O: Outputs,
{
    type Output = O;
    const ARITY: Option<usize> = Some(3);
    fn invoke(&self, args: &[Tensor]) -> O {
        self(&SparseTensor::unflat(args))
    }
}

impl<F, O> TraceFn<(SparseTensor, Tensor)> for F
where
    F: Fn(&SparseTensor, &Tensor) -> O + Send + Sync + 'static,
    O: Outputs,
{
    type Output = O;
    const ARITY: Option<usize> = Some(4);
    fn invoke(&self, args: &[Tensor]) -> O {
        self(&SparseTensor::unflat(args), &args[3])
    }
}

impl<F, O> TraceFn<(SparseTensor, SparseTensor)> for F
where
    F: Fn(&SparseTensor, &SparseTensor) -> O + Send + Sync + 'static,
    O: Outputs,
{
    type Output = O;
    const ARITY: Option<usize> = Some(6);
    fn invoke(&self, args: &[Tensor]) -> O {
        self(&SparseTensor::unflat(&args[..3]), &SparseTensor::unflat(&args[3..]))
    }
}

/// A traced closure may return a `SparseTensor` (or a `Result` of one).
impl Outputs for SparseTensor {
    type Value = SparseTensor;
    fn flatten(self) -> Result<Vec<Tensor>> {
        Ok(self.flat())
    }
    fn unflatten(t: Vec<Tensor>) -> SparseTensor {
        SparseTensor::unflat(&t)
    }
}
