//! Algebraic simplification: identities that hold bit for bit, NaN, Inf and the sign of
//! zero included. A rule only fires when the result keeps the node's exact type.

use kiln_ir::{broadcasts_to, BinaryOp, Graph, NodeId, Op, Result, Shape, UnaryOp};

use crate::pass::{all_elements_are, const_value, has_order_edges, remove_if_dead, Changed, Pass};

/// Rewrites identities; each is exact for every input, including NaN, ±Inf and -0.0.
///
/// | rule | dtypes | why it is exact |
/// |---|---|---|
/// | `x*1`, `1*x`, `x/1` → `x` | all | IEEE: `x*1 = x/1 = x` for every x |
/// | `x+0`, `0+x` → `x` | integers | `+0.0 + -0.0 = +0.0`, so for floats only... |
/// | `x+(-0.0)`, `(-0.0)+x` → `x` | floats | ...`x + -0.0 = x` for every x, -0.0 included |
/// | `x-0` → `x` | integers; floats with `+0.0` | `x - +0.0 = x + -0.0 = x` |
/// | `x*0` → `0` | integers only | for floats `NaN*0`, `Inf*0` are NaN and `-1*0` is -0.0 |
/// | `neg(neg(x))` → `x` | all | a sign flip twice |
/// | `transpose(transpose(x))` → one transpose (none if the perm is the identity) | all | moves only |
/// | `reshape(reshape(x))` → one reshape (none to the same shape) | all | moves only |
/// | `cast` to the same dtype, `broadcast_to` the same shape → `x` | all | no-ops |
/// | `broadcast_to(broadcast_to(x))` → one `broadcast_to` | all | broadcasts compose |
///
/// "1" and "0" are constants whose every element has exactly that value. When the
/// constant makes the result bigger than `x` (`x[3] * ones[2,3]`), `x` is replaced by
/// `broadcast_to(x)` of the result's shape, so the result type never changes.
///
/// ```
/// use kiln_ir::{Array, BinaryOp, DType, Graph, Op, TensorType};
/// use kiln_passes::{Pass, Simplify};
/// let mut g = Graph::new("f");
/// let x = g.add_input(TensorType::new(DType::F32, &[2]));
/// let one = g.add_const(Array::scalar(1.0f32));
/// let y = g.add(Op::Binary(BinaryOp::Mul), &[x, one]).unwrap();
/// g.set_outputs(vec![y]);
/// Simplify.run(&mut g).unwrap();
/// assert_eq!(g.outputs(), &[x]);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Simplify;

impl Pass for Simplify {
    fn name(&self) -> &str {
        "simplify"
    }

    fn run(&self, g: &mut Graph) -> Result<Changed> {
        let mut c = Changed::none();
        for id in g.topo_order()? {
            if !g.contains(id) || has_order_edges(g, id) {
                continue;
            }
            let Some((rule, new)) = rewrite(g, id)? else { continue };
            g.replace_uses(id, new);
            c.count(rule, 1);
            let args = g.args(id);
            let mut removed = remove_if_dead(g, id);
            for a in args {
                removed += remove_if_dead(g, a);
            }
            c.count("nodes_removed", removed);
        }
        Ok(c)
    }
}

