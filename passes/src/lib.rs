//! kiln's graph optimization passes. Each pass is one file and depends only on `kiln-ir`;
//! [`Pipeline`] runs them in order with the verifier and dumps after every pass.
//!
//! ```
//! use kiln_ir::{BinaryOp, DType, Graph, Op, TensorType, UnaryOp};
//! let mut g = Graph::new("f");
//! let x = g.add_input(TensorType::new(DType::F32, &[1024]));
//! let y = g.add(Op::Binary(BinaryOp::Mul), &[x, x]).unwrap();
//! let z = g.add(Op::Unary(UnaryOp::Tanh), &[y]).unwrap();
//! g.set_outputs(vec![z]);
//! kiln_passes::optimize(&mut g).unwrap();
//! assert_eq!(g.len(), 2); // the input and one fused kernel
//! assert!(g.plan.is_some());
//! ```

pub mod const_fold;
pub mod cse;
pub mod dce;
pub mod fuse;
pub mod hoist;
pub mod inline_case;
pub mod memory_plan;
pub mod pass;
pub mod pipeline;
pub mod regions;
pub mod simplify;

pub use const_fold::ConstFold;
pub use cse::Cse;
pub use dce::Dce;
pub use fuse::{Fuse, MAX_KERNEL_NODES, MAX_REPEATS};
pub use hoist::HoistInvariants;
pub use inline_case::InlineCase;
pub use memory_plan::MemoryPlanner;
pub use pass::{Changed, Pass};
pub use pipeline::{PassRun, Pipeline, Report, Step, DEFAULT_MAX_ITERS};
pub use regions::OptimizeRegions;
pub use simplify::Simplify;

/// Runs the default [`Pipeline`] on `g`.
pub fn optimize(g: &mut kiln_ir::Graph) -> kiln_ir::Result<Report> {
    Pipeline::default().run(g)
}
