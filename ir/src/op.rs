//! The one op set shared by eager execution, the interpreter, the passes, the JIT and
//! autodiff. An op is a value: its attributes are fields; its operands are graph edges.

use std::sync::Arc;

use crate::graph::Graph;
pub use crate::op_table::{ArgOp, Arity, BinaryOp, Distribution, IntUnaryOp, Op, OpKind, ReduceOp, UnaryOp};
use crate::region::Region;

/// Index of a variable in a graph's variable table.
pub type VarId = u32;

/// One axis of a slice, already normalized: output element `j` reads input index
/// `start + j * step`, for `j` in `0..len`. `step` is never 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SliceDim {
    pub start: usize,
    pub step: isize,
    pub len: usize,
}

impl SliceDim {
    /// The whole axis of size `n`.
    pub fn full(n: usize) -> SliceDim {
        SliceDim { start: 0, step: 1, len: n }
    }

    /// numpy's `start:stop:step` on an axis of size `n` (negative indices count from
    /// the end; out-of-range bounds are clipped, as numpy does).
    pub fn from_python(start: Option<isize>, stop: Option<isize>, step: isize, n: usize) -> Option<SliceDim> {
        if step == 0 {
            return None;
        }
        let n = n as isize;
        let clip = |v: isize, lo: isize, hi: isize| v.max(lo).min(hi);
        let norm = |v: isize| if v < 0 { v + n } else { v };
        let (start, stop) = if step > 0 {
            (start.map_or(0, |s| clip(norm(s), 0, n)), stop.map_or(n, |s| clip(norm(s), 0, n)))
        } else {
            (start.map_or(n - 1, |s| clip(norm(s), -1, n - 1)), stop.map_or(-1, |s| clip(norm(s), -1, n - 1)))
        };
        // `span` is at most n (both ends are clipped into -1..=n), so neither it nor
        // `(span - 1) / |step|` can overflow, whatever the step (isize::MIN included).
        let span = if step > 0 { stop - start } else { start - stop };
        let len = if span > 0 { (span as usize - 1) / step.unsigned_abs() + 1 } else { 0 };
        Some(SliceDim { start: if len == 0 { 0 } else { start as usize }, step, len })
    }
}

/// A fused kernel: a small graph of elementwise ops (and at most a trailing or
/// row-wise reduction) that the code generator turns into one loop nest.
/// The body's inputs are the fused node's operands, in order; its one output is the node's value.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub body: Graph,
}

impl Kernel {
    /// The kernel computing `op` alone on operands of types `operands` (how eager mode
    /// compiles one op).
    ///
    /// ```
    /// use kiln_ir::{DType, Kernel, Op, TensorType, UnaryOp};
    /// let k = Kernel::of_op(&Op::Unary(UnaryOp::Tanh), &[TensorType::new(DType::F32, &[8])]).unwrap();
    /// assert_eq!(k.body.inputs().len(), 1);
    /// ```
    pub fn of_op(op: &Op, operands: &[crate::TensorType]) -> crate::Result<Kernel> {
        let mut body = Graph::new("kernel");
        let ins: Vec<_> = operands.iter().map(|t| body.add_input(t.clone())).collect();
        let out = body.add(op.clone(), &ins)?;
        body.set_outputs(vec![out]);
        Ok(Kernel { body })
    }

    /// The kernel's identity: its body's nodes in topological order (ops with their
    /// attributes, constants by their bits, types, operand wiring) and its inputs and outputs,
    /// not its name. Two kernels with the same key compute the same thing; common-subexpression
    /// elimination, the JIT's compile cache and the eager kernel cache all compare by it.
    /// `Err` for a cyclic body.
    ///
    /// ```
    /// use kiln_ir::{DType, Kernel, Op, TensorType, UnaryOp};
    /// let t = [TensorType::new(DType::F32, &[8])];
    /// let a = Kernel::of_op(&Op::Unary(UnaryOp::Tanh), &t).unwrap();
    /// let b = Kernel::of_op(&Op::Unary(UnaryOp::Exp), &t).unwrap();
    /// assert_eq!(a.key().unwrap(), a.clone().key().unwrap());
    /// assert_ne!(a.key().unwrap(), b.key().unwrap());
    /// ```
    pub fn key(&self) -> crate::Result<String> {
        use std::fmt::Write as _;
        let g = &self.body;
        let order = g.topo_order()?;
        // Each node's position by node index (a removed node's slot stays unused).
        let mut pos = vec![usize::MAX; order.iter().map(|n| n.index() + 1).max().unwrap_or(0)];
        for (i, n) in order.iter().enumerate() {
            pos[n.index()] = i;
        }
        let at = |ids: &[crate::NodeId]| -> Vec<usize> { ids.iter().map(|i| pos[i.index()]).collect() };
        let mut key = String::new();
        for &id in &order {
            let node = g.node(id);
            match &node.op {
                Op::Const(a) => {
                    let _ = write!(key, "const {}{:?} ", a.dtype(), a.shape());
                    // Hex by table, not a `write!` per byte.
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    key.extend(
                        a.data()
                            .as_bytes()
                            .iter()
                            .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
                            .map(char::from),
                    );
                }
                op => {
                    let _ = write!(key, "{op:?}");
                }
            }
            let _ = writeln!(key, " : {} {:?} {:?}", node.ty, at(&g.args(id)), at(&g.order_preds(id)));
        }
        let _ = write!(key, "in {:?} out {:?} vars {}", at(g.inputs()), at(g.outputs()), g.vars().len());
        Ok(key)
    }
}

