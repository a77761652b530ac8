//! Tracing the bodies of control flow: each body is a nested trace whose graph becomes a
//! region of one node in the enclosing graph.
//!
//! A body may use tensors of the traces around it; each such use becomes a *capture*: a body
//! input after the declared ones, fed by the outer tensor. Variables that no body of a region
//! writes are read once outside and captured too (so their gradients flow like any operand's
//! and the read is loop-invariant); variables a body writes stay `read_var`/`assign_var` nodes
//! inside it, mapped to the enclosing graph's, and the region node is ordered as a write.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use kiln_ir::{Graph, NodeId, Op, Region, TensorType, VarDecl};

use super::recording::{self, Recorded};
use super::trace::{TraceState, CURRENT};
use crate::tensor::Tensor;
use crate::variable::Variable;
use crate::{Error, Result};

thread_local! {
    /// The traces enclosing the body being traced, innermost last.
    static PARENTS: RefCell<Vec<TraceState>> = const { RefCell::new(Vec::new()) };
}

/// A traced body, before it joins its region.
pub(crate) struct Body {
    graph: Graph,
    /// Body variable `i` is `vars[i]`.
    vars: Vec<Variable>,
    /// Uids of the variables the body writes.
    written: HashSet<u64>,
    /// Outer tensors used by the body, in the order of its capture inputs.
    captures: Vec<Tensor>,
    /// How many inputs the caller declared (the captures follow).
    declared: usize,
}

/// Traces `f` as a body taking values of the types `inputs`, inside the current trace.
pub(crate) fn trace_body(
    name: &str,
    inputs: &[TensorType],
    f: impl FnOnce(&[Tensor]) -> Result<Vec<Tensor>>,
) -> Result<Body> {
    let parent = CURRENT
        .with(|c| c.borrow_mut().take())
        .ok_or_else(|| Error::Symbolic("a control-flow body is traced only inside a traced function".into()))?;
    let mut state = TraceState::new(name, false);
    state.outer = parent.outer.clone();
    state.outer.push(parent.id);
    PARENTS.with(|p| p.borrow_mut().push(parent));
    // Puts the enclosing trace back, also when `f` fails or panics.
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            let parent = PARENTS.with(|p| p.borrow_mut().pop());
            CURRENT.with(|c| *c.borrow_mut() = parent);
        }
    }
    let guard = Restore;
    CURRENT.with(|c| *c.borrow_mut() = Some(state));
    let args: Vec<Tensor> = inputs.iter().map(|t| super::trace::add_input(t.clone())).collect();
    let outs = f(&args)?;
    let nodes = super::trace::with_current(|t| {
        let t = t.expect("the body's trace is installed");
        outs.iter().map(|o| t.node_of(o)).collect::<Result<Vec<NodeId>>>()
    })?;
    let mut state = CURRENT.with(|c| c.borrow_mut().take()).expect("the body's trace is installed");
    drop(guard);
    if let Some(e) = state.refused.take() {
        return Err(e);
    }
    state.graph.set_outputs(nodes);
    let written = state.last_write.keys().map(|&v| state.vars[v as usize].uid()).collect();
    Ok(Body {
        graph: state.graph,
        written,
        captures: state.captures.into_iter().map(|(t, _)| t).collect(),
        vars: state.vars,
        declared: inputs.len(),
    })
}

impl Body {
    /// A body that already exists as a graph (replaying a region, or reusing one in a VJP):
    /// its first `declared` inputs are the caller's, the rest are fed by `captures`.
    pub(crate) fn from_graph(graph: Graph, vars: Vec<Variable>, declared: usize, captures: Vec<Tensor>) -> Body {
        let written = graph
            .node_ids()
            .flat_map(|n| {
                let op = &graph.node(n).op;
                match op {
                    Op::AssignVar(v) => vec![*v],
                    op if op.has_side_effect() => {
                        op.regions().into_iter().flat_map(|r| r.vars.iter().copied()).collect()
                    }
                    _ => Vec::new(),
                }
            })
            .map(|v| vars[v as usize].uid())
            .collect();
        Body { graph, vars, written, captures, declared }
    }

    /// Adds every matrix product that changes from step to step (depends on one of the first
    /// `variant` inputs) as an output, before the last `keep_last` outputs. A loop traced under
    /// a tape stacks them, so its gradient reads them instead of computing them again
    /// (`autodiff/region.rs` recognizes any stacked product by its node). Returns how many.
    pub(crate) fn save_variant_products(&mut self, variant: usize, keep_last: usize) -> usize {
        let g = &self.graph;
        let Ok(order) = g.topo_order() else { return 0 };
        let mut varies: HashSet<NodeId> = g.inputs()[..variant.min(g.inputs().len())].iter().copied().collect();
        let mut products = Vec::new();
        for n in order {
            if g.args(n).iter().any(|a| varies.contains(a)) {
                varies.insert(n);
                if matches!(g.node(n).op, Op::MatMul) && !g.outputs().contains(&n) {
                    products.push(n);
                }
            }
        }
        let mut outs = g.outputs().to_vec();
        let at = outs.len() - keep_last;
        let count = products.len();
        outs.splice(at..at, products);
        self.graph.set_outputs(outs);
        count
    }

    /// The types of the body's outputs.
    pub(crate) fn output_types(&self) -> Vec<TensorType> {
        self.graph.outputs().iter().map(|&o| self.graph.node(o).ty.clone()).collect()
    }
}

