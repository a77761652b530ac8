//! The user-facing tensor methods, one file per op family. Each builds an `ir::Op` and
//! hands it to `context::apply`, so the same method runs eagerly, traces, and records on tapes.

pub mod args;
mod composite;
mod creation;
mod elementwise;
mod indexing;
pub(crate) mod linalg;
mod movement;
pub mod nn_ops;
mod operators;
mod reduce;

/// Unwraps a `try_*` result in the panicking form of a method, with the error's message.
#[track_caller]
pub(crate) fn or_panic<T>(r: crate::Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}
