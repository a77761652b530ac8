//! Constant folding: a node whose operands are all constants is evaluated once, by the
//! reference interpreter, and replaced with its value.

use kiln_ir::{interp, Array, Graph, Op, Result};

use crate::pass::{const_value, has_order_edges, remove_if_dead, Changed, Pass};

/// Replaces pure nodes with all-constant operands by their value (`kiln_ir::interp::eval`).
///
/// Never folded: sources (`Input`, `ReadVar`, `Random`: a variable is bound at call time
/// and random numbers are the program's, not the compiler's), `AssignVar` (a side
/// effect), nodes with order edges, results bigger than [`ConstFold::max_bytes`] (a
/// `broadcast_to` of a scalar stays cheap; its 100 MB value would not), and nodes whose
/// evaluation fails (an integer division by zero stays a runtime error of the call).
///
/// ```
/// use kiln_ir::{Array, BinaryOp, Graph, Op};
/// use kiln_passes::{ConstFold, Pass};
/// let mut g = Graph::new("f");
/// let a = g.add_const(Array::scalar(2.0f32));
/// let b = g.add(Op::Binary(BinaryOp::Mul), &[a, a]).unwrap();
/// g.set_outputs(vec![b]);
/// ConstFold::default().run(&mut g).unwrap();
/// let out = g.outputs()[0];
/// assert!(matches!(&g.node(out).op, Op::Const(v) if v.to_vec::<f32>().unwrap() == [4.0]));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ConstFold {
    /// Largest result (in bytes) that is materialized as a constant.
    pub max_bytes: usize,
}

impl ConstFold {
    /// Default limit: 64 KiB per folded value.
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;

    pub fn with_limit(max_bytes: usize) -> ConstFold {
        ConstFold { max_bytes }
    }
}

impl Default for ConstFold {
    fn default() -> ConstFold {
        ConstFold { max_bytes: ConstFold::DEFAULT_MAX_BYTES }
    }
}

impl Pass for ConstFold {
    fn name(&self) -> &str {
        "const_fold"
    }

    fn run(&self, g: &mut Graph) -> Result<Changed> {
        let mut c = Changed::none();
        for id in g.topo_order()? {
            let node = g.node(id);
            let foldable = node.op.is_pure()
                && !matches!(node.op, Op::Const(_))
                && node.ty.bytes() <= self.max_bytes
                && !has_order_edges(g, id);
            if !foldable {
                continue;
            }
            let args = g.args(id);
            let values: Option<Vec<&Array>> = args.iter().map(|&a| const_value(g, a)).collect();
            let Some(values) = values else { continue };
            let Ok(value) = interp::eval(&node.op, &values, &node.ty) else { continue };
            if value.dtype() != node.ty.dtype || value.shape() != node.ty.shape.as_slice() {
                continue; // an interpreter bug; keep the node rather than change its type
            }
            let folded = g.add_const(value);
            g.replace_uses(id, folded);
            g.remove(id);
            c.count("nodes_folded", 1);
            let mut removed = 0;
            for a in args {
                removed += remove_if_dead(g, a);
            }
            c.count("consts_removed", removed);
        }
        Ok(c)
    }
}
