//! kiln's code generator and executor: each fused kernel of an optimized graph becomes one
//! function ([`compile`]) — Cranelift's, over 128-bit vectors, or for the f32 kernels it
//! covers (elementwise, row and column reductions) the x86 emitter's, 16 or 8 lanes wide
//! ([`set_asm`]) — cached per process (and on disk when [`disk_cache`] is on), and
//! [`Executable`] runs the graph from its precomputed buffer plan. `docs/JIT.md` explains the lowering, the vector width, the
//! emitter, the accuracy of the approximations and the executor.

pub mod arena;
mod asm;
mod code;
pub mod disk_cache;
mod dump;
pub mod executor;
pub mod kernel;
mod lower;
mod math;
mod perf_map;
pub mod pool;

pub use asm::{asm_on, set_asm};
pub use executor::{Executable, Fallback, Options, Outcome};
pub use kernel::{compile, compile_uncached, live_kernels, set_verify, CompiledKernel, KernelFn, RECENT_KERNELS};
pub use math::wide::{math_path, set_math_path, set_wide_math, wide_math, wide_math_isa, MathPath};
