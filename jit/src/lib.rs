//! kiln's code generator: each fused kernel of an optimized graph becomes one Cranelift
//! function over 128-bit vectors ([`compile`]), cached per process. `docs/JIT.md`
//! explains the lowering, the vector width and the accuracy of the approximations.

pub mod kernel;
mod lower;
mod math;

pub use kernel::{compile, compile_uncached, set_verify, CompiledKernel, KernelFn};