impl Op {
    /// The op's name as printed in dumps (`add`, `sum`, `read_var`, `fused`, ...): the
    /// sub-op's name where there is one, else the table's name of the kind.
    #[inline]
    pub fn name(&self) -> &'static str {
        match self {
            Op::Random { dist, .. } => dist.name(),
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Reduce { op, .. } => op.name(),
            Op::ArgReduce { op, .. } => op.name(),
            other => other.kind().name(),
        }
    }

    /// Elementwise ops: output element `i` depends only on operand elements at the
    /// (broadcast) index `i`. Fusion groups these.
    pub fn is_elementwise(&self) -> bool {
        self.kind().is_elementwise()
    }

    /// Ops whose result depends only on their operands and attributes: they may be
    /// folded, merged and removed when unused. Region ops are never pure (the passes treat a
    /// loop as one opaque step; they optimize inside it instead).
    pub fn is_pure(&self) -> bool {
        self.kind().is_pure()
    }

    /// Ops that must run even if nothing uses their result: variable writes, prints, and
    /// region ops whose bodies contain one.
    pub fn has_side_effect(&self) -> bool {
        match self {
            Op::Case(c) => c.branches.iter().any(|b| b.has_effects()),
            Op::While(w) => w.cond.has_effects() || w.body.has_effects(),
            Op::Scan(s) => s.body.has_effects(),
            Op::WhileGrad(w) => w.cond.has_effects() || w.body.has_effects() || w.body_vjp.has_effects(),
            op => op.kind().has_side_effect(),
        }
    }

    /// The bodies of a region op (empty for other ops).
    pub fn regions(&self) -> Vec<&Region> {
        match self {
            Op::Case(c) => c.branches.iter().collect(),
            Op::While(w) => vec![&w.cond, &w.body],
            Op::Scan(s) => vec![&s.body],
            Op::WhileGrad(w) => vec![&w.cond, &w.body, &w.body_vjp],
            _ => Vec::new(),
        }
    }

    /// The same region op with each body replaced by `f(body)` (in [`Op::regions`] order);
    /// other ops are returned unchanged.
    pub fn map_regions(&self, mut f: impl FnMut(&Region) -> crate::Result<Region>) -> crate::Result<Op> {
        use crate::region::{CaseOp, ScanOp, WhileGradOp, WhileOp};
        Ok(match self {
            Op::Case(c) => {
                Op::Case(Arc::new(CaseOp { branches: c.branches.iter().map(f).collect::<crate::Result<_>>()? }))
            }
            Op::While(w) => Op::While(Arc::new(WhileOp { cond: f(&w.cond)?, body: f(&w.body)?, carries: w.carries })),
            Op::Scan(s) => Op::Scan(Arc::new(ScanOp { body: f(&s.body)?, ..(**s).clone() })),
            Op::WhileGrad(w) => Op::WhileGrad(Arc::new(WhileGradOp {
                cond: f(&w.cond)?,
                body: f(&w.body)?,
                body_vjp: f(&w.body_vjp)?,
                carries: w.carries,
            })),
            other => other.clone(),
        })
    }

    /// The types of a region op's results for these operand types (read by `get` nodes);
    /// `None` for ops with one result of their own.
    pub fn result_types(&self, operands: &[crate::TensorType]) -> Option<crate::Result<Vec<crate::TensorType>>> {
        match self {
            Op::Case(c) => Some(c.result_types(operands)),
            Op::While(w) => Some(w.result_types(operands)),
            Op::Scan(s) => Some(s.result_types(operands)),
            Op::WhileGrad(w) => Some(w.result_types(operands)),
            _ => None,
        }
    }

    /// The variable an op reads or writes, if any.
    pub fn var(&self) -> Option<VarId> {
        match self {
            Op::ReadVar(v) | Op::AssignVar(v) => Some(*v),
            Op::Input(_)
            | Op::Const(_)
            | Op::Random { .. }
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
            | Op::MatMul
            | Op::Fused(_)
            | Op::Case(_)
            | Op::While(_)
            | Op::Scan(_)
            | Op::WhileGrad(_)
            | Op::Get(_)
            | Op::Print(_)
            | Op::AllReduce(_)
            | Op::Broadcast(_)
            | Op::AllGather(_) => None,
        }
    }
}

