//! The text form of a graph: a stable, diff-able printer ([`Graph::to_text`]) and its
//! parser ([`Graph::from_text`]). `docs/DEBUGGING.md` describes the format.
//!
//! One file a job: `attrs.rs` is the op attribute codec (shared with the JSON form),
//! `printer.rs` writes text, `lexer.rs` splits a line into tokens, `parser.rs` builds the
//! graph back. The numbering both directions agree on and the size limits live here.

mod attrs;
mod lexer;
mod parser;
mod printer;

pub(crate) use attrs::{build_op, build_region, check_numel, op_attrs, slice_dim, Attr, AttrMap};
pub(crate) use parser::const_from_b64;
pub(crate) use printer::{fmt_attr, fmt_const, quote};

use std::collections::HashMap;

use crate::graph::{Graph, NodeId};

/// Largest element count a parsed type or shape attribute may have (2^40): anything
/// bigger is rejected before a buffer is sized from it or a product can overflow.
pub(crate) const MAX_ELEMENTS: usize = 1 << 40;
/// Deepest nesting of fused bodies a parser accepts.
pub(crate) const MAX_DEPTH: usize = 8;
/// Constants with more elements than this are printed as base64 bytes.
pub(super) const FULL_CONST_LIMIT: usize = 64;

/// The print order of a graph's nodes: `topo_order()` (index order if the graph has a
/// cycle, so printing never fails).
pub(crate) fn print_order(g: &Graph) -> Vec<NodeId> {
    g.topo_order().unwrap_or_else(|_| g.node_ids().collect())
}

/// [`print_order`] and each node's number in it.
pub(crate) fn numbering(g: &Graph) -> (Vec<NodeId>, HashMap<NodeId, usize>) {
    let order = print_order(g);
    let num = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    (order, num)
}

pub(super) fn node_ref(num: &HashMap<NodeId, usize>, id: NodeId) -> String {
    match num.get(&id) {
        Some(n) => format!("%{n}"),
        None => "%?".to_string(),
    }
}
