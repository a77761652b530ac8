//! The op table: one row per op, the single source of every op's name, arity, operand
//! rules and (for elementwise ops) the eager API row.
//!
//! Each table is a macro that hands its rows to a callback macro, so the same rows define
//! the enums here ([`UnaryOp`], [`BinaryOp`], [`ReduceOp`], [`ArgOp`], [`Op`] and
//! [`OpKind`]) and, in the `kiln` crate, the `Tensor` methods (`x.tanh()`, `x.try_tanh()`).
//! Everything else that must know an op — its reference kernel (`interp`), its VJP
//! (`kiln::autodiff`), its lowering (`kiln_jit::lower`) — matches on these enums with no
//! catch-all arm, so a new row is a compile error at every site that must handle it.
//! `docs/ARCHITECTURE.md` walks through adding an op.
//!
//! Macros rather than a build script: the rows stay Rust tokens (doc strings, types, field
//! lists) that rust-analyzer and rustdoc follow, and nothing is generated on disk.

use std::sync::Arc;

use crate::array::Array;
use crate::dtype::DType;
use crate::op::{Kernel, SliceDim, VarId};
use crate::region::{CaseOp, ScanOp, WhileGradOp, WhileOp};
use crate::shape::Shape;

/// The unary elementwise ops: `Variant method try_method dtypes cost "doc";`. `dtypes` is
/// `numeric`, `float` or `bool` (the result has the operand's dtype); `cost` is a rough count
/// of vector instructions per element (the executor's threading decision).
#[macro_export]
macro_rules! for_each_unary_op {
    ($callback:ident) => {
        $callback! {
            Neg neg try_neg numeric 1 "`-x`.";
            Abs abs try_abs numeric 1 "`|x|`.";
            Exp exp try_exp float 20 "`e^x`.";
            Log log try_log float 25 "Natural logarithm.";
            Log1p log1p try_log1p float 25 "`ln(1 + x)`, accurate for small `x`.";
            Expm1 expm1 try_expm1 float 20 "`e^x - 1`, accurate for small `x`.";
            Sqrt sqrt try_sqrt float 4 "Square root.";
            Rsqrt rsqrt try_rsqrt float 4 "`1 / sqrt(x)`.";
            Square square try_square numeric 1 "`x * x`.";
            Tanh tanh try_tanh float 30 "Hyperbolic tangent.";
            Sigmoid sigmoid try_sigmoid float 20 "`1 / (1 + e^-x)`, stable for large `|x|`.";
            Relu relu try_relu numeric 1 "`max(x, 0)` (NaN stays NaN).";
            Softplus softplus try_softplus float 45 "`ln(1 + e^x)`, computed without overflow.";
            Sin sin try_sin float 30 "Sine.";
            Cos cos try_cos float 30 "Cosine.";
            Sign sign try_sign numeric 1 "-1, 0 or 1 (NaN stays NaN).";
            Floor floor try_floor float 1 "Round toward -inf.";
            Ceil ceil try_ceil float 1 "Round toward +inf.";
            Round round try_round float 1 "Round half to even (TF's convention).";
            LogicalNot logical_not try_logical_not bool 1 "Boolean not.";
        }
    };
}

