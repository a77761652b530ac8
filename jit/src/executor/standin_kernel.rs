//! TEMPORARY stand-in for the code generator's `kernel` module (branch `jitgen`): same
//! API, but `compile` always fails, so every fused node takes the interpreter path.
//! Delete this file and use `crate::kernel` once it lands on main.

use std::sync::Arc;

use kiln_ir::{Error, Kernel, Result};

/// `unsafe extern "C" fn(inputs, output, begin, end)`: computes output elements `begin..end`.
pub type KernelFn = unsafe extern "C" fn(inputs: *const *const u8, output: *mut u8, begin: usize, end: usize);

/// A compiled kernel (never constructed by the stand-in).
pub struct CompiledKernel {
    func: KernelFn,
    clif: String,
    disasm: Option<String>,
    cost: usize,
}

impl CompiledKernel {
    pub fn func(&self) -> KernelFn {
        self.func
    }
    pub fn clif(&self) -> &str {
        &self.clif
    }
    pub fn disasm(&self) -> Option<&str> {
        self.disasm.as_deref()
    }
    pub fn cost_per_element(&self) -> usize {
        self.cost
    }
}

/// Always `Err`: there is no code generator on this branch yet.
pub fn compile(_kernel: &Kernel) -> Result<Arc<CompiledKernel>> {
    Err(Error::Compile("the kernel code generator is not on this branch yet".into()))
}
