//! The graph verifier: every rule a well-formed graph keeps, checked node by node, with
//! errors that name the node as the text form prints it (`%7 = mul: ...`).

use std::collections::BTreeMap;

use petgraph::visit::Dfs;
use petgraph::Direction;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::format::print_order;
use crate::graph::{Edge, Graph, NodeId};
use crate::infer::{infer, TensorType};
use crate::op::{Kernel, Op, VarId};
use crate::region::Region;

/// A verifier failure: the offending node (if one is to blame) and the full message.
pub(crate) type Located = std::result::Result<(), (Option<NodeId>, String)>;

impl Graph {
    /// Checks every rule of a well-formed graph:
    ///
    /// - `inputs()[i]` is a node whose op is `Input(i)`, every `Input` node is listed, and
    ///   inputs have no operands and no order predecessors; every output is a node;
    /// - each node's operand edges are `Arg(0..n)`, each position once; sources
    ///   (`input`, `const`, `read_var`) have no operands, `random` at most the `i64[]` counter;
    /// - data and order edges form no cycle;
    /// - each node's stored type equals what [`infer`] gives for its operands' types
    ///   (and no type's byte size overflows);
    /// - `read_var`/`assign_var` name a declared variable and have its type;
    /// - side effects are ordered: for each variable, its writes are totally ordered by
    ///   paths of data/order edges, and every read of it is ordered against every write;
    /// - fused kernels: the body verifies, takes the node's operand types, has one output of
    ///   the node's type, and holds only constants, inputs, elementwise ops and at most one
    ///   reduction, which must be the output.
    ///
    /// Errors are `Error::Graph` naming the node as [`Graph::to_text`] numbers it.
    ///
    /// ```
    /// use kiln_ir::{BinaryOp, DType, Graph, Op, TensorType};
    /// let mut g = Graph::new("f");
    /// let x = g.add_input(TensorType::new(DType::F32, &[3]));
    /// let y = g.add(Op::Binary(BinaryOp::Mul), &[x, x]).unwrap();
    /// g.set_outputs(vec![y]);
    /// assert!(g.verify().is_ok());
    /// // A node whose stored type disagrees with its op's rule:
    /// let bad = g.add_unchecked(Op::Binary(BinaryOp::Add), TensorType::new(DType::F64, &[3]), &[x, y]);
    /// let err = g.verify().unwrap_err().to_string();
    /// assert!(err.starts_with("graph: %2 = add: "), "{err}");
    /// # let _ = bad;
    /// ```
    pub fn verify(&self) -> Result<()> {
        self.verify_located().map_err(|(_, msg)| Error::Graph(msg))
    }

    /// [`Graph::verify`], also returning the node to blame (for parsers to map to a line).
    pub(crate) fn verify_located(&self) -> Located {
        Verifier::new(self).run()
    }
}

struct Verifier<'g> {
    g: &'g Graph,
    /// The nodes in the order the text form numbers them (`%0`, `%1`, …).
    order: Vec<NodeId>,
}

impl<'g> Verifier<'g> {
    fn new(g: &'g Graph) -> Self {
        Verifier { g, order: print_order(g) }
    }

    /// `id`'s number in the text form: only a failure's message needs one, so it is looked
    /// up then rather than tabled for every node of every graph verified.
    fn num(&self, id: NodeId) -> usize {
        self.order.iter().position(|&n| n == id).expect("every node is in the order")
    }

    fn fail<T>(&self, id: NodeId, msg: impl std::fmt::Display) -> std::result::Result<T, (Option<NodeId>, String)> {
        let label = format!("%{} = {}", self.num(id), self.g.node(id).op.name());
        Err((Some(id), format!("{label}: {msg}")))
    }

    fn fail_graph<T>(&self, msg: impl std::fmt::Display) -> std::result::Result<T, (Option<NodeId>, String)> {
        Err((None, format!("graph @{}: {msg}", self.g.name())))
    }

    fn run(&self) -> Located {
        let g = self.g;
        for (i, &id) in g.inputs().iter().enumerate() {
            if !g.contains(id) {
                return self.fail_graph(format!("input {i} is not a node of the graph"));
            }
            if !matches!(g.node(id).op, Op::Input(j) if j == i) {
                return self.fail(id, format!("is listed as input {i} of the graph"));
            }
        }
        for (i, &id) in g.outputs().iter().enumerate() {
            if !g.contains(id) {
                return self.fail_graph(format!("output {i} is not a node of the graph"));
            }
        }
        for &id in &self.order {
            self.check_operand_edges(id)?;
        }
        if let Err(cycle) = petgraph::algo::toposort(g.petgraph(), None) {
            return self.fail(cycle.node_id(), "is on a cycle of data/order edges");
        }
        for (v, decl) in g.vars().iter().enumerate() {
            if decl.ty.checked_bytes().is_none() {
                return self.fail_graph(format!("variable @{v} has type {} whose size overflows", decl.ty));
            }
        }
        // Sizes first: the rules of `check_node` count the elements of operand types.
        for &id in &self.order {
            if g.node(id).ty.checked_bytes().is_none() {
                return self.fail(id, format!("type {} has a size that overflows", g.node(id).ty));
            }
        }
        for &id in &self.order {
            self.check_node(id)?;
        }
        self.check_side_effect_order()
    }

