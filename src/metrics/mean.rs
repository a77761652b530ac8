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
        let v = values.try_cast(kiln_ir::DType::F32)?;
        self.total.assign_add(&v.sum_all())?;
        self.count.assign_add(&Tensor::scalar(v.numel() as f32))
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
