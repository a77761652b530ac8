//! Dead-node removal: drops every node whose value reaches neither a graph output nor a
//! side effect (`AssignVar`). Inputs always stay (they are the graph's signature).

use kiln_ir::{Graph, NodeId, Op, Result};

use crate::pass::{Changed, Pass};

/// Removes nodes that reach no output and no side effect.
///
/// Liveness follows operand edges from the outputs and from every `AssignVar`. Order
/// edges do not make a node live (a variable read nobody uses is dead); when a dead node
/// sat between two ordered nodes, its order predecessors are linked to its order
/// successors so the order of the live side effects is kept.
///
/// ```
/// use kiln_ir::{DType, Graph, Op, TensorType, UnaryOp};
/// use kiln_passes::{Dce, Pass};
/// let mut g = Graph::new("f");
/// let x = g.add_input(TensorType::new(DType::F32, &[2]));
/// let _unused = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
/// let y = g.add(Op::Unary(UnaryOp::Neg), &[x]).unwrap();
/// g.set_outputs(vec![y]);
/// let c = Dce.run(&mut g).unwrap();
/// assert_eq!(c.get("nodes_removed"), 1);
/// assert_eq!(g.len(), 2);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Dce;

impl Pass for Dce {
    fn name(&self) -> &str {
        "dce"
    }

    fn run(&self, g: &mut Graph) -> Result<Changed> {
        let live = g.live_nodes();
        let dead: Vec<NodeId> =
            g.node_ids().filter(|id| !live.contains(id) && !matches!(g.node(*id).op, Op::Input(_))).collect();
        let mut c = Changed::none();
        for &id in &dead {
            // Keep the ordering the dead node carried between live side effects.
            let preds = g.order_preds(id);
            let succs = g.order_succs(id);
            for &p in &preds {
                for &s in &succs {
                    g.add_order(p, s);
                }
            }
            g.remove(id);
        }
        c.count("nodes_removed", dead.len());
        Ok(c)
    }
}
