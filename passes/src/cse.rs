//! Common-subexpression elimination: two nodes with equal ops, types, operands and order
//! predecessors compute the same value, so one of them goes.

use std::collections::HashMap;

use kiln_ir::{Graph, NodeId, Op, Result, TensorType};

use crate::pass::{Changed, Pass};

/// Merges identical pure computations.
///
/// Never merged: `Input` (distinct arguments), `Random` (two draws are two values even
/// with one seed: merging them is the user's call, not the optimizer's) and `AssignVar`
/// (side effects). Two `ReadVar`s of one variable merge only when they have the same
/// order predecessors, i.e. no write of that variable is ordered between them. The kept
/// node (the earlier one in topological order) takes over the removed node's order edges.
///
/// ```
/// use kiln_ir::{BinaryOp, DType, Graph, Op, TensorType};
/// use kiln_passes::{Cse, Pass};
/// let mut g = Graph::new("f");
/// let x = g.add_input(TensorType::new(DType::F32, &[2]));
/// let a = g.add(Op::Binary(BinaryOp::Mul), &[x, x]).unwrap();
/// let b = g.add(Op::Binary(BinaryOp::Mul), &[x, x]).unwrap();
/// let s = g.add(Op::Binary(BinaryOp::Add), &[a, b]).unwrap();
/// g.set_outputs(vec![s]);
/// assert_eq!(Cse.run(&mut g).unwrap().get("nodes_merged"), 1);
/// assert_eq!(g.args(s).as_slice(), &[a, a]);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Cse;

/// Bucket key: cheap to hash; candidates in one bucket are compared with `Op`'s `==`. A
/// constant's value is hashed into the key, so a graph of a thousand distinct scalar
/// constants has a thousand buckets, not one bucket searched a thousand times.
type Key = (&'static str, TensorType, Vec<NodeId>, Vec<NodeId>, u64);

impl Pass for Cse {
    fn name(&self) -> &str {
        "cse"
    }

    fn run(&self, g: &mut Graph) -> Result<Changed> {
        let mut buckets: HashMap<Key, Vec<NodeId>> = HashMap::new();
        let mut merged = 0;
        for id in g.topo_order()? {
            if !mergeable(&g.node(id).op) {
                continue;
            }
            let key: Key = (
                g.node(id).op.name(),
                g.node(id).ty.clone(),
                g.args(id).to_vec(),
                g.order_preds(id),
                value_hash(g, id),
            );
            let bucket = buckets.entry(key).or_default();
            match bucket.iter().copied().find(|&k| g.node(k).op == g.node(id).op) {
                Some(kept) => {
                    g.replace_uses(id, kept);
                    g.move_order_edges(id, kept);
                    g.remove(id);
                    merged += 1;
                }
                None => bucket.push(id),
            }
        }
        let mut c = Changed::none();
        c.count("nodes_merged", merged);
        Ok(c)
    }
}

fn value_hash(g: &Graph, id: NodeId) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if let Op::Const(a) = &g.node(id).op {
        a.data().as_bytes().hash(&mut h);
    }
    h.finish()
}

fn mergeable(op: &Op) -> bool {
    !matches!(op, Op::Input(_) | Op::Random { .. } | Op::AssignVar(_))
}
