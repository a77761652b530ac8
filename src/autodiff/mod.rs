//! Reverse-mode autodiff on a tape, as TensorFlow's `GradientTape` (docs/DESIGN.md §8).
//!
//! Every op goes through `context::apply`, which records it on the live tapes
//! (`context::recording`), as a Variable read does. Each live tape keeps the ops whose
//! operands it tracks (watched tensors and everything computed from them), and `gradient`
//! walks them backwards applying the op's VJP rule (`vjp.rs`). VJPs are written with kiln ops, so they record on outer tapes
//! (second derivatives) and trace into the graph when run inside `kiln::function`.
//! The rules and conventions are in `docs/AUTODIFF.md`.

mod custom_gradient;
mod functional;
mod region;
mod tape;
mod vjp;

use std::sync::Arc;

use crate::tensor::{fresh_id, Inner};
use crate::Tensor;

pub use custom_gradient::custom_gradient;
pub use functional::{grad, value_and_grad, Grad, ValueAndGrad};
pub use tape::GradientTape;

impl Tensor {
    /// The same value, cut off from gradient computation (TF's `stop_gradient`): a new
    /// tensor identity that no tape tracks, so no gradient flows through it.
    ///
    /// ```
    /// use kiln::{GradientTape, Tensor};
    /// let x = Tensor::scalar(3.0f64);
    /// let tape = GradientTape::new();
    /// tape.watch(&x);
    /// let y = &x * &x.stop_gradient(); // d/dx = stop(x) = 3, not 2x = 6
    /// let g = tape.gradient_tensors(&y, &[&x]).unwrap();
    /// assert_eq!(g[0].as_ref().unwrap().to_scalar::<f64>().unwrap(), 3.0);
    /// ```
    pub fn stop_gradient(&self) -> Tensor {
        Tensor(Arc::new(Inner { id: fresh_id(), value: self.0.value.clone() }))
    }
}
