//! kiln's intermediate representation: dtypes, shapes, concrete arrays, the op set,
//! shape/dtype rules, the graph, and the reference interpreter.
//!
//! Nothing here knows about passes or code generation: a graph built here can be printed,
//! verified and evaluated with no other crate.

pub mod array;
pub mod config;
pub mod display;
mod dot;
pub mod dtype;
pub mod dump;
pub mod error;
mod format;
pub mod graph;
pub mod infer;
pub mod interp;
mod json;
pub mod matmul;
pub mod op;
mod op_table;
pub mod plan;
pub mod recycle;
pub mod region;
pub mod shape;
mod transpose;
mod verify;

pub use array::{Array, Data, Uninit};
pub use dtype::{DType, Element};
pub use error::{Error, Result};
pub use graph::{Edge, Graph, Node, NodeId, VarDecl};
pub use infer::{infer, TensorType};
pub use op::{
    ArgOp, Arity, BinaryOp, Distribution, IntUnaryOp, Kernel, Op, OpKind, ReduceOp, SliceDim, UnaryOp, VarId,
};
pub use plan::{MemoryPlan, Slot};
pub use region::{CaseOp, Region, ScanOp, WhileGradOp, WhileOp};
pub use shape::{
    broadcast_shapes, broadcast_strides, broadcasts_to, checked_numel, normalize_axes, normalize_axis, numel, strides,
    Shape,
};
