//! A `case` whose index is a constant is replaced by the branch it chooses: the branch's
//! nodes move into the enclosing graph, so the other passes see through it and the
//! untaken branches disappear.

use std::collections::HashMap;

use kiln_ir::interp::region::branch_index;
use kiln_ir::{Graph, NodeId, Op, Result};

use crate::pass::{const_value, copy_nodes, Changed, Pass};

/// Inlines the taken branch of every `case` with a constant index.
///
/// ```
/// use kiln_ir::{Graph, Op};
/// use kiln_passes::{InlineCase, Pass};
/// let mut g = Graph::from_text(
///     "graph @f(%0: f32[]) -> (%3)
///        %1 = const [true] : bool[]
///        %2 = case %1, %0 : bool[0] {
///          graph @no(%0: f32[]) -> (%1)
///            %1 = neg %0 : f32[]
///        } {
///          graph @yes(%0: f32[]) -> (%1)
///            %1 = exp %0 : f32[]
///        }
///        %3 = get %2 {index=0} : f32[]",
/// )
/// .unwrap();
/// assert_eq!(InlineCase.run(&mut g).unwrap().get("branches_inlined"), 1);
/// assert!(matches!(g.node(g.outputs()[0]).op, Op::Unary(kiln_ir::UnaryOp::Exp)));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct InlineCase;

impl Pass for InlineCase {
    fn name(&self) -> &str {
        "inline_case"
    }

    fn run(&self, g: &mut Graph) -> Result<Changed> {
        let mut c = Changed::none();
        let cases: Vec<NodeId> = g.node_ids().filter(|&id| matches!(g.node(id).op, Op::Case(_))).collect();
        for id in cases {
            let Op::Case(case) = g.node(id).op.clone() else { unreachable!("filtered above") };
            let args = g.args(id);
            let Some(index) = const_value(g, args[0]) else { continue };
            let branch = &case.branches[branch_index(index, case.branches.len())?];
            let body = &branch.graph;
            let mut map: HashMap<NodeId, NodeId> =
                body.inputs().iter().copied().zip(args[1..].iter().copied()).collect();
            let nodes: Vec<NodeId> = body.topo_order()?.into_iter().filter(|n| !map.contains_key(n)).collect();
            copy_nodes(body, &nodes, g, &mut map, &branch.vars)?;
            // Whatever touches variables or prints keeps the case's place among the effects.
            let (preds, succs) = (g.order_preds(id), g.order_succs(id));
            for &n in &nodes {
                let op = &body.node(n).op;
                if op.var().is_some() || op.has_side_effect() || !op.regions().is_empty() {
                    preds.iter().for_each(|&p| g.add_order(p, map[&n]));
                    succs.iter().for_each(|&s| g.add_order(map[&n], s));
                }
            }
            for (get, _) in g.users(id) {
                let Op::Get(i) = g.node(get).op else { unreachable!("the verifier allows only `get` users") };
                g.replace_uses(get, map[&body.outputs()[i]]);
                g.remove(get);
            }
            g.remove(id);
            c.count("branches_inlined", 1);
        }
        Ok(c)
    }
}
