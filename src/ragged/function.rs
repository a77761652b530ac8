//! A ragged tensor as an argument and a result of [`crate::function`]: it travels as its two
//! tensors, the flat values and the row splits (a ragged tensor of strings cannot: it is an
//! `Err` that says so). Inside the trace the splits are traced values, so ops whose result
//! shape depends on them are an `Err`; the fixed-shape ones trace and compile.

use super::{strings_not_traced, RaggedTensor, RaggedValues};
use crate::{Outputs, Result, Tensor, TraceFn};

impl<F, T> TraceFn<(RaggedTensor,)> for F
where
    F: Fn(&RaggedTensor) -> Result<T> + Send + Sync + 'static,
    T: Outputs,
{
    type Output = Result<T>;
    const ARITY: Option<usize> = Some(2);
    fn invoke(&self, args: &[Tensor]) -> Result<T> {
        self(&RaggedTensor::from_row_splits(args[0].clone(), &args[1])?)
    }
}

impl Outputs for RaggedTensor {
    type Value = RaggedTensor;
    fn flatten(self) -> Result<Vec<Tensor>> {
        match self.values {
            RaggedValues::Numeric(v) => Ok(vec![v, self.row_splits]),
            RaggedValues::Strings(_) => Err(strings_not_traced()),
        }
    }
    fn unflatten(mut t: Vec<Tensor>) -> RaggedTensor {
        let row_splits = t.pop().expect("a ragged result is two tensors");
        let values = RaggedValues::Numeric(t.pop().expect("a ragged result is two tensors"));
        // The splits were checked when the traced function built the result.
        let host = row_splits.to_vec::<i64>().ok().map(Into::into);
        RaggedTensor { values, row_splits, host }
    }
}
