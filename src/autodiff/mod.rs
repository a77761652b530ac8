//! Reverse-mode autodiff on a tape (TF's `GradientTape`). Placeholder hooks: the tape
//! itself lands with the autodiff issue.

use kiln_ir::Op;

use crate::{Tensor, Variable};

/// Records `op` applied to `args` giving `out` on every active tape.
pub(crate) fn record(_op: &Op, _args: &[&Tensor], _out: &Tensor) {}

/// Records that `t` is a read of `v` on every active tape.
pub(crate) fn record_read(_v: &Variable, _t: &Tensor) {}

/// True while a tape is recording on this thread.
pub(crate) fn is_recording() -> bool {
    false
}

/// Runs `f` with tapes paused.
pub(crate) fn without_tapes<R>(f: impl FnOnce() -> R) -> R {
    f()
}

impl Tensor {
    /// The same value, cut off from gradient computation (TF's `stop_gradient`).
    pub fn stop_gradient(&self) -> Tensor {
        Tensor(std::sync::Arc::new(crate::tensor::Inner { id: crate::tensor::fresh_id(), value: self.0.value.clone() }))
    }
}
