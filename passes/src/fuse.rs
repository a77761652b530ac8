//! Fusion: groups of elementwise ops (and a reduction that consumes them) become one
//! `Op::Fused` node holding the group as a small body graph, which the JIT compiles
//! into one loop nest.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kiln_ir::{Graph, Kernel, NodeId, Op, Result};

use crate::pass::{const_value, has_order_edges, remove_if_dead, Changed, Pass};

/// Forms fused kernels.
///
/// Groups are grown backwards from a root (an elementwise op, or a `Reduce`/`ArgReduce`),
/// visited in reverse topological order: a producer joins when it is elementwise and
/// **every** user of its value is already in the group. So a group has exactly one value
/// used outside it (the root), no value is computed by two kernels, and no cycle can appear (a path
/// leaving the group and coming back would have been a cycle before). A value with users
/// both inside and outside (softmax's `exp`) ends a group and is materialized. An
/// expensive producer that the kernel would broadcast many times over (log-softmax's `log`
/// of the row sums) stays out too, so that it runs once per element of its own.
///
/// Never fused: nodes with order edges (so nothing moves across a variable read/write),
/// sources other than small constants, movement ops (`reshape`, `transpose`, `slice`,
/// ...), `matmul` and gathers. Constants of at most [`Fuse::max_const_elems`] elements
/// are copied into the body. Every elementwise op ends up in some kernel, alone if need
/// be: the JIT compiles only fused nodes. Elementwise consumers of a `matmul` form a
/// kernel reading its result, which memory planning lets write over the matmul's buffer.
/// A group stops growing at [`Fuse::max_kernel_nodes`] nodes, so the compiled function's
/// size, stack frame and compile time stay bounded however long the chain; what is left
/// forms the next kernel.
///
/// ```
/// use kiln_ir::{BinaryOp, DType, Graph, Op, ReduceOp, TensorType};
/// use kiln_passes::{Fuse, Pass};
/// let mut g = Graph::new("f");
/// let x = g.add_input(TensorType::new(DType::F32, &[4, 8]));
/// let sq = g.add(Op::Binary(BinaryOp::Mul), &[x, x]).unwrap();
/// let s = g.add(Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdims: false }, &[sq]).unwrap();
/// g.set_outputs(vec![s]);
/// let c = Fuse::default().run(&mut g).unwrap();
/// assert_eq!(c.get("kernels_formed"), 1); // sum(x*x) is one kernel
/// assert_eq!(g.len(), 2);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Fuse {
    /// Constants with at most this many elements are copied into kernel bodies.
    pub max_const_elems: usize,
    /// The most nodes of the graph one kernel takes.
    pub max_kernel_nodes: usize,
}

/// Default [`Fuse::max_kernel_nodes`]: far above what models fuse (a GELU is about ten
/// ops), small enough that a kernel full of transcendentals keeps a small stack frame and
/// compiles in milliseconds.
///
/// ```
/// use kiln_passes::{Fuse, MAX_KERNEL_NODES};
/// assert_eq!(Fuse::default().max_kernel_nodes, MAX_KERNEL_NODES);
/// ```
pub const MAX_KERNEL_NODES: usize = 256;

impl Default for Fuse {
    fn default() -> Fuse {
        Fuse { max_const_elems: 1, max_kernel_nodes: MAX_KERNEL_NODES }
    }
}

impl Pass for Fuse {
    fn name(&self) -> &str {
        "fuse"
    }

    fn run(&self, g: &mut Graph) -> Result<Changed> {
        let order = g.topo_order()?;
        let pos: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let mut taken: HashSet<NodeId> = HashSet::new();
        let mut groups: Vec<Vec<NodeId>> = Vec::new();
        for &root in order.iter().rev() {
            if taken.contains(&root) || !can_root(g, root) {
                continue;
            }
            let mut members = grow(g, root, &taken, self.max_kernel_nodes.max(1));
            members.sort_by_key(|m| pos[m]);
            taken.extend(members.iter().copied());
            groups.push(members);
        }
        let mut c = Changed::none();
        // Kernel names follow the topological order of roots (they read in program order).
        // petgraph keeps a node's edges in a list, newest first, and removing an edge walks
        // it; so that an operand shared by many groups (`x` in `y + x` chains, or in a
        // thousand outputs `x * c`) does not make that quadratic, groups are replaced last
        // first (their edges then sit at the head of the list) and the kernels' operand
        // edges are added only once every group is gone.
        groups.sort_by_key(|m| pos[m.last().expect("a group has its root")]);
        let mut built: Vec<Built> = Vec::with_capacity(groups.len());
        let mut fused_of: HashMap<NodeId, NodeId> = HashMap::new();
        for (k, members) in groups.iter().enumerate().rev() {
            let b = self.build_kernel(g, members, k);
            fused_of.insert(*members.last().expect("a group has its root"), b.fused);
            built.push(b);
            c.count("kernels_formed", 1);
            c.count("nodes_fused", members.len());
        }
        for b in built {
            for (i, a) in b.externals.iter().enumerate() {
                g.set_arg(b.fused, i as u32, *fused_of.get(a).unwrap_or(a));
            }
            for k in b.pulled {
                remove_if_dead(g, k);
            }
        }
        Ok(c)
    }
}

fn is_elementwise(g: &Graph, id: NodeId) -> bool {
    g.node(id).op.is_elementwise() && !has_order_edges(g, id)
}

