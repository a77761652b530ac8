//! # kiln
//!
//! TensorFlow's `tf.function`, rebuilt in Rust: eager numpy-like [`Tensor`]s; Rust closures
//! traced into a graph by [`function`] and [`trace`]; optimization passes; a Cranelift JIT;
//! and on top, [`Variable`]s, [`GradientTape`] autodiff, layers, losses, metrics, optimizers
//! and training loops whose whole step compiles.
//!
//! ```
//! use kiln::{DType, Tensor, Variable};
//! let a = Tensor::new(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
//! let b = Tensor::from_vec(vec![10.0f32, 20.0, 30.0], &[3]).unwrap();
//! let c = &a + &b;
//! assert_eq!(c.shape(), &[2, 3]);
//! let v = Variable::new(Tensor::zeros(&[2, 3], DType::F32));
//! v.assign_add(&a).unwrap();
//! ```

mod atomic_file;
mod autodiff;
mod context;
mod control_flow;
mod eager;
mod function;
#[cfg(feature = "ndarray")]
mod interop;
mod lazy;
mod ops;
mod tensor;
mod variable;

pub mod checkpoint;
pub mod data;
pub mod distributed;
pub mod losses;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod onnx;
pub mod optim;
pub mod queue;
pub mod ragged;
pub mod random;
pub mod saved_model;
pub mod sets;
pub mod sparse;
pub mod strings;
pub mod summary;
pub mod training;

pub use autodiff::{custom_gradient, grad, value_and_grad, Grad, GradientTape, ValueAndGrad};
pub use context::{init_scope, is_tracing};
pub use control_flow::{cond, fori_loop, print, scan, switch_case, while_loop, TensorArray};
pub use function::{
    function, function_with_signature, Backend, CallArgs, ConcreteFunction, Function, Outputs, TensorSpec, TraceFn,
    MAX_SIGNATURES,
};
pub use kiln_ir::{Array, DType, Element, Error, Graph, Result};
/// Turns a plain `fn` over `&Tensor`s into a traced, compiled function with the same
/// signature (TensorFlow's `@tf.function`); options `jit = false` and `name = ".."`. (The
/// proc-macro crate cannot run this example itself: it cannot depend on `kiln`.)
///
/// ```
/// use kiln::Tensor;
/// #[kiln::trace]
/// fn gelu(x: &Tensor) -> Tensor {
///     0.5 * x * (1.0 + ((x + 0.044715 * x * x * x) * 0.797_884_6).tanh())
/// }
/// let y = gelu(&Tensor::new(&[0.0f32, 1.0]));
/// assert_eq!(y.to_vec::<f32>().unwrap()[0], 0.0);
/// assert!((y.to_vec::<f32>().unwrap()[1] - 0.841_192).abs() < 1e-5);
/// ```
pub use kiln_macros::trace;
pub use lazy::{lazy_eager, set_lazy_eager};
pub use ops::args::{Ellipsis, IntList, NewAxis, SliceArg};
pub use ops::nn_ops::{softmax_cross_entropy_with_logits, sparse_softmax_cross_entropy_with_logits};
pub use tensor::{NestedArray, Tensor};
pub use variable::Variable;

/// The graph IR below `kiln`, for those who work on graphs directly.
pub mod ir {
    pub use kiln_ir::*;
}

/// The JIT below `kiln` (`kiln-jit`): executables, where transcendentals run
/// (`MathPath`), and the on-disk kernel cache, which a program can turn on itself instead of
/// through `KILN_CACHE_DIR` (docs/JIT.md, *On-disk kernel cache*).
///
/// ```
/// let before = kiln::jit::disk_cache::dir();
/// kiln::jit::disk_cache::set_dir(Some(std::env::temp_dir().join("kiln-doc-cache")));
/// assert!(kiln::jit::disk_cache::dir().is_some());
/// kiln::jit::disk_cache::set_dir(before);
/// ```
pub mod jit {
    pub use kiln_jit::*;
}

/// The optimization passes and pipeline (`kiln-passes`).
pub mod passes {
    pub use kiln_passes::*;
}