/// Joins traced bodies into region op `make(regions)` applied to `operands` followed by the
/// bodies' captures, in the current trace; returns the region's results (recorded on the
/// tapes, so gradients flow through the region's own VJP).
pub(crate) fn emit_region(
    make: impl FnOnce(Vec<Region>) -> Op,
    bodies: Vec<Body>,
    operands: &[Tensor],
) -> Result<Vec<Tensor>> {
    let written: HashSet<u64> = bodies.iter().flat_map(|b| b.written.iter().copied()).collect();
    // Read-only variables: one read outside, captured by every body that reads them.
    let mut outer_reads: HashMap<u64, Tensor> = HashMap::new();
    let mut bodies: Vec<(Body, Vec<Variable>)> = bodies
        .into_iter()
        .map(|mut b| {
            let kept = capture_read_only(&mut b, &written, &mut outer_reads);
            (b, kept)
        })
        .collect();
    // Every body takes the same captures, in one order.
    let mut all: Vec<Tensor> = Vec::new();
    for (b, _) in &bodies {
        for c in &b.captures {
            if !all.iter().any(|a| a.id() == c.id()) {
                all.push(c.clone());
            }
        }
    }
    for (b, _) in &mut bodies {
        align_captures(b, &all)?;
    }
    let body_vars: Vec<Vec<Variable>> = bodies.iter().map(|(_, v)| v.clone()).collect();
    let regions: Vec<Region> = bodies.into_iter().map(|(b, _)| Region::new(b.graph)).collect();
    let mut args: Vec<Tensor> = operands.to_vec();
    args.extend(all);
    emit(make(regions), &body_vars, &args)
}

/// Adds region op `op` (its bodies' variable maps given as the Variables `body_vars[k][i]`)
/// applied to `args` to the current trace, orders it among the variables' reads and writes,
/// and records it on the tapes. Used for traced control flow and to replay a region.
pub(crate) fn emit(op: Op, body_vars: &[Vec<Variable>], args: &[Tensor]) -> Result<Vec<Tensor>> {
    let writes = op.has_side_effect();
    let (op, results) = super::trace::with_current(|t| {
        let t = t.ok_or_else(|| Error::Symbolic("a region op is added only while tracing".into()))?;
        let mut touched = Vec::new();
        let mut k = 0;
        let op = op.map_regions(|r| {
            let vars: Vec<_> = body_vars[k].iter().map(|v| t.var_id(v)).collect();
            touched.extend(vars.iter().copied());
            k += 1;
            Ok(Region { graph: r.graph.clone(), vars })
        })?;
        let nodes = args.iter().map(|a| t.node_of(a)).collect::<Result<Vec<_>>>()?;
        let (node, gets) = t.graph.add_region(op.clone(), &nodes)?;
        touched.sort_unstable();
        touched.dedup();
        for v in touched {
            if let Some(&w) = t.last_write.get(&v) {
                t.graph.add_order(w, node);
            }
            if writes {
                for r in t.reads_since_write.remove(&v).unwrap_or_default() {
                    t.graph.add_order(r, node);
                }
                t.last_write.insert(v, node);
            } else {
                t.reads_since_write.entry(v).or_default().push(node);
            }
        }
        Ok::<_, Error>((op, gets.into_iter().map(|g| t.symbolic(g)).collect::<Vec<Tensor>>()))
    })?;
    let refs: Vec<&Tensor> = args.iter().collect();
    recording::record_many(Recorded::Op(op), &refs, &results);
    Ok(results)
}

/// Replaces the body's reads of variables no body writes by capture inputs fed by one read
/// in the enclosing trace; returns the variables that stay (renumbered in the body).
fn capture_read_only(b: &mut Body, written: &HashSet<u64>, outer_reads: &mut HashMap<u64, Tensor>) -> Vec<Variable> {
    let g = &mut b.graph;
    let mut renumber: Vec<Option<u32>> = Vec::with_capacity(b.vars.len());
    let mut kept: Vec<Variable> = Vec::new();
    let mut decls: Vec<VarDecl> = Vec::new();
    for (i, v) in b.vars.iter().enumerate() {
        if written.contains(&v.uid()) {
            renumber.push(Some(kept.len() as u32));
            kept.push(v.clone());
            decls.push(g.vars()[i].clone());
        } else {
            renumber.push(None);
        }
    }
    let var_nodes: Vec<NodeId> = g.node_ids().filter(|&n| g.node(n).op.var().is_some()).collect();
    let mut inputs: HashMap<u32, NodeId> = HashMap::new();
    for n in var_nodes {
        let Some(v) = g.node(n).op.var() else { continue };
        match renumber[v as usize] {
            Some(new) => {
                let op = match g.node(n).op {
                    Op::ReadVar(_) => Op::ReadVar(new),
                    _ => Op::AssignVar(new),
                };
                g.node_mut(n).op = op;
            }
            None => {
                // Only reads: the variable is not written by any body of the region.
                let input = *inputs.entry(v).or_insert_with(|| {
                    let var = &b.vars[v as usize];
                    let outer = outer_reads.entry(var.uid()).or_insert_with(|| var.read()).clone();
                    b.captures.push(outer);
                    g.add_input(var.tensor_type())
                });
                g.replace_uses(n, input);
                g.remove(n);
            }
        }
    }
    g.set_vars(decls);
    kept
}

/// Gives `b` one input per tensor of `all` after its declared inputs, in that order.
fn align_captures(b: &mut Body, all: &[Tensor]) -> Result<()> {
    let g = &mut b.graph;
    let declared: Vec<NodeId> = g.inputs()[..b.declared].to_vec();
    let mut own: HashMap<u64, NodeId> =
        b.captures.iter().map(|c| c.id()).zip(g.inputs()[b.declared..].iter().copied()).collect();
    let mut order = declared;
    for t in all {
        let n = match own.remove(&t.id()) {
            Some(n) => n,
            None => g.add_input(t.tensor_type()),
        };
        order.push(n);
    }
    g.set_input_order(order)?;
    b.captures = all.to_vec();
    Ok(())
}
