//! The one op set shared by eager execution, the interpreter, the passes, the JIT and
//! autodiff. An op is a value: its attributes are fields; its operands are graph edges.

use std::sync::Arc;

use crate::array::Array;
use crate::dtype::DType;
use crate::graph::Graph;
use crate::shape::Shape;

/// Index of a variable in a graph's variable table.
pub type VarId = u32;

/// Elementwise ops of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnaryOp {
    Neg,
    Abs,
    Exp,
    Log,
    Log1p,
    Expm1,
    Sqrt,
    Rsqrt,
    Square,
    Tanh,
    Sigmoid,
    Relu,
    Softplus,
    Sin,
    Cos,
    Sign,
    Floor,
    Ceil,
    /// Half to even, as TensorFlow.
    Round,
    LogicalNot,
}

impl UnaryOp {
    pub const ALL: [UnaryOp; 20] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Log1p,
        UnaryOp::Expm1,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Square,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Relu,
        UnaryOp::Softplus,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Sign,
        UnaryOp::Floor,
        UnaryOp::Ceil,
        UnaryOp::Round,
        UnaryOp::LogicalNot,
    ];

    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Log1p => "log1p",
            UnaryOp::Expm1 => "expm1",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Square => "square",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::Softplus => "softplus",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Sign => "sign",
            UnaryOp::Floor => "floor",
            UnaryOp::Ceil => "ceil",
            UnaryOp::Round => "round",
            UnaryOp::LogicalNot => "logical_not",
        }
    }

    /// Which dtypes the op accepts (its result has the operand's dtype).
    pub fn accepts(self, d: DType) -> bool {
        match self {
            UnaryOp::LogicalNot => d == DType::Bool,
            UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Square | UnaryOp::Sign | UnaryOp::Relu => d.is_numeric(),
            _ => d.is_float(),
        }
    }
}

/// Elementwise ops of two operands, with numpy broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    /// Integer division truncates toward zero; division by zero is a runtime error.
    Div,
    Pow,
    /// NaN-propagating.
    Maximum,
    /// NaN-propagating.
    Minimum,
    Equal,
    NotEqual,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    LogicalAnd,
    LogicalOr,
}

impl BinaryOp {
    pub const ALL: [BinaryOp; 15] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Equal,
        BinaryOp::NotEqual,
        BinaryOp::Less,
        BinaryOp::LessEqual,
        BinaryOp::Greater,
        BinaryOp::GreaterEqual,
        BinaryOp::LogicalAnd,
        BinaryOp::LogicalOr,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Equal => "equal",
            BinaryOp::NotEqual => "not_equal",
            BinaryOp::Less => "less",
            BinaryOp::LessEqual => "less_equal",
            BinaryOp::Greater => "greater",
            BinaryOp::GreaterEqual => "greater_equal",
            BinaryOp::LogicalAnd => "logical_and",
            BinaryOp::LogicalOr => "logical_or",
        }
    }

    /// Comparisons return `bool` whatever their operands' dtype.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Equal
                | BinaryOp::NotEqual
                | BinaryOp::Less
                | BinaryOp::LessEqual
                | BinaryOp::Greater
                | BinaryOp::GreaterEqual
        )
    }

    /// Which operand dtype the op accepts (both operands share it).
    pub fn accepts(self, d: DType) -> bool {
        match self {
            BinaryOp::LogicalAnd | BinaryOp::LogicalOr => d == DType::Bool,
            BinaryOp::Equal | BinaryOp::NotEqual => true,
            BinaryOp::Pow => d.is_float(),
            _ => d.is_numeric(),
        }
    }

    /// The result dtype for operands of dtype `d`.
    pub fn result_dtype(self, d: DType) -> DType {
        if self.is_comparison() {
            DType::Bool
        } else {
            d
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReduceOp {
    Sum,
    /// Integers: the truncated mean. Floats over an empty axis: NaN.
    Mean,
    /// NaN-propagating; the identity over an empty axis (-inf, or the dtype's minimum).
    Max,
    /// NaN-propagating; the identity over an empty axis (+inf, or the dtype's maximum).
    Min,
    Prod,
}

impl ReduceOp {
    pub const ALL: [ReduceOp; 5] = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min, ReduceOp::Prod];

    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::Prod => "prod",
        }
    }
}

/// `argmax` / `argmin`: result `i64`, ties to the first index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArgOp {
    ArgMax,
    ArgMin,
}

impl ArgOp {
    pub fn name(self) -> &'static str {
        match self {
            ArgOp::ArgMax => "argmax",
            ArgOp::ArgMin => "argmin",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Distribution {
    /// Uniform on [0, 1).
    Uniform,
    /// Standard normal.
    Normal,
}

impl Distribution {
    pub fn name(self) -> &'static str {
        match self {
            Distribution::Uniform => "random_uniform",
            Distribution::Normal => "random_normal",
        }
    }
}

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

/// An operation. Operands are the node's incoming edges, in position order.
#[derive(Clone, Debug)]
pub enum Op {
    // ---- sources ----
    /// The graph's argument at this position.
    Input(usize),
    Const(Array),
    /// The value of a variable (bound at call time, ordered after earlier writes).
    ReadVar(VarId),
    /// Seeded, stateless: the same seed (and optional `i64` scalar operand, mixed into
    /// the seed) gives the same numbers on every machine. Shape and dtype are the node's.
    Random {
        dist: Distribution,
        seed: u64,
    },

    // ---- side effect ----
    /// Writes its operand to the variable. Never removed; committed only if the call succeeds.
    AssignVar(VarId),