    /// Operand edges `Arg(0..n)`, each position exactly once.
    fn check_operand_edges(&self, id: NodeId) -> Located {
        let mut pos: Vec<u32> = self
            .g
            .petgraph()
            .edges_directed(id, Direction::Incoming)
            .filter_map(|e| match e.weight() {
                Edge::Arg(i) => Some(*i),
                Edge::Order => None,
            })
            .collect();
        pos.sort_unstable();
        if pos.iter().enumerate().any(|(i, &p)| p as usize != i) {
            return self.fail(id, format!("operand positions {pos:?} are not 0..{} each once", pos.len()));
        }
        Ok(())
    }

    fn check_node(&self, id: NodeId) -> Located {
        let g = self.g;
        let node = g.node(id);
        let args = g.args(id);
        let tys: Vec<TensorType> = args.iter().map(|&a| g.node(a).ty.clone()).collect();
        let arity = node.op.kind().arity();
        if arity.max == Some(0) && !args.is_empty() {
            return self.fail(id, format!("a source takes no operands, got {}", args.len()));
        }
        if !arity.allows(args.len()) {
            return self.fail(id, format!("expects {arity} operand(s), got {}", args.len()));
        }
        match &node.op {
            Op::Input(i) => {
                if g.inputs().get(*i) != Some(&id) {
                    return self.fail(id, format!("is not input {i} of the graph ({} inputs)", g.inputs().len()));
                }
                if !g.order_preds(id).is_empty() {
                    return self.fail(id, "an input cannot be ordered after other nodes");
                }
                Ok(())
            }
            Op::ReadVar(v) => {
                let decl = self.var_decl(id, *v)?;
                if decl.ty != node.ty {
                    return self
                        .fail(id, format!("type {} differs from variable @{v} `{}`: {}", node.ty, decl.name, decl.ty));
                }
                Ok(())
            }
            Op::AssignVar(v) => {
                let decl = self.var_decl(id, *v)?;
                if let [t] = tys.as_slice() {
                    if *t != decl.ty {
                        return self.fail(id, format!("writes {t} to variable @{v} `{}`: {}", decl.name, decl.ty));
                    }
                }
                self.check_infer(id, &tys)
            }
            Op::Random { .. } => {
                if !node.ty.dtype.is_float() {
                    return self.fail(id, format!("type {} is not a float type", node.ty));
                }
                match tys.as_slice() {
                    [t] if t.dtype != DType::I64 || !t.shape.is_empty() => {
                        self.fail(id, format!("the counter operand must be i64[], got {t}"))
                    }
                    _ => Ok(()),
                }
            }
            Op::Fused(k) => {
                self.check_kernel(id, k)?;
                self.check_infer(id, &tys)
            }
            Op::Case(_) | Op::While(_) | Op::Scan(_) | Op::WhileGrad(_) => {
                for (b, r) in node.op.regions().into_iter().enumerate() {
                    self.check_region(id, b, r)?;
                }
                if let Some((user, _)) = g.users(id).into_iter().find(|&(u, _)| !matches!(g.node(u).op, Op::Get(_))) {
                    return self.fail(
                        id,
                        format!("is used by a `{}`; a region op is read by `get` only", g.node(user).op.name()),
                    );
                }
                if g.is_output(id) {
                    return self.fail(id, "a region op is not an output; its `get` nodes are");
                }
                self.check_infer(id, &tys)
            }
            Op::Get(i) => {
                let region = &g.node(args[0]);
                let results = match region
                    .op
                    .result_types(&g.args(args[0]).iter().map(|&a| g.node(a).ty.clone()).collect::<Vec<_>>())
                {
                    Some(Ok(r)) => r,
                    Some(Err(_)) => return Ok(()), // reported at the region node
                    None => return self.fail(id, format!("reads a `{}`, which is not a region op", region.op.name())),
                };
                match results.get(*i) {
                    Some(t) if *t == node.ty => Ok(()),
                    Some(t) => self.fail(id, format!("stored type {} but result {i} of the region is {t}", node.ty)),
                    None => self.fail(id, format!("result {i} of a region with {} results", results.len())),
                }
            }
            Op::Print(_) | Op::AllReduce(_) | Op::Broadcast(_) | Op::AllGather(_) => self.check_infer(id, &tys),
            Op::Const(_)
            | Op::Unary(_)
            | Op::Binary(_)
            | Op::Select
            | Op::Cast(_)
            | Op::BroadcastTo(_)
            | Op::Reshape(_)
            | Op::Transpose(_)
            | Op::Slice(_)
            | Op::Unslice { .. }
            | Op::Concat { .. }
            | Op::Gather { .. }
            | Op::ScatterAdd { .. }
            | Op::Reduce { .. }
            | Op::ArgReduce { .. }
            | Op::MatMul => self.check_infer(id, &tys),
        }
    }