/// The rule that applies to `id` and the node now holding its value, if any.
fn rewrite(g: &mut Graph, id: NodeId) -> Result<Option<(&'static str, NodeId)>> {
    let args = g.args(id);
    let op = g.node(id).op.clone();
    let out = match op {
        Op::Binary(b) => return binary(g, id, b, args[0], args[1]),
        Op::Unary(UnaryOp::Neg) => match g.node(args[0]).op {
            Op::Unary(UnaryOp::Neg) => Some(("neg_neg", g.args(args[0])[0])),
            _ => None,
        },
        Op::Cast(d) if g.node(args[0]).ty.dtype == d => Some(("cast_same_dtype", args[0])),
        Op::BroadcastTo(ref s) if g.node(args[0]).ty.shape == *s => Some(("broadcast_same_shape", args[0])),
        Op::BroadcastTo(ref s) => match g.node(args[0]).op {
            Op::BroadcastTo(_) => {
                let inner = g.args(args[0])[0];
                Some(("broadcast_broadcast", g.add(Op::BroadcastTo(s.clone()), &[inner])?))
            }
            _ => None,
        },
        Op::Reshape(ref s) if g.node(args[0]).ty.shape == *s => Some(("reshape_same_shape", args[0])),
        Op::Reshape(ref s) => match g.node(args[0]).op {
            Op::Reshape(_) => {
                let inner = g.args(args[0])[0];
                if g.node(inner).ty.shape == *s {
                    Some(("reshape_reshape", inner))
                } else {
                    Some(("reshape_reshape", g.add(Op::Reshape(s.clone()), &[inner])?))
                }
            }
            _ => None,
        },
        Op::Transpose(ref p) if is_identity(p) => Some(("transpose_identity", args[0])),
        Op::Transpose(ref outer) => match &g.node(args[0]).op {
            Op::Transpose(inner_perm) => {
                // Output axis i is the inner result's axis outer[i], which is x's axis inner[outer[i]].
                let composed: Vec<usize> = outer.iter().map(|&o| inner_perm[o]).collect();
                let x = g.args(args[0])[0];
                if is_identity(&composed) {
                    Some(("transpose_transpose", x))
                } else {
                    Some(("transpose_transpose", g.add(Op::Transpose(composed), &[x])?))
                }
            }
            _ => None,
        },
        _ => None,
    };
    Ok(out)
}

fn is_identity(perm: &[usize]) -> bool {
    perm.iter().enumerate().all(|(i, &p)| i == p)
}

/// Rules for `lhs <b> rhs`.
fn binary(g: &mut Graph, id: NodeId, b: BinaryOp, lhs: NodeId, rhs: NodeId) -> Result<Option<(&'static str, NodeId)>> {
    let dtype = g.node(id).ty.dtype;
    let is_int = dtype.is_int();
    let is = |n: NodeId, v: f64| const_value(g, n).is_some_and(|a| all_elements_are(a, v));
    let (rule, keep) = match b {
        BinaryOp::Mul if is(rhs, 1.0) => ("mul_one", lhs),
        BinaryOp::Mul if is(lhs, 1.0) => ("mul_one", rhs),
        BinaryOp::Div if is(rhs, 1.0) => ("div_one", lhs),
        BinaryOp::Add if is(rhs, -0.0) && !is_int => ("add_neg_zero", lhs),
        BinaryOp::Add if is(lhs, -0.0) && !is_int => ("add_neg_zero", rhs),
        BinaryOp::Add if is(rhs, 0.0) && is_int => ("add_zero", lhs),
        BinaryOp::Add if is(lhs, 0.0) && is_int => ("add_zero", rhs),
        BinaryOp::Sub if is(rhs, 0.0) => ("sub_zero", lhs),
        BinaryOp::Mul if is_int && (is(rhs, 0.0) || is(lhs, 0.0)) => {
            let zero = if is(rhs, 0.0) { rhs } else { lhs };
            return Ok(Some(("mul_zero_int", widen(g, id, zero)?)));
        }
        _ => return Ok(None),
    };
    Ok(Some((rule, widen(g, id, keep)?)))
}

/// `keep` as a value of `id`'s exact type: itself, or broadcast to `id`'s shape.
fn widen(g: &mut Graph, id: NodeId, keep: NodeId) -> Result<NodeId> {
    let want: Shape = g.node(id).ty.shape.clone();
    let have = &g.node(keep).ty;
    debug_assert_eq!(have.dtype, g.node(id).ty.dtype, "arithmetic rules keep the dtype");
    if have.shape == want {
        return Ok(keep);
    }
    debug_assert!(broadcasts_to(&have.shape, &want), "an operand broadcasts to its result");
    g.add(Op::BroadcastTo(want), &[keep])
}