    // ---- elementwise ----
    Unary(UnaryOp),
    Binary(BinaryOp),
    /// `select(cond, a, b)`: `a` where `cond`, else `b`; all three broadcast.
    Select,
    Cast(DType),

    // ---- shape and movement ----
    BroadcastTo(Shape),
    Reshape(Shape),
    /// Output axis `i` is input axis `perm[i]`.
    Transpose(Vec<usize>),
    Slice(Vec<SliceDim>),
    /// The transpose of `Slice`: zeros of `shape` with the operand placed where the slice
    /// `dims` would read it from (the VJP of slicing).
    Unslice {
        dims: Vec<SliceDim>,
        shape: Shape,
    },
    Concat {
        axis: usize,
    },
    /// `gather(params, indices)` along `axis`: result shape
    /// `params[..axis] ++ indices ++ params[axis+1..]`. An index out of range is a runtime error.
    Gather {
        axis: usize,
    },
    /// The transpose of `Gather`: zeros of `shape` with `updates` added at `indices`
    /// along `axis` (operands: updates, indices).
    ScatterAdd {
        axis: usize,
        shape: Shape,
    },

    // ---- reductions ----
    /// `axes` sorted and unique.
    Reduce {
        op: ReduceOp,
        axes: Vec<usize>,
        keepdims: bool,
    },
    ArgReduce {
        op: ArgOp,
        axis: usize,
        keepdims: bool,
    },

    // ---- linear algebra ----
    /// `[..., m, k] @ [..., k, n]`, batch dims broadcast.
    MatMul,

    // ---- produced by fusion ----
    Fused(Arc<Kernel>),
}

impl Op {
    /// The op's name as printed in dumps (`add`, `sum`, `read_var`, `fused`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input(_) => "input",
            Op::Const(_) => "const",
            Op::ReadVar(_) => "read_var",
            Op::Random { dist, .. } => dist.name(),
            Op::AssignVar(_) => "assign_var",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Select => "select",
            Op::Cast(_) => "cast",
            Op::BroadcastTo(_) => "broadcast_to",
            Op::Reshape(_) => "reshape",
            Op::Transpose(_) => "transpose",
            Op::Slice(_) => "slice",
            Op::Unslice { .. } => "unslice",
            Op::Concat { .. } => "concat",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::Reduce { op, .. } => op.name(),
            Op::ArgReduce { op, .. } => op.name(),
            Op::MatMul => "matmul",
            Op::Fused(_) => "fused",
        }
    }

    /// Elementwise ops: output element `i` depends only on operand elements at the
    /// (broadcast) index `i`. Fusion groups these.
    pub fn is_elementwise(&self) -> bool {
        matches!(self, Op::Unary(_) | Op::Binary(_) | Op::Select | Op::Cast(_) | Op::BroadcastTo(_))
    }

    /// Ops whose result depends only on their operands and attributes: they may be
    /// folded, merged and removed when unused.
    pub fn is_pure(&self) -> bool {
        !matches!(self, Op::Input(_) | Op::ReadVar(_) | Op::Random { .. } | Op::AssignVar(_))
    }

    /// Ops that must run even if nothing uses their result.
    pub fn has_side_effect(&self) -> bool {
        matches!(self, Op::AssignVar(_))
    }

    /// The variable an op reads or writes, if any.
    pub fn var(&self) -> Option<VarId> {
        match self {
            Op::ReadVar(v) | Op::AssignVar(v) => Some(*v),
            _ => None,
        }
    }
}

/// Ops compare by kind and attributes; constants by dtype, shape and bits; fused kernels
/// by their body's text. This is the equality common-subexpression elimination uses.
impl PartialEq for Op {
    fn eq(&self, other: &Op) -> bool {
        use Op::*;
        match (self, other) {
            (Input(a), Input(b)) => a == b,
            (Const(a), Const(b)) => a.bits_eq(b),
            (ReadVar(a), ReadVar(b)) | (AssignVar(a), AssignVar(b)) => a == b,
            (Random { dist: d1, seed: s1 }, Random { dist: d2, seed: s2 }) => d1 == d2 && s1 == s2,
            (Unary(a), Unary(b)) => a == b,
            (Binary(a), Binary(b)) => a == b,
            (Select, Select) | (MatMul, MatMul) => true,
            (Cast(a), Cast(b)) => a == b,
            (BroadcastTo(a), BroadcastTo(b)) | (Reshape(a), Reshape(b)) => a == b,
            (Transpose(a), Transpose(b)) => a == b,
            (Slice(a), Slice(b)) => a == b,
            (Unslice { dims: d1, shape: s1 }, Unslice { dims: d2, shape: s2 }) => d1 == d2 && s1 == s2,
            (Concat { axis: a }, Concat { axis: b }) | (Gather { axis: a }, Gather { axis: b }) => a == b,
            (ScatterAdd { axis: a1, shape: s1 }, ScatterAdd { axis: a2, shape: s2 }) => a1 == a2 && s1 == s2,
            (Reduce { op: o1, axes: a1, keepdims: k1 }, Reduce { op: o2, axes: a2, keepdims: k2 }) => {
                o1 == o2 && a1 == a2 && k1 == k2
            }
            (ArgReduce { op: o1, axis: a1, keepdims: k1 }, ArgReduce { op: o2, axis: a2, keepdims: k2 }) => {
                o1 == o2 && a1 == a2 && k1 == k2
            }
            (Fused(a), Fused(b)) => Arc::ptr_eq(a, b) || a.body.structurally_eq(&b.body),
            _ => false,
        }
    }
}
