//! `Mean`: the running mean of the values it is given (e.g. the loss).

use super::{divide_no_nan, state, Metric};
use crate::{Result, Tensor, Variable};

/// The running mean of every element passed to [`Mean::update_state`] (Keras `Mean`).
///
/// ```
/// use kiln::metrics::{Mean, Metric};
/// use kiln::Tensor;
/// let m = Mean::new("loss");
/// m.update_state(&Tensor::new(&[1.0f32, 2.0])).unwrap();
/// m.update_state(&Tensor::scalar(6.0f32)).unwrap();
/// assert_eq!(m.result().to_scalar::<f32>().unwrap(), 3.0);
/// ```
pub struct Mean {
    name: String,
    total: Variable,
    count: Variable,
}

impl Mean {
    pub fn new(name: &str) -> Mean {
        Mean {
            name: name.to_string(),
            total: state(&format!("{name}/total"), &[]),
            count: state(&format!("{name}/count"), &[]),
        }
    }

    /// Adds the values (any shape, any numeric dtype; accumulated in `f32`).
    pub fn update_state(&self, values: &Tensor) -> Result<()> {
        self.update_state_weighted(values, None)
    }

    /// Adds the values, each counted with its weight (Keras's `sample_weight`): a weight of
    /// lower rank first averages the values over the dims it lacks (Keras's
    /// `reduce_to_samplewise_values`), then broadcasts.
    ///
    /// ```
    /// use kiln::metrics::{Mean, Metric};
    /// use kiln::Tensor;
    /// let m = Mean::new("weighted");
    /// m.update_state_weighted(&Tensor::new(&[[1.0f32, 3.0], [10.0, 10.0]]), Some(&Tensor::new(&[3.0f32, 1.0]))).unwrap();
    /// assert_eq!(m.result().to_scalar::<f32>().unwrap(), 4.0); // (3·2 + 1·10) / 4
    /// ```
    pub fn update_state_weighted(&self, values: &Tensor, weights: Option<&Tensor>) -> Result<()> {
        let mut v = values.try_cast(kiln_ir::DType::F32)?;
        let w = match weights {
            Some(w) => {
                let w = crate::losses::squeeze_or_expand(w.try_cast(kiln_ir::DType::F32)?, &v);
                if w.rank() < v.rank() {
                    v = v.try_mean((w.rank()..v.rank()).collect::<Vec<_>>(), false)?;
                }
                w.try_broadcast_to(v.shape())?
            }
            None => Tensor::ones(v.shape(), kiln_ir::DType::F32),
        };
        self.total.assign_add(&v.try_mul(&w)?.sum_all())?;
        self.count.assign_add(&w.sum_all())
    }
}

impl Metric for Mean {
    fn result(&self) -> Tensor {
        divide_no_nan(&self.total.read(), &self.count.read()).expect("f32 scalars")
    }

    fn variables(&self) -> Vec<Variable> {
        vec![self.total.clone(), self.count.clone()]
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}
