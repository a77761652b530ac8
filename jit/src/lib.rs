//! kiln's code generator and executor: fused kernels compiled to machine code with
//! Cranelift, run from a precomputed buffer plan by [`Executable`].

pub mod arena;
mod dump;
pub mod executor;
pub mod matmul;
pub mod pool;

pub use executor::{Executable, Fallback, Options, Outcome};
