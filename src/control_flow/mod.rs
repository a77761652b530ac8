//! Control flow that compiles: [`cond`], [`switch_case`], [`while_loop`], [`fori_loop`],
//! [`scan`], [`print`] and [`TensorArray`] (TF's `tf.cond`, `tf.while_loop`, ...; JAX's
//! `lax.cond`, `lax.while_loop`, `lax.scan`, ...).
//!
//! Eagerly they are Rust control flow on concrete values: only the taken branch runs, a loop
//! runs its body once per iteration, and a tape records every op. While tracing they become
//! one region op each, whose bodies are graphs traced once (both branches of a `cond`): a
//! loop of 10,000 iterations is one node, the trip count may depend on data, and the
//! optimizer, the JIT and autodiff see the whole loop. `docs/CONTROL_FLOW.md` has the
//! semantics: what runs when, the order of Variable effects, gradients, and how this
//! differs from TF and JAX.

mod cond;
mod loops;
mod print;
mod tensor_array;

pub use cond::{cond, switch_case};
pub use loops::{fori_loop, scan, while_loop};
pub use print::print;
pub use tensor_array::TensorArray;

use kiln_ir::{DType, TensorType};

use crate::{Error, Result, Tensor};

/// `Err` naming `op` unless `t` is a scalar of one of `dtypes`.
fn check_scalar(op: &'static str, what: &str, t: &Tensor, dtypes: &[DType]) -> Result<()> {
    if !t.shape().is_empty() || !dtypes.contains(&t.dtype()) {
        let want: Vec<String> = dtypes.iter().map(|d| d.to_string()).collect();
        return Err(Error::invalid(
            op,
            format!("{what} must be a {} scalar, got {}", want.join(" or "), t.tensor_type()),
        ));
    }
    Ok(())
}

/// `Err` naming `op` unless the body's values have the loop variables' types.
fn check_carries(op: &'static str, want: &[TensorType], got: &[TensorType]) -> Result<()> {
    if want.len() != got.len() {
        return Err(Error::invalid(
            op,
            format!("the body returns {} loop variable(s) but the loop has {}", got.len(), want.len()),
        ));
    }
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        if w != g {
            return Err(Error::invalid(
                op,
                format!("loop variable {i} enters as {w} but the body returns {g} (loop variables keep their dtype and shape)"),
            ));
        }
    }
    Ok(())
}

fn types(ts: &[Tensor]) -> Vec<TensorType> {
    ts.iter().map(Tensor::tensor_type).collect()
}