/// Ops compare by kind and attributes; constants by dtype, shape and bits; fused kernels
/// by [`Kernel::key`]. This is the equality common-subexpression elimination uses.
impl PartialEq for Op {
    fn eq(&self, other: &Op) -> bool {
        use Op::*;
        // One arm per kind on the left (a new kind must say how it compares); `other` of
        // another kind never matches.
        match self {
            Input(a) => matches!(other, Input(b) if a == b),
            Const(a) => matches!(other, Const(b) if a.bits_eq(b)),
            ReadVar(a) => matches!(other, ReadVar(b) if a == b),
            AssignVar(a) => matches!(other, AssignVar(b) if a == b),
            Random { dist: d1, seed: s1 } => matches!(other, Random { dist: d2, seed: s2 } if d1 == d2 && s1 == s2),
            Unary(a) => matches!(other, Unary(b) if a == b),
            Binary(a) => matches!(other, Binary(b) if a == b),
            Select => matches!(other, Select),
            MatMul => matches!(other, MatMul),
            Cast(a) => matches!(other, Cast(b) if a == b),
            BroadcastTo(a) => matches!(other, BroadcastTo(b) if a == b),
            Reshape(a) => matches!(other, Reshape(b) if a == b),
            Transpose(a) => matches!(other, Transpose(b) if a == b),
            Slice(a) => matches!(other, Slice(b) if a == b),
            Unslice { dims: d1, shape: s1 } => matches!(other, Unslice { dims: d2, shape: s2 } if d1 == d2 && s1 == s2),
            Concat { axis: a } => matches!(other, Concat { axis: b } if a == b),
            Gather { axis: a } => matches!(other, Gather { axis: b } if a == b),
            ScatterAdd { axis: a1, shape: s1 } => {
                matches!(other, ScatterAdd { axis: a2, shape: s2 } if a1 == a2 && s1 == s2)
            }
            Reduce { op: o1, axes: a1, keepdims: k1 } => {
                matches!(other, Reduce { op: o2, axes: a2, keepdims: k2 } if o1 == o2 && a1 == a2 && k1 == k2)
            }
            ArgReduce { op: o1, axis: a1, keepdims: k1 } => {
                matches!(other, ArgReduce { op: o2, axis: a2, keepdims: k2 } if o1 == o2 && a1 == a2 && k1 == k2)
            }
            Fused(a) => matches!(other, Fused(b) if Arc::ptr_eq(a, b) || same_kernel(a, b)),
            // Region ops (never merged: they are impure) compare by their bodies' structure.
            Case(a) => matches!(other, Case(b) if Arc::ptr_eq(a, b) || a == b),
            While(a) => matches!(other, While(b) if Arc::ptr_eq(a, b) || a == b),
            Scan(a) => matches!(other, Scan(b) if Arc::ptr_eq(a, b) || a == b),
            WhileGrad(a) => matches!(other, WhileGrad(b) if Arc::ptr_eq(a, b) || a == b),
            Get(a) => matches!(other, Get(b) if a == b),
            Print(a) => matches!(other, Print(b) if a == b),
            AllReduce(a) => matches!(other, AllReduce(b) if a == b),
            Broadcast(a) => matches!(other, Broadcast(b) if a == b),
            AllGather(a) => matches!(other, AllGather(b) if a == b),
        }
    }
}

fn same_kernel(a: &Kernel, b: &Kernel) -> bool {
    matches!((a.key(), b.key()), (Ok(x), Ok(y)) if x == y)
}
