//! Learning rates: a constant, or a schedule — a closure of the optimizer's step (the `i64`
//! `iterations` counter, before this update) returning a float scalar. Schedules are built
//! from tensor ops, so they trace into a compiled step and the rate changes call by call.
//!
//! ```
//! use kiln::optim::schedule::{exponential_decay, LearningRate};
//! use kiln::Tensor;
//! let lr = LearningRate::from(exponential_decay(0.1, 10, 0.5, false));
//! let at = |step: i64| lr.at(&Tensor::scalar(step), kiln::DType::F64).unwrap().to_scalar::<f64>().unwrap();
//! assert!((at(0) - 0.1).abs() < 1e-12);
//! assert!((at(10) - 0.05).abs() < 1e-12);
//! ```

use std::fmt;
use std::sync::Arc;

use kiln_ir::DType;

use crate::{Result, Tensor};

/// A closure of the step (`i64` scalar) giving a float scalar learning rate.
pub type Schedule = Arc<dyn Fn(&Tensor) -> Tensor + Send + Sync>;

/// A constant learning rate or a [`Schedule`].
#[derive(Clone)]
pub enum LearningRate {
    Constant(f64),
    Schedule(Schedule),
}

impl LearningRate {
    /// The rate at `step`, cast to `dtype`.
    pub fn at(&self, step: &Tensor, dtype: DType) -> Result<Tensor> {
        match self {
            LearningRate::Constant(v) => super::scalar(dtype, *v),
            LearningRate::Schedule(f) => f(step).try_cast(dtype),
        }
    }
}

impl fmt::Debug for LearningRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LearningRate::Constant(v) => write!(f, "{v}"),
            LearningRate::Schedule(_) => write!(f, "<schedule>"),
        }
    }
}

impl From<f64> for LearningRate {
    fn from(v: f64) -> LearningRate {
        LearningRate::Constant(v)
    }
}

impl<F: Fn(&Tensor) -> Tensor + Send + Sync + 'static> From<F> for LearningRate {
    fn from(f: F) -> LearningRate {
        LearningRate::Schedule(Arc::new(f))
    }
}

/// `step / decay_steps` in `f64`, floored when `staircase`: the decay schedules' exponent.
fn progress(step: &Tensor, decay_steps: u64, staircase: bool) -> Tensor {
    let p = step.cast(DType::F64) / decay_steps as f64;
    if staircase {
        p.floor()
    } else {
        p
    }
}

/// Keras `ExponentialDecay`: `initial * rate ^ (step / decay_steps)`, the exponent floored
/// when `staircase`. Computed in `f64`.
pub fn exponential_decay(
    initial: f64,
    decay_steps: u64,
    rate: f64,
    staircase: bool,
) -> impl Fn(&Tensor) -> Tensor + Send + Sync + 'static {
    move |step: &Tensor| {
        let p = progress(step, decay_steps, staircase);
        p.scalar_like(rate).pow(&p) * initial
    }
}

/// Keras `PiecewiseConstantDecay`: `values[i]` while `step <= boundaries[i]` (and the last
/// value after the last boundary). `values.len()` must be `boundaries.len() + 1`.
///
/// ```
/// use kiln::optim::schedule::piecewise_constant;
/// let f = piecewise_constant(vec![2, 5], vec![1.0, 0.5, 0.1]);
/// let at = |s: i64| f(&kiln::Tensor::scalar(s)).to_scalar::<f64>().unwrap();
/// assert_eq!((at(0), at(2), at(3), at(5), at(6)), (1.0, 1.0, 0.5, 0.5, 0.1));
/// ```
pub fn piecewise_constant(
    boundaries: Vec<i64>,
    values: Vec<f64>,
) -> impl Fn(&Tensor) -> Tensor + Send + Sync + 'static {
    assert_eq!(values.len(), boundaries.len() + 1, "piecewise_constant needs one more value than boundaries");
    move |step: &Tensor| {
        let s = step.cast(DType::I64);
        let mut out = s.scalar_like(0.0).cast(DType::F64) + values[values.len() - 1];
        // Walk from the last boundary back so the first matching interval wins.
        for (b, v) in boundaries.iter().zip(&values).rev() {
            let le = s.less_equal(&s.scalar_like(*b as f64));
            out = le.select(&out.scalar_like(*v), &out);
        }
        out
    }
}

/// Keras `InverseTimeDecay`: `initial / (1 + rate * step / decay_steps)` (floored when `staircase`).
pub fn inverse_time_decay(
    initial: f64,
    decay_steps: u64,
    rate: f64,
    staircase: bool,
) -> impl Fn(&Tensor) -> Tensor + Send + Sync + 'static {
    move |step: &Tensor| {
        let p = progress(step, decay_steps, staircase);
        let d = &p * rate + 1.0;
        d.scalar_like(initial) / &d
    }
}
