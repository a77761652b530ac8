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

use std::sync::Mutex;

use slots::Slots;

use crate::{Error, Result, Tensor, Variable};

/// Updates Variables from their gradients (Keras 3's `BaseOptimizer`). State (slots, the
/// step counter) lives in Variables, so `&self` suffices and the update traces into a
/// compiled step.
///
/// An optimizer is its [`OptimizerBase`] (name, learning rate, step counter, slots) plus one
/// rule, [`Optimizer::update_step`]; `apply_gradients` and the rest come with the trait.
///
/// ```
/// use kiln::optim::{Optimizer, OptimizerBase};
/// use kiln::{Result, Tensor, Variable};
/// /// Sign descent: `w -= lr * sign(g)`.
/// struct SignSGD(OptimizerBase);
/// impl Optimizer for SignSGD {
///     fn base(&self) -> &OptimizerBase {
///         &self.0
///     }
///     fn update_step(&self, g: &Tensor, var: &Variable, lr: &Tensor) -> Result<()> {
///         var.assign_sub(&g.try_sign()?.try_mul(lr)?)
///     }
/// }
/// let w = Variable::new(Tensor::new(&[1.0f32, 2.0]));
/// let opt = SignSGD(OptimizerBase::new("SignSGD", 0.5, &[]));
/// opt.apply_gradients(&[(Tensor::new(&[3.0f32, -0.1]), &w)]).unwrap();
/// assert_eq!(w.read().to_vec::<f32>().unwrap(), vec![0.5, 2.5]);
/// ```
pub trait Optimizer: Send + Sync + 'static {
    /// The state every optimizer has.
    fn base(&self) -> &OptimizerBase;

    /// Updates one variable from its gradient, with the learning rate at this step as a
    /// scalar of the variable's dtype (Keras's `update_step`).
    fn update_step(&self, gradient: &Tensor, variable: &Variable, learning_rate: &Tensor) -> Result<()>;

    /// Runs once per step before any variable is updated, given the step's variables
    /// (Nadam advances its momentum schedule here). Does nothing by default.
    fn before_step(&self, _grads_and_vars: &[(Tensor, &Variable)]) -> Result<()> {
        Ok(())
    }

    /// Applies one step: every `(gradient, variable)` pair is updated, then the step counter
    /// is incremented. A gradient whose dtype or shape differs from its variable's is an
    /// `Err`, detected before any variable is written.
    fn apply_gradients(&self, grads_and_vars: &[(Tensor, &Variable)]) -> Result<()> {
        let base = self.base();
        check_pairs(&base.name, grads_and_vars)?;
        self.before_step(grads_and_vars)?;
        for (g, var) in grads_and_vars {
            self.update_step(g, var, &base.learning_rate(var.dtype())?)?;
        }
        base.iterations.assign_add(&Tensor::scalar(1i64))
    }

    /// TF's `optimizer.minimize(loss, var_list, tape)`: the gradients of `loss` on `tape`
    /// with respect to `var_list`, applied as one step; a variable the loss does not depend
    /// on is left alone.
    ///
    /// ```
    /// use kiln::optim::{Optimizer, SGD};
    /// use kiln::{GradientTape, Tensor, Variable};
    /// let (w, unused) = (Variable::new(Tensor::new(&[1.0f32, 2.0])), Variable::new(Tensor::scalar(5.0f32)));
    /// let tape = GradientTape::new();
    /// let loss = w.read().square().sum_all();
    /// SGD::new(0.25).minimize(&loss, &[w.clone(), unused.clone()], &tape).unwrap();
    /// assert_eq!(w.read().to_vec::<f32>().unwrap(), vec![0.5, 1.0]); // w - 0.25 * 2w
    /// assert_eq!(unused.read().to_scalar::<f32>().unwrap(), 5.0);
    /// ```
    fn minimize(&self, loss: &Tensor, var_list: &[Variable], tape: &crate::GradientTape) -> Result<()> {
        let grads = tape.gradient(loss, &var_list.iter().collect::<Vec<_>>())?;
        let pairs: Vec<(Tensor, &Variable)> =
            grads.into_iter().zip(var_list).filter_map(|(g, v)| g.map(|g| (g, v))).collect();
        self.apply_gradients(&pairs)
    }

    /// The number of steps applied so far (`i64` scalar, non-trainable).
    fn iterations(&self) -> &Variable {
        &self.base().iterations
    }

    /// The learning rate at the current step, as a scalar of `dtype`.
    fn learning_rate(&self, dtype: kiln_ir::DType) -> Result<Tensor> {
        self.base().learning_rate(dtype)
    }

    /// The step counter and every other Variable created so far (slots included).
    fn variables(&self) -> Vec<Variable> {
        self.base().variables()
    }

    /// The class name and config that rebuild this optimizer (its state is saved apart), for
    /// whole-model saving; built-ins implement it, by default it is an `Err`.
    fn get_config(&self) -> Result<crate::models::ObjectConfig> {
        Err(crate::models::no_config("optimizer", self.base().name(), "implement Optimizer::get_config"))
    }
}