/// The binary elementwise ops (numpy broadcasting, both operands of one dtype):
/// `Variant method try_method dtypes -> result cost_float/cost_int "doc";`. `dtypes` is
/// `numeric`, `float`, `bool` or `any`; `result` is `same` (the operands' dtype) or `bool`.
#[macro_export]
macro_rules! for_each_binary_op {
    ($callback:ident) => {
        $callback! {
            Add add try_add numeric -> same 1/1 "Elementwise sum.";
            Sub sub try_sub numeric -> same 1/1 "Elementwise difference.";
            Mul mul try_mul numeric -> same 1/1 "Elementwise product.";
            Div div try_div numeric -> same 3/10
                "Elementwise quotient (integers truncate toward zero; integer division by zero is an error).";
            Pow pow try_pow numeric -> same 90/90
                "`self ^ other` (integers: by squaring, wrapping on overflow; a negative integer exponent is an error).";
            Maximum maximum try_maximum numeric -> same 1/1 "Elementwise maximum (NaN propagates).";
            Minimum minimum try_minimum numeric -> same 1/1 "Elementwise minimum (NaN propagates).";
            Equal equal try_equal any -> bool 1/1 "`==`, giving a `Bool` tensor.";
            NotEqual not_equal try_not_equal any -> bool 1/1 "`!=`, giving a `Bool` tensor.";
            Less less try_less numeric -> bool 1/1 "`<`, giving a `Bool` tensor.";
            LessEqual less_equal try_less_equal numeric -> bool 1/1 "`<=`, giving a `Bool` tensor.";
            Greater greater try_greater numeric -> bool 1/1 "`>`, giving a `Bool` tensor.";
            GreaterEqual greater_equal try_greater_equal numeric -> bool 1/1 "`>=`, giving a `Bool` tensor.";
            LogicalAnd logical_and try_logical_and bool -> same 1/1 "Boolean and.";
            LogicalOr logical_or try_logical_or bool -> same 1/1 "Boolean or.";
        }
    };
}

/// Whether dtype `$d` is in the class named by a table row.
macro_rules! dtype_class {
    (numeric, $d:expr) => {
        $d.is_numeric()
    };
    (float, $d:expr) => {
        $d.is_float()
    };
    (bool, $d:expr) => {
        $d == DType::Bool
    };
    (any, $d:expr) => {{
        let _ = $d;
        true
    }};
}

macro_rules! result_dtype {
    (same, $d:expr) => {
        $d
    };
    (bool, $d:expr) => {{
        let _ = $d;
        DType::Bool
    }};
}

/// `Some(IntUnaryOp::$V)` for a row integers accept (class `numeric`), else `None`.
macro_rules! int_form {
    (numeric, $V:ident) => {
        Some(IntUnaryOp::$V)
    };
    ($class:ident, $V:ident) => {
        None
    };
}

/// Collects the rows of class `numeric` into [`IntUnaryOp`] (a token muncher: the other
/// rows are skipped).
macro_rules! define_int_unary_ops {
    (@collect [$($acc:ident)*]) => {
        /// The unary ops defined on integers: the rows of [`for_each_unary_op!`] of class
        /// `numeric`. Integer kernels match on these, so a new numeric row is a compile error
        /// there and a float-only row needs no arm.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum IntUnaryOp {
            $($acc,)*
        }
    };
    (@collect [$($acc:ident)*] $V:ident $name:ident $try:ident numeric $cost:literal $doc:literal; $($rest:tt)*) => {
        define_int_unary_ops!(@collect [$($acc)* $V] $($rest)*);
    };
    (@collect [$($acc:ident)*] $V:ident $name:ident $try:ident $class:ident $cost:literal $doc:literal; $($rest:tt)*) => {
        define_int_unary_ops!(@collect [$($acc)*] $($rest)*);
    };
    ($($rows:tt)*) => {
        define_int_unary_ops!(@collect [] $($rows)*);
    };
}

macro_rules! define_unary_ops {
    ($($V:ident $name:ident $try:ident $class:ident $cost:literal $doc:literal;)*) => {
        /// Elementwise ops of one operand (rows of [`for_each_unary_op!`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum UnaryOp {
            $(#[doc = $doc] $V,)*
        }

        impl UnaryOp {
            /// Every unary op, in table order.
            pub const ALL: [UnaryOp; [$(stringify!($V)),*].len()] = [$(UnaryOp::$V),*];

            /// The op's name in dumps and in the `Tensor` API (`"tanh"`).
            #[inline]
            pub fn name(self) -> &'static str {
                match self {
                    $(UnaryOp::$V => stringify!($name),)*
                }
            }

            /// The op named `name`, if there is one.
            pub fn from_name(name: &str) -> Option<UnaryOp> {
                UnaryOp::ALL.into_iter().find(|op| op.name() == name)
            }

            /// Which dtypes the op accepts (its result has the operand's dtype).
            #[inline]
            pub fn accepts(self, d: DType) -> bool {
                match self {
                    $(UnaryOp::$V => dtype_class!($class, d),)*
                }
            }

            /// The op as an integer op, if integers accept it.
            pub fn on_ints(self) -> Option<IntUnaryOp> {
                match self {
                    $(UnaryOp::$V => int_form!($class, $V),)*
                }
            }

            /// Rough vector instructions per element.
            pub fn cost(self) -> usize {
                match self {
                    $(UnaryOp::$V => $cost,)*
                }
            }
        }
    };
}

