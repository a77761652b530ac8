//! The `Pass` trait, what a pass reports, and small graph helpers the passes share.

use std::fmt;

use kiln_ir::{Array, Graph, NodeId, Op, Result};

/// What one run of a pass did: whether the graph changed, and named counters
/// (`nodes_removed`, `kernels_formed`, ...) for dumps and logs.
///
/// ```
/// use kiln_passes::Changed;
/// let mut c = Changed::none();
/// assert!(!c.changed);
/// c.count("nodes_removed", 2);
/// assert!(c.changed);
/// assert_eq!(c.get("nodes_removed"), 2);
/// assert_eq!(c.to_string(), "changed nodes_removed=2");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changed {
    pub changed: bool,
    /// Counters in the order they were first recorded.
    pub counters: Vec<(&'static str, usize)>,
}

impl Changed {
    /// Nothing changed.
    pub fn none() -> Changed {
        Changed::default()
    }

    /// Adds `n` to counter `name`; a non-zero count marks the graph changed.
    pub fn count(&mut self, name: &'static str, n: usize) {
        if n > 0 {
            self.changed = true;
        }
        match self.counters.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => *v += n,
            None => self.counters.push((name, n)),
        }
    }

    /// The value of counter `name` (0 if never recorded).
    pub fn get(&self, name: &str) -> usize {
        self.counters.iter().find(|(k, _)| *k == name).map_or(0, |(_, v)| *v)
    }

    /// Adds another report's counters into this one.
    pub fn merge(&mut self, other: &Changed) {
        self.changed |= other.changed;
        for &(k, v) in &other.counters {
            self.count(k, v);
        }
    }
}

impl fmt::Display for Changed {
    /// `changed nodes_removed=2 kernels_formed=1` or `unchanged`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.changed { "changed" } else { "unchanged" })?;
        for (k, v) in &self.counters {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// A graph-to-graph rewrite. A pass must leave a graph the verifier accepts and must not
/// change what the graph computes (outputs and variable writes) for any inputs.
///
/// ```
/// use kiln_ir::{Graph, Result};
/// use kiln_passes::{Changed, Pass};
/// struct Rename;
/// impl Pass for Rename {
///     fn name(&self) -> &str { "rename" }
///     fn run(&self, g: &mut Graph) -> Result<Changed> {
///         let mut c = Changed::none();
///         if g.name() != "renamed" {
///             g.set_name("renamed");
///             c.count("renamed", 1);
///         }
///         Ok(c)
///     }
/// }
/// let mut g = Graph::new("f");
/// assert!(Rename.run(&mut g).unwrap().changed);
/// assert!(!Rename.run(&mut g).unwrap().changed);
/// ```
pub trait Pass: Send + Sync {
    /// Short lowercase name, used in dumps and by [`crate::Pipeline::remove`].
    fn name(&self) -> &str;
    fn run(&self, g: &mut Graph) -> Result<Changed>;
}

/// The value of `id` if it is a constant.
pub(crate) fn const_value(g: &Graph, id: NodeId) -> Option<&Array> {
    match &g.node(id).op {
        Op::Const(a) => Some(a),
        _ => None,
    }
}

/// Whether every element of `a` has exactly the bits of `v` converted to `a`'s dtype
/// (so `-0.0` and `+0.0` differ, and a NaN is never "equal" to a number).
pub(crate) fn all_elements_are(a: &Array, v: f64) -> bool {
    let probe = Array::scalar_f64(a.dtype(), v);
    let want = probe.data().as_bytes();
    a.data().as_bytes().chunks_exact(want.len().max(1)).all(|c| c == want)
}

/// Removes `id` if it is a pure, unused node with no order edges and not an input.
/// Returns how many nodes were removed (0 or 1).
pub(crate) fn remove_if_dead(g: &mut Graph, id: NodeId) -> usize {
    let removable = g.contains(id)
        && (g.node(id).op.is_pure() || matches!(g.node(id).op, Op::Random { .. }))
        && !matches!(g.node(id).op, Op::Input(_))
        && !g.is_used(id)
        && g.order_preds(id).is_empty()
        && g.order_succs(id).is_empty();
    if removable {
        g.remove(id);
        1
    } else {
        0
    }
}

/// Whether `id` has order edges in either direction.
pub(crate) fn has_order_edges(g: &Graph, id: NodeId) -> bool {
    !g.order_preds(id).is_empty() || !g.order_succs(id).is_empty()
}

/// Copies `nodes` of `from` (in topological order) into `into`. `map` says where the
/// operands already are in `into` (a body's inputs, say) and gains each copied node.
/// Variable numbers of `from` become `vars[v]` (region bodies included); order edges between
/// copied nodes are kept.
pub(crate) fn copy_nodes(
    from: &Graph,
    nodes: &[NodeId],
    into: &mut Graph,
    map: &mut std::collections::HashMap<NodeId, NodeId>,
    vars: &[kiln_ir::VarId],
) -> Result<()> {
    let outer = |v: kiln_ir::VarId| {
        vars.get(v as usize)
            .copied()
            .ok_or_else(|| kiln_ir::Error::Graph(format!("variable @{v} has no outer variable")))
    };
    for &n in nodes {
        let node = from.node(n);
        let op = match &node.op {
            Op::ReadVar(v) => Op::ReadVar(outer(*v)?),
            Op::AssignVar(v) => Op::AssignVar(outer(*v)?),
            op => op.map_regions(|r| {
                let vars = r.vars.iter().map(|&v| outer(v)).collect::<Result<_>>()?;
                Ok(kiln_ir::Region { graph: r.graph.clone(), vars })
            })?,
        };
        let args: Vec<NodeId> = from.args(n).iter().map(|a| map[a]).collect();
        let id = into.add_unchecked(op, node.ty.clone(), &args);
        for p in from.order_preds(n) {
            if let Some(&q) = map.get(&p) {
                into.add_order(q, id);
            }
        }
        map.insert(n, id);
    }
    Ok(())
}
