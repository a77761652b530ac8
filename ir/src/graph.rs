//! The computation graph: a petgraph `StableDiGraph` of typed nodes. Data edges carry
//! the operand position; `Order` edges sequence side effects (variable reads and writes).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use smallvec::SmallVec;

use crate::array::Array;
use crate::error::{Error, Result};
use crate::infer::{infer, TensorType};
use crate::op::{Distribution, Op, VarId};

/// A node's handle. Stable across removals of other nodes.
pub type NodeId = NodeIndex<u32>;

/// What an edge means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Edge {
    /// The source is operand number `n` of the target.
    Arg(u32),
    /// The source must run before the target (side-effect order).
    Order,
}

/// An op with the type of its result.
#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub ty: TensorType,
}

/// A variable the graph reads or writes, bound to a real variable at call time.
#[derive(Clone, Debug, PartialEq)]
pub struct VarDecl {
    pub name: String,
    pub ty: TensorType,
}

/// A computation graph with numbered arguments, outputs and a variable table.
///
/// ```
/// use kiln_ir::{BinaryOp, DType, Graph, Op, TensorType, UnaryOp};
/// let mut g = Graph::new("f");
/// let x = g.add_input(TensorType::new(DType::F32, &[3]));
/// let y = g.add(Op::Binary(BinaryOp::Mul), &[x, x]).unwrap();
/// let z = g.add(Op::Unary(UnaryOp::Tanh), &[y]).unwrap();
/// g.set_outputs(vec![z]);
/// assert_eq!(g.len(), 3);
/// assert_eq!(g.args(y).as_slice(), &[x, x]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Graph {
    name: String,
    g: StableDiGraph<Node, Edge>,
    inputs: Vec<NodeId>,
    outputs: Vec<NodeId>,
    /// The nodes of `outputs`, so asking whether a node is an output is not a scan of a
    /// graph with 100k outputs.
    output_set: HashSet<NodeId>,
    vars: Vec<VarDecl>,
    /// The buffer plan, once memory planning has run.
    pub plan: Option<crate::plan::MemoryPlan>,
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Graph {
        Graph { name: name.into(), ..Graph::default() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// Number of nodes (inputs included).
    pub fn len(&self) -> usize {
        self.g.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.g.node_count() == 0
    }

    #[inline]
    pub fn inputs(&self) -> &[NodeId] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[NodeId] {
        &self.outputs
    }

    pub fn set_outputs(&mut self, outputs: Vec<NodeId>) {
        self.output_set = outputs.iter().copied().collect();
        self.outputs = outputs;
    }

    /// Whether `id` is one of the graph's outputs.
    pub fn is_output(&self, id: NodeId) -> bool {
        self.output_set.contains(&id)
    }

    #[inline]
    pub fn vars(&self) -> &[VarDecl] {
        &self.vars
    }

    pub fn declare_var(&mut self, name: impl Into<String>, ty: TensorType) -> VarId {
        self.vars.push(VarDecl { name: name.into(), ty });
        (self.vars.len() - 1) as VarId
    }

    /// Replaces the variable table (a caller renumbering `read_var`/`assign_var` nodes to
    /// match, as tracing does when it turns read-only variables of a body into captures).
    pub fn set_vars(&mut self, vars: Vec<VarDecl>) {
        self.vars = vars;
    }

    /// Makes `order` (a permutation of the current inputs) the graph's argument list,
    /// renumbering the `input` nodes.
    ///
    /// ```
    /// use kiln_ir::{DType, Graph, Op, TensorType};
    /// let mut g = Graph::new("f");
    /// let a = g.add_input(TensorType::new(DType::F32, &[]));
    /// let b = g.add_input(TensorType::new(DType::I64, &[]));
    /// g.set_input_order(vec![b, a]).unwrap();
    /// assert_eq!(g.inputs(), &[b, a]);
    /// assert!(matches!(g.node(a).op, Op::Input(1)));
    /// ```
    pub fn set_input_order(&mut self, order: Vec<NodeId>) -> Result<()> {
        let mut sorted = order.clone();
        sorted.sort_unstable();
        let mut current = self.inputs.clone();
        current.sort_unstable();
        if sorted != current {
            return Err(Error::Graph(format!(
                "`{}`: the new input order is not a permutation of the inputs",
                self.name
            )));
        }
        for (i, &id) in order.iter().enumerate() {
            self.g[id].op = Op::Input(i);
        }
        self.inputs = order;
        Ok(())
    }

    /// Adds the next argument of the graph.
    pub fn add_input(&mut self, ty: TensorType) -> NodeId {
        let id = self.g.add_node(Node { op: Op::Input(self.inputs.len()), ty });
        self.inputs.push(id);
        id
    }

    pub fn add_const(&mut self, value: Array) -> NodeId {
        let ty = TensorType::new(value.dtype(), value.shape());
        self.g.add_node(Node { op: Op::Const(value), ty })
    }

    /// A read of variable `var`; the caller orders it against writes with [`Graph::add_order`].
    pub fn add_read_var(&mut self, var: VarId) -> Result<NodeId> {
        let decl = self
            .vars
            .get(var as usize)
            .ok_or_else(|| Error::Graph(format!("read_var of undeclared variable @{var}")))?;
        let ty = decl.ty.clone();
        Ok(self.g.add_node(Node { op: Op::ReadVar(var), ty }))
    }

    /// A seeded random tensor of type `ty`; `counter`, if given, is an `i64` scalar mixed into the seed.
    pub fn add_random(
        &mut self,
        dist: Distribution,
        seed: u64,
        ty: TensorType,
        counter: Option<NodeId>,
    ) -> Result<NodeId> {
        if !ty.dtype.is_float() {
            return Err(Error::UnsupportedDType { op: dist.name(), dtype: ty.dtype, expected: "a float dtype" });
        }
        ty.check_size(dist.name())?;
        if let Some(c) = counter {
            let ct = &self.node(c).ty;
            if ct.dtype != crate::DType::I64 || !ct.shape.is_empty() {
                return Err(Error::invalid(dist.name(), format!("the counter operand must be i64[], got {ct}")));
            }
        }
        let args: SmallVec<[NodeId; 1]> = counter.into_iter().collect();
        Ok(self.add_unchecked(Op::Random { dist, seed }, ty, &args))
    }

    /// Adds `op` applied to `args`, with its result type inferred (and checked).
    pub fn add(&mut self, op: Op, args: &[NodeId]) -> Result<NodeId> {
        let tys: SmallVec<[TensorType; 4]> = args.iter().map(|&a| self.node(a).ty.clone()).collect();
        let ty = infer(&op, &tys)?;
        Ok(self.add_unchecked(op, ty, args))
    }

    /// Adds a region op (`case`, `while`, `scan`, `while_grad`) applied to `args`, checked
    /// against its bodies, and one `get` node per result; returns the region node and the
    /// `get` nodes in result order.
    ///
    /// ```
    /// use kiln_ir::{BinaryOp, CaseOp, DType, Graph, Op, Region, TensorType};
    /// use std::sync::Arc;
    /// let t = TensorType::new(DType::F32, &[]);
    /// let branch = |op: BinaryOp| {
    ///     let mut b = Graph::new("branch");
    ///     let x = b.add_input(t.clone());
    ///     let y = b.add(Op::Binary(op), &[x, x]).unwrap();
    ///     b.set_outputs(vec![y]);
    ///     Region::new(b)
    /// };
    /// let mut g = Graph::new("f");
    /// let p = g.add_input(TensorType::new(DType::Bool, &[]));
    /// let x = g.add_input(t.clone());
    /// let case = Op::Case(Arc::new(CaseOp { branches: vec![branch(BinaryOp::Add), branch(BinaryOp::Mul)] }));
    /// let (_node, results) = g.add_region(case, &[p, x]).unwrap();
    /// assert_eq!(g.node(results[0]).ty, t);
    /// ```
    pub fn add_region(&mut self, op: Op, args: &[NodeId]) -> Result<(NodeId, Vec<NodeId>)> {
        let tys: Vec<TensorType> = args.iter().map(|&a| self.node(a).ty.clone()).collect();
        let results =
            op.result_types(&tys).ok_or_else(|| Error::invalid(op.name(), "is not a region op".to_string()))??;
        let node = self.add(op, args)?;
        let gets = results.into_iter().enumerate().map(|(i, ty)| self.add_unchecked(Op::Get(i), ty, &[node])).collect();
        Ok((node, gets))
    }

    /// Adds a node with a given type and no check (parsers and passes; the verifier checks later).
    pub fn add_unchecked(&mut self, op: Op, ty: TensorType, args: &[NodeId]) -> NodeId {
        let id = self.g.add_node(Node { op, ty });
        for (i, &a) in args.iter().enumerate() {
            self.g.add_edge(a, id, Edge::Arg(i as u32));
        }
        id
    }

    /// `before` must run before `after`.
    pub fn add_order(&mut self, before: NodeId, after: NodeId) {
        if !self.g.edges_connecting(before, after).any(|e| *e.weight() == Edge::Order) {
            self.g.add_edge(before, after, Edge::Order);
        }
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.g.contains_node(id)
    }

    /// The node; panics if `id` was removed (a bug in the caller).
    #[inline]
    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.g[id]
    }

    /// All node ids, in index order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.g.node_indices()
    }

    /// The operands of `id`, in position order.
    pub fn args(&self, id: NodeId) -> SmallVec<[NodeId; 4]> {
        let mut v: SmallVec<[(u32, NodeId); 4]> = self
            .g
            .edges_directed(id, Direction::Incoming)
            .filter_map(|e| match e.weight() {
                Edge::Arg(i) => Some((*i, e.source())),
                Edge::Order => None,
            })
            .collect();
        v.sort_unstable_by_key(|p| p.0);
        v.into_iter().map(|p| p.1).collect()
    }

    /// Nodes using `id` as an operand, with the position, sorted (a node using it twice appears twice).
    pub fn users(&self, id: NodeId) -> Vec<(NodeId, u32)> {
        let mut v: Vec<(NodeId, u32)> = self
            .g
            .edges_directed(id, Direction::Outgoing)
            .filter_map(|e| match e.weight() {
                Edge::Arg(i) => Some((e.target(), *i)),
                Edge::Order => None,
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Whether anything uses `id`: an operand edge or a graph output.
    pub fn is_used(&self, id: NodeId) -> bool {
        self.is_output(id) || self.g.edges_directed(id, Direction::Outgoing).any(|e| matches!(e.weight(), Edge::Arg(_)))
    }

    /// The nodes whose value reaches a graph output or a side effect (`AssignVar`) through
    /// operand edges: what a graph run must compute. Order edges do not make a node live
    /// (a variable read nobody uses is dead), so a dead op that would fail never runs
    /// (docs/SEMANTICS.md, "Dead ops").
    ///
    /// ```
    /// use kiln_ir::{DType, Graph, Op, TensorType, UnaryOp};
    /// let mut g = Graph::new("f");
    /// let x = g.add_input(TensorType::new(DType::F32, &[2]));
    /// let unused = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
    /// let y = g.add(Op::Unary(UnaryOp::Neg), &[x]).unwrap();
    /// g.set_outputs(vec![y]);
    /// let live = g.live_nodes();
    /// assert!(live.contains(&x) && live.contains(&y) && !live.contains(&unused));
    /// ```
    pub fn live_nodes(&self) -> HashSet<NodeId> {
        let mut stack: Vec<NodeId> = self.outputs.clone();
        stack.extend(self.node_ids().filter(|&id| self.node(id).op.has_side_effect()));
        let mut live = HashSet::with_capacity(self.len());
        while let Some(id) = stack.pop() {
            if live.insert(id) {
                stack.extend(self.args(id));
            }
        }
        live
    }

    /// Nodes that must run before `id` (order edges only), sorted.
    pub fn order_preds(&self, id: NodeId) -> Vec<NodeId> {
        self.order_neighbors(id, Direction::Incoming)
    }

    /// Nodes that must run after `id` (order edges only), sorted.
    pub fn order_succs(&self, id: NodeId) -> Vec<NodeId> {
        self.order_neighbors(id, Direction::Outgoing)
    }

    fn order_neighbors(&self, id: NodeId, dir: Direction) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .g
            .edges_directed(id, dir)
            .filter(|e| *e.weight() == Edge::Order)
            .map(|e| if dir == Direction::Incoming { e.source() } else { e.target() })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Makes every use of `old` (operand edges and outputs) a use of `new`.
    /// Order edges are left alone: see [`Graph::move_order_edges`].
    pub fn replace_uses(&mut self, old: NodeId, new: NodeId) {
        if old == new {
            return;
        }
        for (user, pos) in self.users(old) {
            let e = self
                .g
                .edges_connecting(old, user)
                .find(|e| *e.weight() == Edge::Arg(pos))
                .map(|e| e.id())
                .expect("edge listed by users()");
            self.g.remove_edge(e);
            self.g.add_edge(new, user, Edge::Arg(pos));
        }
        if self.output_set.remove(&old) {
            self.output_set.insert(new);
            for o in &mut self.outputs {
                if *o == old {
                    *o = new;
                }
            }
        }
    }

    /// Gives `to` all order edges of `from` (used when merging two reads).
    pub fn move_order_edges(&mut self, from: NodeId, to: NodeId) {
        for p in self.order_preds(from) {
            if p != to {
                self.add_order(p, to);
            }
        }
        for s in self.order_succs(from) {
            if s != to {
                self.add_order(to, s);
            }
        }
    }

    /// Replaces operand `pos` of `user` with `new`.
    pub fn set_arg(&mut self, user: NodeId, pos: u32, new: NodeId) {
        let old =
            self.g.edges_directed(user, Direction::Incoming).find(|e| *e.weight() == Edge::Arg(pos)).map(|e| e.id());
        if let Some(e) = old {
            self.g.remove_edge(e);
        }
        self.g.add_edge(new, user, Edge::Arg(pos));
    }

    /// Removes a node and its edges. Removing an input or an output is a caller bug.
    pub fn remove(&mut self, id: NodeId) -> Node {
        debug_assert!(!self.inputs.contains(&id), "removing an input");
        self.g.remove_node(id).expect("node exists")
    }

    /// All nodes in an order where operands and order predecessors come first. Among
    /// ready nodes the smallest index goes first, so the order is deterministic and
    /// follows creation order. `Err` if the graph has a cycle.
    pub fn topo_order(&self) -> Result<Vec<NodeId>> {
        // In-degrees by node index (a removed node's slot stays unused): every pass, the
        // verifier and the build ask for this order, and a hash map of it was most of its cost.
        let mut indegree = vec![0usize; petgraph::visit::NodeIndexable::node_bound(&self.g)];
        let mut ready = BinaryHeap::new();
        for id in self.g.node_indices() {
            let d = self.g.edges_directed(id, Direction::Incoming).count();
            indegree[id.index()] = d;
            if d == 0 {
                ready.push(Reverse(id));
            }
        }
        let mut order = Vec::with_capacity(self.len());
        while let Some(Reverse(id)) = ready.pop() {
            order.push(id);
            for e in self.g.edges_directed(id, Direction::Outgoing) {
                let d = &mut indegree[e.target().index()];
                *d -= 1;
                if *d == 0 {
                    ready.push(Reverse(e.target()));
                }
            }
        }
        if order.len() != self.len() {
            return Err(Error::Graph(format!("graph `{}` has a cycle", self.name)));
        }
        Ok(order)
    }

    /// Same ops, types, operands, order edges, variables, inputs and outputs, node for
    /// node in topological order (node indices may differ).
    pub fn structurally_eq(&self, other: &Graph) -> bool {
        let (Ok(a), Ok(b)) = (self.topo_order(), other.topo_order()) else {
            return false;
        };
        if a.len() != b.len() || self.vars != other.vars {
            return false;
        }
        let pos_a: HashMap<NodeId, usize> = a.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let pos_b: HashMap<NodeId, usize> = b.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        let map = |ids: &[NodeId], pos: &HashMap<NodeId, usize>| -> Vec<usize> { ids.iter().map(|i| pos[i]).collect() };
        if map(&self.inputs, &pos_a) != map(&other.inputs, &pos_b)
            || map(&self.outputs, &pos_a) != map(&other.outputs, &pos_b)
        {
            return false;
        }
        a.iter().zip(&b).all(|(&x, &y)| {
            let (nx, ny) = (self.node(x), other.node(y));
            nx.ty == ny.ty
                && nx.op == ny.op
                && map(&self.args(x), &pos_a) == map(&other.args(y), &pos_b)
                && map(&self.order_preds(x), &pos_a) == map(&other.order_preds(y), &pos_b)
        })
    }

    /// Direct access to the petgraph graph, for algorithms petgraph already has.
    pub fn petgraph(&self) -> &StableDiGraph<Node, Edge> {
        &self.g
    }
}