macro_rules! define_binary_ops {
    ($($V:ident $name:ident $try:ident $class:ident -> $res:ident $cf:literal / $ci:literal $doc:literal;)*) => {
        /// Elementwise ops of two operands, with numpy broadcasting (rows of
        /// [`for_each_binary_op!`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum BinaryOp {
            $(#[doc = $doc] $V,)*
        }

        impl BinaryOp {
            /// Every binary op, in table order.
            pub const ALL: [BinaryOp; [$(stringify!($V)),*].len()] = [$(BinaryOp::$V),*];

            /// The op's name in dumps and in the `Tensor` API (`"add"`).
            #[inline]
            pub fn name(self) -> &'static str {
                match self {
                    $(BinaryOp::$V => stringify!($name),)*
                }
            }

            /// The op named `name`, if there is one.
            pub fn from_name(name: &str) -> Option<BinaryOp> {
                BinaryOp::ALL.into_iter().find(|op| op.name() == name)
            }

            /// Which operand dtype the op accepts (both operands share it).
            #[inline]
            pub fn accepts(self, d: DType) -> bool {
                match self {
                    $(BinaryOp::$V => dtype_class!($class, d),)*
                }
            }

            /// The result dtype for operands of dtype `d`.
            #[inline]
            pub fn result_dtype(self, d: DType) -> DType {
                match self {
                    $(BinaryOp::$V => result_dtype!($res, d),)*
                }
            }

            /// Comparisons return `bool` whatever their operands' dtype.
            pub fn is_comparison(self) -> bool {
                self.result_dtype(DType::F32) == DType::Bool && self.accepts(DType::F32)
            }

            /// Rough vector instructions per element on operands of dtype `d`.
            pub fn cost(self, d: DType) -> usize {
                match self {
                    $(BinaryOp::$V => if d.is_int() { $ci } else { $cf },)*
                }
            }
        }
    };
}

for_each_unary_op!(define_unary_ops);
for_each_unary_op!(define_int_unary_ops);
for_each_binary_op!(define_binary_ops);

/// Small named enums: `Enum { Variant "name" "doc"; ... }` with `ALL`, `name`, `from_name`.
macro_rules! named_enum {
    ($(#[$m:meta])* $E:ident { $($V:ident $name:literal $doc:literal;)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $E {
            $(#[doc = $doc] $V,)*
        }

        impl $E {
            /// Every variant, in table order.
            pub const ALL: [$E; [$($name),*].len()] = [$($E::$V),*];

            /// The name in dumps and files.
            #[inline]
            pub fn name(self) -> &'static str {
                match self {
                    $($E::$V => $name,)*
                }
            }

            /// The variant named `name`, if there is one.
            pub fn from_name(name: &str) -> Option<$E> {
                $E::ALL.into_iter().find(|v| v.name() == name)
            }
        }
    };
}

named_enum! {
    /// Reductions over a set of axes.
    ReduceOp {
        Sum "sum" "Sum (integers wrap).";
        Mean "mean" "Integers: the truncated mean. Floats over an empty axis: NaN.";
        Max "max" "NaN-propagating; the identity over an empty axis (-inf, or the dtype's minimum).";
        Min "min" "NaN-propagating; the identity over an empty axis (+inf, or the dtype's maximum).";
        Prod "prod" "Product.";
    }
}

named_enum! {
    /// `argmax` / `argmin`: result `i64`, ties to the first index.
    ArgOp {
        ArgMax "argmax" "Index of the largest element.";
        ArgMin "argmin" "Index of the smallest element.";
    }
}

