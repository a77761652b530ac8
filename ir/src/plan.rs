//! The buffer plan that memory planning attaches to a graph and the executor follows.

use std::collections::HashMap;

use crate::graph::NodeId;

/// Where one node's result lives in the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Byte offset in the arena.
    pub offset: usize,
    pub bytes: usize,
}

/// Execution order plus an arena slot for every intermediate buffer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryPlan {
    /// Nodes in the order the executor runs them.
    pub schedule: Vec<NodeId>,
    /// Arena slots of intermediates (not of inputs, constants, variable reads or outputs).
    pub slots: HashMap<NodeId, Slot>,
    /// Size of the arena in bytes.
    pub arena_bytes: usize,
    /// What the same buffers would take without reuse.
    pub naive_bytes: usize,
    /// Elementwise kernels that write their result over a dying operand's buffer:
    /// `node -> operand`. Both have the same slot; the kernel reads element `i` of the
    /// operand before it writes element `i` of its result, so this is safe.
    pub in_place: HashMap<NodeId, NodeId>,
}
