//! Optimizers (Keras 3's update rules, step for step) whose state lives in Variables, so
//! `apply_gradients` works eagerly and inside a traced training step alike.
//!
//! Slot Variables (momentums, velocities, ...) are created lazily, in [`crate::init_scope`],
//! the first time a variable is updated; each optimizer counts its steps in a non-trainable
//! `i64` Variable (`iterations`), incremented once per `apply_gradients` call. Learning rates
//! are constants or [`schedule`]s: closures of that step.
//!
//! ```
//! use kiln::optim::{Optimizer, SGD};
//! use kiln::{Tensor, Variable};
//! let w = Variable::new(Tensor::new(&[1.0f32, 2.0]));
//! let opt = SGD::new(0.1);
//! opt.apply_gradients(&[(Tensor::new(&[1.0f32, -1.0]), &w)]).unwrap();
//! assert_eq!(w.read().to_vec::<f32>().unwrap(), vec![0.9, 2.1]);
//! assert_eq!(opt.iterations().read().to_scalar::<i64>().unwrap(), 1);
//! ```

mod adam;
mod nadam;
mod rmsprop;
pub mod schedule;
mod sgd;
mod slots;

pub use adam::Adam;
pub use nadam::Nadam;
pub use rmsprop::RMSprop;
pub use schedule::LearningRate;
pub use sgd::SGD;

use crate::{Error, Result, Tensor, Variable};

/// Updates Variables from their gradients. State (slots, the step counter) lives in
/// Variables, so `&self` suffices and the update traces into a compiled step.
pub trait Optimizer: Send + Sync + 'static {
    /// Applies one step: every `(gradient, variable)` pair is updated, then the step counter
    /// is incremented. A gradient whose dtype or shape differs from its variable's is an
    /// `Err`, detected before any variable is written.
    fn apply_gradients(&self, grads_and_vars: &[(Tensor, &Variable)]) -> Result<()>;

    /// The number of steps applied so far (`i64` scalar, non-trainable).
    fn iterations(&self) -> &Variable;

    /// The learning rate at the current step, as a scalar of `dtype`.
    fn learning_rate(&self, dtype: kiln_ir::DType) -> Result<Tensor>;

    /// The step counter and every slot Variable created so far.
    fn variables(&self) -> Vec<Variable> {
        vec![self.iterations().clone()]
    }
}

/// The step every plain optimizer takes: check the pairs, update each variable with the
/// learning rate at the current step, then count the step.
pub(crate) fn apply_each(
    opt: &dyn Optimizer,
    name: &str,
    grads_and_vars: &[(Tensor, &Variable)],
    update: impl Fn(&Tensor, &Variable, &Tensor) -> Result<()>,
) -> Result<()> {
    check_pairs(name, grads_and_vars)?;
    for (g, var) in grads_and_vars {
        update(g, var, &opt.learning_rate(var.dtype())?)?;
    }
    opt.iterations().assign_add(&Tensor::scalar(1i64))
}

/// The checks shared by every optimizer: gradients match their variables.
pub(crate) fn check_pairs(optimizer: &str, grads_and_vars: &[(Tensor, &Variable)]) -> Result<()> {
    for (g, v) in grads_and_vars {
        if g.dtype() != v.dtype() || g.shape() != v.shape() {
            return Err(Error::invalid(
                "apply_gradients",
                format!(
                    "{optimizer}: the gradient for variable `{}` is {} but the variable is {}",
                    v.name(),
                    g.tensor_type(),
                    v.tensor_type()
                ),
            ));
        }
        if !v.dtype().is_float() {
            return Err(Error::invalid(
                "apply_gradients",
                format!("{optimizer}: variable `{}` is {}, not a float", v.name(), v.dtype()),
            ));
        }
    }
    Ok(())
}

/// A new `iterations` counter (created eagerly even when the optimizer is built in a trace).
pub(crate) fn new_iterations(name: &str) -> Variable {
    crate::init_scope(|| Variable::with_options(Tensor::scalar(0i64), &format!("{name}/iterations"), false))
}

/// `iterations + offset` as a float scalar of `dtype` (Keras's `local_step`).
pub(crate) fn step_as(iterations: &Variable, offset: f64, dtype: kiln_ir::DType) -> Result<Tensor> {
    iterations.read().try_cast(dtype)?.try_add(&scalar(dtype, offset)?)
}

/// A scalar of a float `dtype`.
pub(crate) fn scalar(dtype: kiln_ir::DType, v: f64) -> Result<Tensor> {
    Tensor::zeros(&[], dtype).try_scalar_like(v)
}