named_enum! {
    /// Distributions of `Op::Random`.
    Distribution {
        Uniform "random_uniform" "Uniform on [0, 1).";
        Normal "random_normal" "Standard normal.";
    }
}

/// How many operands an op takes: at least `min`, at most `max` (`None`: no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arity {
    pub min: usize,
    pub max: Option<usize>,
}

impl std::fmt::Display for Arity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.max {
            Some(m) if m == self.min => write!(f, "{m}"),
            Some(m) => write!(f, "{} to {m}", self.min),
            None => write!(f, "at least {}", self.min),
        }
    }
}

impl Arity {
    /// Whether `n` operands are allowed.
    #[inline]
    pub fn allows(self, n: usize) -> bool {
        n >= self.min && self.max.is_none_or(|m| n <= m)
    }
}

/// One slot of the arity column: `n` (exactly), `n..` (at least) or `n..=m`.
macro_rules! arity {
    ($n:literal) => {
        Arity { min: $n, max: Some($n) }
    };
    ($n:literal ..) => {
        Arity { min: $n, max: None }
    };
    ($n:literal ..= $m:literal) => {
        Arity { min: $n, max: Some($m) }
    };
}

/// The graph ops: `Variant(fields) name [arity] flags "doc";`. `flags` lists `elementwise`
/// (output element `i` reads only operand elements at the broadcast index `i`: fusion
/// groups these), `impure` (depends on more than operands and attributes: never folded,
/// merged or removed as dead) and `effect` (runs even if unused).
macro_rules! for_each_op {
    ($callback:ident) => {
        $callback! {
            Input(usize) input [0] (impure) "The graph's argument at this position.";
            Const(Array) const [0] () "A constant.";
            ReadVar(VarId) read_var [0] (impure)
                "The value of a variable (bound at call time, ordered after earlier writes).";
            Random { dist: Distribution, seed: u64 } random [0..=1] (impure)
                "Seeded, stateless: the same seed (and optional `i64` scalar operand, mixed into the seed) gives the same numbers on every machine. Shape and dtype are the node's.";
            AssignVar(VarId) assign_var [1] (impure effect)
                "Writes its operand to the variable. Never removed; committed only if the call succeeds.";
            Unary(UnaryOp) unary [1] (elementwise) "A unary elementwise op.";
            Binary(BinaryOp) binary [2] (elementwise) "A binary elementwise op.";
            Select select [3] (elementwise) "`select(cond, a, b)`: `a` where `cond`, else `b`; all three broadcast.";
            Cast(DType) cast [1] (elementwise) "Conversion to a dtype (Rust `as` semantics, saturating).";
            BroadcastTo(Shape) broadcast_to [1] (elementwise) "numpy broadcasting to a shape.";
            Reshape(Shape) reshape [1] () "The same elements in a new shape.";
            Transpose(Vec<usize>) transpose [1] () "Output axis `i` is input axis `perm[i]`.";
            Slice(Vec<SliceDim>) slice [1] () "A strided slice per axis.";
            Unslice { dims: Vec<SliceDim>, shape: Shape } unslice [1] ()
                "The transpose of `Slice`: zeros of `shape` with the operand placed where the slice `dims` would read it from (the VJP of slicing).";
            Concat { axis: usize } concat [1..] () "Concatenation along `axis`.";
            Gather { axis: usize } gather [2] ()
                "`gather(params, indices)` along `axis`: result shape `params[..axis] ++ indices ++ params[axis+1..]`. An index out of range is a runtime error.";
            ScatterAdd { axis: usize, shape: Shape } scatter_add [2] ()
                "The transpose of `Gather`: zeros of `shape` with `updates` added at `indices` along `axis` (operands: updates, indices).";
            Reduce { op: ReduceOp, axes: Vec<usize>, keepdims: bool } reduce [1] () "`axes` sorted and unique.";
            ArgReduce { op: ArgOp, axis: usize, keepdims: bool } arg_reduce [1] () "`argmax`/`argmin` along `axis`.";
            MatMul matmul [2] () "`[..., m, k] @ [..., k, n]`, batch dims broadcast.";
            Fused(Arc<Kernel>) fused [0..] () "A fused kernel (made by the fusion pass); operands are its body's inputs.";
            Case(Arc<CaseOp>) case [1..] (impure)
                "`cond` / `switch_case`: runs the branch the first operand chooses (`region.rs`). Its results are read by `get`.";
            While(Arc<WhileOp>) while [0..] (impure)
                "`while_loop` (`region.rs`). Its results are read by `get`.";
            Scan(Arc<ScanOp>) scan [0..] (impure)
                "`scan` and `fori_loop`: a fixed number of steps (`region.rs`). Its results are read by `get`.";
            WhileGrad(Arc<WhileGradOp>) while_grad [0..] (impure)
                "The reverse pass of a `while` loop (`region.rs`). Its results are read by `get`.";
            Get(usize) get [1] () "Result `i` of a region op.";
            Print(String) print [0..] (impure effect)
                "Prints the message and its operands' values when it runs (`kiln::print`); its own value is `unit`.";
            AllReduce(ReduceOp) all_reduce [1] (impure effect)
                "Every process's operand combined elementwise by the reduction (`kiln::distributed`; the operand itself on one process). A collective: runs in program order, never folded, merged or removed (`interp::collective`).";
            Broadcast(usize) broadcast [1] (impure effect)
                "The operand of the process whose rank is the attribute, on every process (a collective).";
            AllGather(usize) all_gather [1] (impure effect)
                "Every process's operand, stacked in rank order on a new leading axis whose length, the attribute, is the number of processes when traced (a collective).";
        }
    };
}

