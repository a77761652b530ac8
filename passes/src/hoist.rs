//! Loop-invariant code motion: inside a `while` or `scan` body, a pure computation that
//! reads only the loop's captures (and constants) gives the same value every iteration, so
//! it is computed once before the loop and passed in as a new capture.

use std::collections::{HashMap, HashSet};

use kiln_ir::{BinaryOp, Graph, NodeId, Op, Region, Result};

use crate::pass::{copy_nodes, Changed, Pass};

/// Hoists loop-invariant nodes out of `while` and `scan` bodies.
///
/// Only ops that cannot fail move: a loop that runs zero times must not start failing
/// because of a computation it never made (so integer division, gathers and scatters stay).
///
/// ```
/// use kiln_ir::Graph;
/// use kiln_passes::{HoistInvariants, Pass};
/// let mut g = Graph::from_text(
///     "graph @f(%0: f32[], %1: f32[4], %2: f32[4,4]) -> (%4)
///        %3 = scan %0, %1, %2 {length=4, carries=1, xs=1, reverse=false} : bool[0] {
///          graph @body(%0: i64[], %1: f32[], %2: f32[], %3: f32[4,4]) -> (%6, %6)
///            %4 = tanh %3 : f32[4,4]
///            %5 = sum %4 {axes=[0,1], keepdims=false} : f32[]
///            %6 = add %1, %5 : f32[]
///        }
///        %4 = get %3 {index=0} : f32[]",
/// )
/// .unwrap();
/// assert_eq!(HoistInvariants.run(&mut g).unwrap().get("nodes_hoisted"), 2); // tanh and sum
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct HoistInvariants;

impl Pass for HoistInvariants {
    fn name(&self) -> &str {
        "hoist"
    }

    fn run(&self, g: &mut Graph) -> Result<Changed> {
        let mut c = Changed::none();
        let loops: Vec<NodeId> =
            g.node_ids().filter(|&id| matches!(g.node(id).op, Op::While(_) | Op::Scan(_))).collect();
        for id in loops {
            c.count("nodes_hoisted", hoist(g, id)?);
        }
        Ok(c)
    }
}

/// Ops that give a value for every input of their type (no runtime error), pure.
fn cannot_fail(g: &Graph, n: NodeId) -> bool {
    let op = &g.node(n).op;
    let int_div = matches!(op, Op::Binary(BinaryOp::Div)) && g.node(n).ty.dtype.is_int();
    op.is_pure() && !int_div && !matches!(op, Op::Const(_) | Op::Gather { .. } | Op::ScatterAdd { .. } | Op::Fused(_))
}

/// Hoists out of loop `id`; returns how many body nodes moved.
fn hoist(g: &mut Graph, id: NodeId) -> Result<usize> {
    let op = g.node(id).op.clone();
    let (body, first_capture) = match &op {
        Op::While(w) => (&w.body, w.carries),
        Op::Scan(s) => (&s.body, 1 + s.carries + s.xs),
        _ => return Ok(0),
    };
    let bg = &body.graph;
    let captures: Vec<NodeId> = bg.inputs()[first_capture..].to_vec();
    // Invariant: a capture, a constant, or an op that cannot fail on invariant operands.
    let mut invariant: HashSet<NodeId> = captures.iter().copied().collect();
    let mut moved = Vec::new();
    for n in bg.topo_order()? {
        let node = bg.node(n);
        if matches!(node.op, Op::Const(_)) {
            invariant.insert(n);
        } else if !matches!(node.op, Op::Input(_))
            && cannot_fail(bg, n)
            && bg.args(n).iter().all(|a| invariant.contains(a))
        {
            invariant.insert(n);
            moved.push(n);
        }
    }
    // Only values used by a node that stays (or by the body's outputs) become captures.
    let stays = |n: NodeId| !invariant.contains(&n);
    let frontier: Vec<NodeId> =
        moved.iter().copied().filter(|&n| bg.users(n).iter().any(|&(u, _)| stays(u)) || bg.is_output(n)).collect();
    if frontier.is_empty() {
        return Ok(0);
    }
    // Copy the moved nodes (and the constants they read) before the loop.
    let operands = g.args(id);
    let first_operand = operands.len() - captures.len();
    let mut map: HashMap<NodeId, NodeId> =
        captures.iter().copied().zip(operands[first_operand..].iter().copied()).collect();
    let needed: Vec<NodeId> =
        bg.topo_order()?.into_iter().filter(|n| invariant.contains(n) && !map.contains_key(n)).collect();
    copy_nodes(bg, &needed, g, &mut map, &body.vars)?;
    // The body (and a while's condition, which takes the same inputs) get one new capture
    // per frontier value, replacing it.
    let new_body = |r: &Region, replace: bool| -> Result<Region> {
        let mut graph = r.graph.clone();
        for &n in &frontier {
            let input = graph.add_input(bg.node(n).ty.clone());
            if replace {
                graph.replace_uses(n, input);
            }
        }
        crate::dce::Dce.run(&mut graph)?;
        Ok(Region { graph, vars: r.vars.clone() })
    };
    let is_body = |r: &Region| std::ptr::eq(r, body);
    let new_op = op.map_regions(|r| new_body(r, is_body(r)))?;
    g.node_mut(id).op = new_op;
    for (k, &n) in frontier.iter().enumerate() {
        g.set_arg(id, (operands.len() + k) as u32, map[&n]);
    }
    Ok(moved.len())
}