/// What every optimizer holds: its name, learning rate, step counter, per-variable slots
/// and any other state Variable it adds.
pub struct OptimizerBase {
    name: String,
    lr: LearningRate,
    /// A constant rate lives in this `f64` Variable, so it can change between calls of a
    /// compiled step (Keras's `optimizer.learning_rate`, what `LearningRateScheduler` sets).
    lr_variable: Option<Variable>,
    iterations: Variable,
    slots: Slots,
    extra: Mutex<Vec<Variable>>,
}

impl OptimizerBase {
    /// The base of an optimizer called `name` (prefix of its Variables' names) with learning
    /// rate `lr` and the per-variable slots `slot_names` (`&["momentum", "velocity"]`).
    ///
    /// ```
    /// let base = kiln::optim::OptimizerBase::new("Mine", 0.1, &["momentum"]);
    /// assert_eq!(base.iterations().name(), "Mine/iterations");
    /// ```
    pub fn new(name: &str, lr: impl Into<LearningRate>, slot_names: &[&'static str]) -> OptimizerBase {
        let iterations =
            crate::init_scope(|| Variable::with_options(Tensor::scalar(0i64), &format!("{name}/iterations"), false));
        let lr = lr.into();
        let lr_variable = match &lr {
            LearningRate::Constant(v) => Some(crate::init_scope(|| {
                Variable::with_options(Tensor::scalar(*v), &format!("{name}/learning_rate"), false)
            })),
            LearningRate::Schedule(_) => None,
        };
        OptimizerBase {
            name: name.to_string(),
            lr,
            lr_variable,
            iterations,
            slots: Slots::new(name, slot_names.to_vec()),
            extra: Mutex::new(Vec::new()),
        }
    }

    /// The optimizer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The step counter.
    pub fn iterations(&self) -> &Variable {
        &self.iterations
    }

    /// The learning rate at the current step, as a scalar of `dtype`.
    pub fn learning_rate(&self, dtype: kiln_ir::DType) -> Result<Tensor> {
        match &self.lr_variable {
            Some(v) => v.read().try_cast(dtype),
            None => self.lr.at(&self.iterations.read(), dtype),
        }
    }

    /// Sets a constant learning rate (takes effect in compiled steps too); an `Err` for a
    /// schedule, whose rate is a function of the step.
    ///
    /// ```
    /// use kiln::optim::{Optimizer, SGD};
    /// let opt = SGD::new(0.1);
    /// opt.base().set_learning_rate(0.01).unwrap();
    /// assert_eq!(opt.learning_rate(kiln::DType::F64).unwrap().to_scalar::<f64>().unwrap(), 0.01);
    /// ```
    pub fn set_learning_rate(&self, lr: f64) -> Result<()> {
        match &self.lr_variable {
            Some(v) => v.assign(&Tensor::scalar(lr)),
            None => Err(Error::invalid(
                "set_learning_rate",
                format!("optimizer `{}` follows a schedule; its rate is a function of the step", self.name),
            )),
        }
    }

    /// The slots of `var`, in the order of the names given to [`OptimizerBase::new`]:
    /// zero Variables of its type, created outside any trace on first use.
    pub fn slots(&self, var: &Variable) -> Result<Vec<Variable>> {
        self.slots.of(var)
    }

    /// A state Variable of the optimizer's own (not per variable), created from `init` outside
    /// any trace the first time, and listed by [`OptimizerBase::variables`].
    pub fn state_variable(&self, name: &str, init: impl FnOnce() -> Result<Tensor>) -> Result<Variable> {
        let mut extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        let full = format!("{}/{name}", self.name);
        if let Some(v) = extra.iter().find(|v| v.name() == full) {
            return Ok(v.clone());
        }
        let v = crate::init_scope(|| Variable::try_with_options(init()?, Some(&full), false))?;
        extra.push(v.clone());
        Ok(v)
    }

    /// The Variable of a constant learning rate (`None` for a schedule).
    pub(crate) fn learning_rate_variable(&self) -> Option<&Variable> {
        self.lr_variable.as_ref()
    }

    /// The state Variables made with [`OptimizerBase::state_variable`], with their short names.
    pub(crate) fn state_variables(&self) -> Vec<(String, Variable)> {
        let prefix = format!("{}/", self.name);
        let extra = self.extra.lock().unwrap_or_else(|e| e.into_inner());
        extra.iter().map(|v| (v.name().strip_prefix(&prefix).unwrap_or(v.name()).to_string(), v.clone())).collect()
    }

    /// The slots of `var` if it has been updated already.
    pub(crate) fn existing_slots(&self, var: &Variable) -> Option<Vec<Variable>> {
        self.slots.existing(var)
    }

    /// The config every built-in optimizer starts from: the optimizer's name as the class
    /// name and its learning rate, as now (an `Err` for a schedule, a closure that cannot be
    /// saved). The optimizer adds its own settings with [`crate::models::ObjectConfig::with`].
    pub fn base_config(&self) -> Result<crate::models::ObjectConfig> {
        match &self.lr_variable {
            Some(v) => {
                let lr = v.read().try_cast(kiln_ir::DType::F64)?.to_scalar::<f64>()?;
                Ok(crate::models::ObjectConfig::new(&self.name).with("learning_rate", lr))
            }
            None => Err(crate::models::no_config(
                "optimizer",
                &self.name,
                "its learning rate is a schedule closure; save a constant rate and set it with a LearningRateScheduler",
            )),
        }
    }

    /// The step counter, the learning rate (when constant), the optimizer's own state
    /// Variables and every slot created so far.
    pub fn variables(&self) -> Vec<Variable> {
        let mut v = vec![self.iterations.clone()];
        v.extend(self.lr_variable.clone());
        v.extend(self.extra.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned());
        v.extend(self.slots.all());
        v
    }
}

/// The checks shared by every optimizer: gradients match their variables.
fn check_pairs(optimizer: &str, grads_and_vars: &[(Tensor, &Variable)]) -> Result<()> {
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

/// `iterations + offset` as a float scalar of `dtype` (Keras's `local_step`).
pub(crate) fn step_as(iterations: &Variable, offset: f64, dtype: kiln_ir::DType) -> Result<Tensor> {
    iterations.read().try_cast(dtype)?.try_add(&scalar(dtype, offset)?)
}

/// A scalar of a float `dtype`.
pub(crate) fn scalar(dtype: kiln_ir::DType, v: f64) -> Result<Tensor> {
    Tensor::zeros(&[], dtype).try_scalar_like(v)
}