macro_rules! has_flag {
    ($want:ident;) => {
        false
    };
    (elementwise; elementwise $($rest:ident)*) => { true };
    (impure; impure $($rest:ident)*) => { true };
    (effect; effect $($rest:ident)*) => { true };
    ($want:ident; $other:ident $($rest:ident)*) => {
        has_flag!($want; $($rest)*)
    };
}

macro_rules! define_ops {
    ($(
        $V:ident $(( $($t:ty),* ))? $({ $($f:ident : $ft:ty),* })?
        $name:ident [$($arity:tt)*] ($($flag:ident)*) $doc:literal;
    )*) => {
        /// An operation. Operands are the node's incoming edges, in position order; attributes
        /// are fields. One row each of the op table (`ir/src/op_table.rs`).
        #[derive(Clone, Debug)]
        pub enum Op {
            $(#[doc = $doc] $V $(( $($t),* ))? $({ $($f: $ft),* })?,)*
        }

        /// The kind of an [`Op`], without its attributes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum OpKind {
            $(#[doc = $doc] $V,)*
        }

        impl OpKind {
            /// Every kind of op, in table order.
            pub const ALL: [OpKind; [$(stringify!($V)),*].len()] = [$(OpKind::$V),*];

            /// The table's name of the kind (`"matmul"`, `"unary"`).
            #[inline]
            pub fn name(self) -> &'static str {
                match self {
                    $(OpKind::$V => stringify!($name),)*
                }
            }

            /// How many operands the op takes.
            #[inline]
            pub fn arity(self) -> Arity {
                match self {
                    $(OpKind::$V => arity!($($arity)*),)*
                }
            }

            /// Output element `i` depends only on operand elements at the broadcast index `i`.
            pub fn is_elementwise(self) -> bool {
                match self {
                    $(OpKind::$V => has_flag!(elementwise; $($flag)*),)*
                }
            }

            /// The result depends only on operands and attributes: the op may be folded,
            /// merged and removed when unused.
            pub fn is_pure(self) -> bool {
                match self {
                    $(OpKind::$V => !has_flag!(impure; $($flag)*),)*
                }
            }

            /// The op must run even if nothing uses its result.
            pub fn has_side_effect(self) -> bool {
                match self {
                    $(OpKind::$V => has_flag!(effect; $($flag)*),)*
                }
            }
        }

        impl Op {
            /// The op's kind.
            #[inline]
            pub fn kind(&self) -> OpKind {
                match self {
                    $(Op::$V { .. } => OpKind::$V,)*
                }
            }
        }
    };
}

for_each_op!(define_ops);
