//! Eager execution of one op. Large elementwise ops and reductions run as a one-op compiled
//! kernel (cached by op and operand types, split across threads by the executor); everything
//! else, and everything when `KILN_EAGER=interpreter`, runs in the reference interpreter.
//! Chains of large elementwise ops are first deferred (`lazy.rs`) and reach the same cache
//! as one fused kernel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use kiln_ir::{interp, Array, BinaryOp, Kernel, Op, Result, TensorType};
use kiln_jit::Executable;

/// Below this many elements the interpreter is quicker than a kernel call.
pub(crate) const MIN_ELEMENTS: usize = 4096;
/// Distinct (op, signature) pairs kept compiled; past this, the least recently used one is
/// dropped (and its kernel freed, unless still among the JIT's recently used kernels).
const MAX_CACHED: usize = 512;

type Key = String;

/// The executables by key, each with the tick of its last use.
#[derive(Default)]
struct Cache {
    map: HashMap<Key, (Arc<Executable>, u64)>,
    clock: u64,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

pub(crate) fn compiled_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| !kiln_ir::config::eager_is_interpreter())
}

/// Ops a one-op kernel computes exactly as the interpreter does, up to the JIT's stated
/// ULP bounds. Integer division stays interpreted: only the interpreter reports a division
/// by zero.
pub(crate) fn compilable(op: &Op, ty: &TensorType) -> bool {
    match op {
        Op::Binary(BinaryOp::Div) => !ty.dtype.is_int(),
        Op::Unary(_) | Op::Binary(_) | Op::Select | Op::Cast(_) | Op::Reduce { .. } => true,
        Op::Input(_)
        | Op::Const(_)
        | Op::ReadVar(_)
        | Op::Random { .. }
        | Op::AssignVar(_)
        | Op::BroadcastTo(_)
        | Op::Reshape(_)
        | Op::Transpose(_)
        | Op::Slice(_)
        | Op::Unslice { .. }
        | Op::Concat { .. }
        | Op::Gather { .. }
        | Op::ScatterAdd { .. }
        | Op::ArgReduce { .. }
        | Op::MatMul
        | Op::Fused(_)
        | Op::Case(_)
        | Op::While(_)
        | Op::Scan(_)
        | Op::WhileGrad(_)
        | Op::Get(_)
        | Op::Print(_)
        | Op::AllReduce(_)
        | Op::Broadcast(_)
        | Op::AllGather(_) => false,
    }
}

/// Computes `op` on concrete operands, with `ty` its result type (already inferred).
pub(crate) fn eval(op: &Op, args: &[&Array], ty: &TensorType) -> Result<Array> {
    let work = args.iter().map(|a| a.len()).chain([ty.numel()]).max().unwrap_or(0);
    if work >= MIN_ELEMENTS && compiled_enabled() && compilable(op, ty) {
        let tys: Vec<TensorType> = args.iter().map(|a| TensorType::new(a.dtype(), a.shape())).collect();
        if let Some(exe) = executable(op, tys) {
            let inputs: Vec<Array> = args.iter().map(|a| (*a).clone()).collect();
            let mut out = exe.run(&inputs, &[])?;
            return Ok(out.outputs.pop().expect("one output"));
        }
    }
    if let (Op::MatMul, [a, b]) = (op, args) {
        return matmul(a, false, b, false);
    }
    interp::eval(op, args, ty)
}

/// `a @ b`, each operand's last two axes transposed first where asked
/// ([`interp::matmul_transposed`]); with compiled eager ops on, large products run on the
/// executor's pool, so that eager code starts no second set of threads.
pub(crate) fn matmul(a: &Array, ta: bool, b: &Array, tb: bool) -> Result<Array> {
    let par: Option<kiln_ir::matmul::ParFor> = compiled_enabled().then_some(&kiln_jit::pool::for_each_default);
    interp::matmul_transposed_on(a, ta, b, tb, par)
}

/// The cached executable for `op` on operands `tys`, compiled on first use.
fn executable(op: &Op, tys: Vec<TensorType>) -> Option<Arc<Executable>> {
    kernel_executable(Kernel::of_op(op, &tys).ok()?)
}

/// The cached executable for `kernel` (one op, or a deferred chain of elementwise ops:
/// `lazy.rs`), compiled on first use; the cache compares kernels by their identity
/// (`Kernel::key`), as the JIT's own cache does, and by the math path they were compiled
/// for. `None` when the JIT cannot compile it.
pub(crate) fn kernel_executable(kernel: Kernel) -> Option<Arc<Executable>> {
    // The math path is part of the key: a kernel compiled to call the wide routines and then
    // run with `MathPath::Cranelift` chosen would take the routines' scalar fallback.
    let key = format!("{}:{}", kiln_jit::math_path().name(), kernel.key().ok()?);
    {
        let mut c = cache().lock().ok()?;
        c.clock += 1;
        let now = c.clock;
        if let Some((e, used)) = c.map.get_mut(&key) {
            *used = now;
            return Some(e.clone());
        }
    }
    let exe = Arc::new(Executable::for_kernel(kernel).ok()?);
    let mut c = cache().lock().ok()?;
    if c.map.len() >= MAX_CACHED {
        let lru = c.map.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone());
        c.map.remove(&lru.expect("a full cache is not empty"));
    }
    let now = c.clock;
    c.map.insert(key, (exe.clone(), now));
    Some(exe)
}
