//! Reverse-mode autodiff on a tape, as TensorFlow's `GradientTape` (docs/DESIGN.md §8).
//!
//! Every op goes through `trace::apply`, which calls [`record`]; a Variable read calls
//! [`record_read`]. Each live tape keeps the ops whose operands it tracks (watched tensors
//! and everything computed from them), and `gradient` walks them backwards applying the
//! op's VJP rule (`vjp.rs`). VJPs are written with kiln ops, so they record on outer tapes
//! (second derivatives) and trace into the graph when run inside `kiln::function`.
//! The rules and conventions are in `docs/AUTODIFF.md`.

mod custom_gradient;
mod functional;
mod tape;
mod vjp;

use std::sync::Arc;

use kiln_ir::Op;

use crate::tensor::{fresh_id, Inner};
use crate::{Tensor, Variable};

pub use custom_gradient::custom_gradient;
pub use functional::{grad, value_and_grad, Grad, ValueAndGrad};
pub use tape::GradientTape;

/// Records `op` applied to `args` giving `out` on every active tape that tracks an operand.
pub(crate) fn record(op: &Op, args: &[&Tensor], out: &Tensor) {
    tape::record(tape::Recorded::Op(op.clone()), args, out);
}

/// Records that `t` is a read of `v` on every active tape that watches `v`.
pub(crate) fn record_read(v: &Variable, t: &Tensor) {
    tape::record_read(v, t);
}

/// True while a tape is recording on this thread.
pub(crate) fn is_recording() -> bool {
    tape::is_recording()
}

/// Runs `f` with every tape of this thread paused (nothing it computes is recorded).
pub(crate) fn without_tapes<R>(f: impl FnOnce() -> R) -> R {
    tape::without_tapes(f)
}

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
