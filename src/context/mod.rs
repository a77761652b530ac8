//! What this thread is inside of: the trace stack (`trace.rs`), the stack of live gradient
//! tapes (`recording.rs`), and `apply`, the one place every op goes through, which consults both.
//!
//! Outside a trace, `apply` computes the op eagerly (`eager.rs`: a cached one-op compiled
//! kernel for large elementwise ops and reductions, the reference interpreter for the rest).
//! Inside a trace, an op on a symbolic tensor becomes a graph node. Either way the active tapes
//! record it. The dependencies point one way: `recording` asks `trace` which trace is current,
//! `trace` knows nothing of tapes, and `autodiff` (the backward walk, the VJP rules) sits on
//! top of this module, which knows nothing of how gradients are computed (docs/ARCHITECTURE.md).

pub(crate) mod body;
pub(crate) mod recording;
pub(crate) mod trace;

use kiln_ir::{infer, Array, Op, TensorType};

use crate::tensor::Tensor;
use crate::Result;

pub(crate) use recording::{is_recording, record_read, without_tapes};
pub use trace::is_tracing;
pub(crate) use trace::random;

/// Applies `op` to `args`: a graph node when tracing with symbolic operands, else computed
/// now (`eager::eval`). Records the op on active gradient tapes either way.
pub(crate) fn apply(op: Op, args: &[&Tensor]) -> Result<Tensor> {
    let out = if args.iter().any(|a| a.is_symbolic()) {
        if matches!(op, Op::MatMul) {
            // The trace has a product: gemm's set-up runs on the idle core while tracing goes on.
            kiln_ir::matmul::warm_up();
        }
        trace::add_node(&op, args)?
    } else {
        let tys: Vec<TensorType> = args.iter().map(|a| a.tensor_type()).collect();
        let ty = infer(&op, &tys)?;
        if let Some(deferred) = crate::lazy::defer(&op, args, &ty)? {
            deferred
        } else if let Some(reduced) = crate::lazy::reduce_chain(&op, args, &ty)? {
            reduced
        } else {
            Tensor::from_array(crate::eager::eval(&op, &concrete(args)?, &ty)?)
        }
    };
    recording::record(recording::Recorded::Op(op), args, &out);
    Ok(out)
}

/// The values of eager operands (computing deferred ones).
fn concrete<'a>(args: &[&'a Tensor]) -> Result<Vec<&'a Array>> {
    args.iter().map(|a| a.try_array("an eager op")).collect()
}

/// Applies an op with an effect beyond its value (a collective): inside a trace always a
/// node — even on concrete operands, which would otherwise run once at trace time — ordered
/// after the trace's previous effect; else run now. Recorded on the tapes as `apply` does.
pub(crate) fn apply_effect(op: Op, args: &[&Tensor]) -> Result<Tensor> {
    let out = if is_tracing() || args.iter().any(|a| a.is_symbolic()) {
        trace::add_effect_value(op.clone(), args)?
    } else {
        let tys: Vec<TensorType> = args.iter().map(|a| a.tensor_type()).collect();
        let ty = infer(&op, &tys)?;
        Tensor::from_array(kiln_ir::interp::eval(&op, &concrete(args)?, &ty)?)
    };
    recording::record(recording::Recorded::Op(op), args, &out);
    Ok(out)
}

/// Runs `f` outside any trace (TF's `init_scope`): ops run eagerly, so code that builds
/// state lazily (a layer creating its Variables on first call) gets concrete values even
/// when first called from inside a traced function.
///
/// ```
/// use kiln::{Tensor, Variable};
/// let f = kiln::function(|x: &Tensor| {
///     let init = kiln::init_scope(|| Tensor::ones(&[3], kiln::DType::F32));
///     assert!(!init.is_symbolic());
///     x + &init
/// });
/// let y = f.call(&Tensor::new(&[1.0f32, 2.0, 3.0])).unwrap();
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0, 3.0, 4.0]);
/// ```
pub fn init_scope<R>(f: impl FnOnce() -> R) -> R {
    trace::without_trace(|| without_tapes(f))
}