    fn var_decl(
        &self,
        id: NodeId,
        v: VarId,
    ) -> std::result::Result<&'g crate::graph::VarDecl, (Option<NodeId>, String)> {
        match self.g.vars().get(v as usize) {
            Some(d) => Ok(d),
            None => self.fail(id, format!("variable @{v} is not declared (the graph has {})", self.g.vars().len())),
        }
    }

    /// The stored type equals the op's rule applied to the operand types.
    fn check_infer(&self, id: NodeId, tys: &[TensorType]) -> Located {
        let node = self.g.node(id);
        match infer(&node.op, tys) {
            Ok(t) if t == node.ty => Ok(()),
            Ok(t) => self.fail(id, format!("stored type {} but the operands give {t}", node.ty)),
            Err(e) => {
                let msg = e.to_string();
                let prefix = format!("{}: ", node.op.name());
                self.fail(id, msg.strip_prefix(&prefix).unwrap_or(&msg))
            }
        }
    }

    /// A region body is a valid graph whose variables are the enclosing graph's, same types.
    fn check_region(&self, id: NodeId, b: usize, r: &Region) -> Located {
        if let Err((_, msg)) = r.graph.verify_located() {
            return self.fail(id, format!("body {b}: {msg}"));
        }
        let decls = r.graph.vars();
        if decls.len() != r.vars.len() {
            return self.fail(id, format!("body {b} declares {} variable(s) but maps {}", decls.len(), r.vars.len()));
        }
        for (i, (d, &outer)) in decls.iter().zip(&r.vars).enumerate() {
            let o = self.var_decl(id, outer)?;
            if o.ty != d.ty {
                return self
                    .fail(id, format!("body {b}: variable @{i} is {} but outer variable @{outer} is {}", d.ty, o.ty));
            }
        }
        Ok(())
    }

    fn check_kernel(&self, id: NodeId, k: &Kernel) -> Located {
        let body = &k.body;
        if let Err((_, msg)) = body.verify_located() {
            return self.fail(id, format!("body: {msg}"));
        }
        let [out] = body.outputs() else {
            return self.fail(id, format!("the body has {} outputs; a kernel has exactly one", body.outputs().len()));
        };
        let num = |n: NodeId| Verifier::new(body).num(n);
        let mut reductions = 0;
        for n in body.node_ids() {
            let op = &body.node(n).op;
            let allowed = matches!(op, Op::Input(_) | Op::Const(_)) || op.is_elementwise();
            let reduction = matches!(op, Op::Reduce { .. } | Op::ArgReduce { .. });
            if reduction {
                reductions += 1;
                if n != *out {
                    return self
                        .fail(id, format!("body: %{} = {}: a reduction must be the body's output", num(n), op.name()));
                }
            } else if !allowed {
                return self.fail(
                    id,
                    format!(
                        "body: %{} = {} is not allowed in a kernel (only const, inputs, elementwise ops and one final reduction)",
                        num(n),
                        op.name()
                    ),
                );
            }
        }
        debug_assert!(reductions <= 1, "a reduction other than the one output was rejected above");
        if !body.vars().is_empty() {
            // A body is run with no variables bound: the interpreter refuses a table it
            // cannot bind, so compiled code must not run one either.
            return self.fail(id, format!("body: declares {} variable(s); a kernel has none", body.vars().len()));
        }
        Ok(())
    }

    /// Every pair of writes of a variable, and every read/write pair, is ordered by a path.
    fn check_side_effect_order(&self) -> Located {
        let g = self.g;
        let mut by_var: BTreeMap<VarId, (Vec<NodeId>, Vec<NodeId>)> = BTreeMap::new();
        for &id in &self.order {
            match g.node(id).op {
                Op::ReadVar(v) => by_var.entry(v).or_default().0.push(id),
                Op::AssignVar(v) => by_var.entry(v).or_default().1.push(id),
                _ => {}
            }
        }
        for (v, (reads, writes)) in by_var {
            if writes.is_empty() {
                continue;
            }
            let name = &g.vars()[v as usize].name;
            let reach = |from: NodeId| {
                let mut dfs = Dfs::new(g.petgraph(), from);
                while dfs.next(g.petgraph()).is_some() {}
                dfs.discovered
            };
            let write_reach: Vec<_> = writes.iter().map(|&w| reach(w)).collect();
            for (i, &w1) in writes.iter().enumerate() {
                for (j, &w2) in writes.iter().enumerate().skip(i + 1) {
                    if !write_reach[i].contains(w2.index()) && !write_reach[j].contains(w1.index()) {
                        return self.fail(
                            w2,
                            format!("write of @{v} `{name}` is not ordered against the write %{}", self.num(w1)),
                        );
                    }
                }
            }
            for &r in &reads {
                let read_reach = reach(r);
                for (j, &w) in writes.iter().enumerate() {
                    if !write_reach[j].contains(r.index()) && !read_reach.contains(w.index()) {
                        return self.fail(
                            r,
                            format!("read of @{v} `{name}` is not ordered against the write %{}", self.num(w)),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