fn can_root(g: &Graph, id: NodeId) -> bool {
    is_elementwise(g, id)
        || (matches!(g.node(id).op, Op::Reduce { .. } | Op::ArgReduce { .. }) && !has_order_edges(g, id))
}

/// The group rooted at `root`: it and every elementwise producer all of whose users are
/// in the group, at most `cap` nodes. Each member's operands are looked at once, and a
/// producer joins when the last of its uses has joined (uses counted, not rescanned), so
/// growing is linear in the group's edges.
fn grow(g: &Graph, root: NodeId, taken: &HashSet<NodeId>, cap: usize) -> Vec<NodeId> {
    let space = iteration_space(g, root);
    let mut members: HashSet<NodeId> = HashSet::from([root]);
    let mut list = vec![root];
    let mut uses_inside: HashMap<NodeId, usize> = HashMap::new();
    let mut next = 0;
    while next < list.len() && list.len() < cap {
        let m = list[next];
        next += 1;
        for p in g.args(m) {
            if members.contains(&p) || taken.contains(&p) || !is_elementwise(g, p) || g.is_output(p) {
                continue;
            }
            if g.node(p).ty.numel().saturating_mul(MAX_REPEATS) <= space && elementwise_cost(g, p) >= EXPENSIVE {
                // Inside the kernel `p` would run once per element of the iteration space,
                // not once per element of its own: log-softmax's `log` of the row sums,
                // 1,024 times a row. It stays a kernel of its own.
                continue;
            }
            let inside = uses_inside.entry(p).or_insert(0);
            *inside += 1;
            if *inside == g.users(p).len() && list.len() < cap {
                members.insert(p);
                list.push(p);
            }
        }
    }
    list
}

/// Ops at least this costly (all but the one-instruction ones: division, square roots,
/// transcendentals, `pow`; see the op table's costs) are not pulled into a kernel that
/// would repeat each of their results [`MAX_REPEATS`] times or more by broadcasting it.
const EXPENSIVE: usize = 3;

/// How many times a kernel may repeat a broadcast value's computation (once per element of
/// the kernel instead of once per element of its own) before that value is better computed
/// apart: fewer repeats (a log-softmax over 10 classes) cost less than a kernel of its own,
/// with its launch, its compile and a buffer. Eager deferred chains use the same bound.
///
/// ```
/// assert_eq!(kiln_passes::MAX_REPEATS, 16);
/// ```
pub const MAX_REPEATS: usize = 16;

/// Rough vector instructions per element of an elementwise node (the op table's costs).
fn elementwise_cost(g: &Graph, id: NodeId) -> usize {
    let node = g.node(id);
    match &node.op {
        Op::Unary(u) => u.cost(),
        Op::Binary(b) => g.args(id).first().map_or(1, |&a| b.cost(g.node(a).ty.dtype)),
        _ => 1,
    }
}

/// How many elements a kernel rooted at `root` iterates over: its result's, or for a
/// reduction its operand's.
fn iteration_space(g: &Graph, root: NodeId) -> usize {
    match g.node(root).op {
        Op::Reduce { .. } | Op::ArgReduce { .. } => g.args(root).first().map_or(0, |&a| g.node(a).ty.numel()),
        _ => g.node(root).ty.numel(),
    }
}

impl Fuse {
    /// Replaces `members` (topologically sorted; the last is the root) with one fused node.
    /// The fused node has no operand edges yet: they are `externals` (nodes of the graph as
    /// it was, some of them roots of groups replaced since).
    fn build_kernel(&self, g: &mut Graph, members: &[NodeId], k: usize) -> Built {
        let root = *members.last().expect("non-empty group");
        let mut body = Graph::new(format!("{}.kernel{k}", g.name()));
        let member_set: HashSet<NodeId> = members.iter().copied().collect();
        // Operands from outside, in first-use order: small constants are copied in, the
        // rest become the body's inputs (declared first, so the dump lists them first).
        let mut outside: Vec<NodeId> = Vec::new();
        let mut seen: HashSet<NodeId> = HashSet::new();
        for &m in members {
            for a in g.args(m) {
                if !member_set.contains(&a) && seen.insert(a) {
                    outside.push(a);
                }
            }
        }
        let is_small_const = |a: NodeId| matches!(&g.node(a).op, Op::Const(v) if v.len() <= self.max_const_elems);
        let (pulled, externals): (Vec<NodeId>, Vec<NodeId>) = outside.into_iter().partition(|&a| is_small_const(a));
        let mut inside: HashMap<NodeId, NodeId> = HashMap::new();
        for &a in &externals {
            inside.insert(a, body.add_input(g.node(a).ty.clone()));
        }
        for &a in &pulled {
            inside.insert(a, body.add_const(const_value(g, a).expect("a constant").clone()));
        }
        for &m in members {
            let body_args: Vec<NodeId> = g.args(m).iter().map(|a| inside[a]).collect();
            let node = g.node(m);
            let b = body.add_unchecked(node.op.clone(), node.ty.clone(), &body_args);
            inside.insert(m, b);
        }
        body.set_outputs(vec![inside[&root]]);
        let ty = g.node(root).ty.clone();
        let fused = g.add_unchecked(Op::Fused(Arc::new(Kernel { body })), ty, &[]);
        g.replace_uses(root, fused);
        for &m in members.iter().rev() {
            g.remove(m);
        }
        Built { fused, externals, pulled }
    }
}

/// A fused node waiting for its operand edges, and the constants copied into its body
/// (removed once no other node uses them).
struct Built {
    fused: NodeId,
    externals: Vec<NodeId>,
    pulled: Vec<NodeId>,
}
