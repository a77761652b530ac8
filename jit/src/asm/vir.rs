//! The vector IR: one loop iteration of an f32 kernel's body as straight-line
//! instructions on full-width values (16 lanes on AVX-512, 8 on AVX2), built from a
//! [`Program`] and, for transcendentals, from the same [`Ops`] algorithms the Cranelift code
//! and the host routines run, so every path computes the same bits.
//!
//! Constants live in a pool in memory and enter an instruction as its last source operand
//! (x86's memory operand), so they cost no register; [`Vir::mat`] loads one into a register
//! where the instruction form needs it elsewhere.

use std::collections::HashMap;

use kiln_ir::{BinaryOp, DType, UnaryOp};

use crate::lower::{Ins, Program};
use crate::math::{exp, log, special, Ops};

/// An f32's sign bit: `neg` flips it, `abs` clears it.
const SIGN: u32 = 0x8000_0000;

/// A value: the index of the instruction that makes it.
pub(crate) type Val = usize;

/// An operand: a value in a register, or constant `k` of the pool (lane bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arg {
    V(Val),
    K(usize),
}

/// Lane-wise operations on two vector operands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bin {
    FAdd,
    FSub,
    FMul,
    FDiv,
    /// Integer lanes (i32), wrapping.
    IAdd,
    ISub,
    /// Bitwise.
    And,
    Xor,
}

impl Bin {
    fn commutes(self) -> bool {
        matches!(self, Bin::FAdd | Bin::FMul | Bin::IAdd | Bin::And | Bin::Xor)
    }
}

/// Shifts of i32 lanes by a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shift {
    Left,
    /// Arithmetic (sign-filling).
    RightArith,
    /// Logical (zero-filling).
    Right,
}

/// Float comparison predicates, with the `vcmpps` immediates (ordered ones are false on
/// NaN; `Ne` is true on NaN, as Cranelift's `ne` and Rust's `!=` are).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FCmp {
    Eq = 0x00,
    Unord = 0x03,
    Ne = 0x04,
    Lt = 0x11,
    Le = 0x12,
    Ge = 0x1d,
    Gt = 0x1e,
}

impl FCmp {
    /// The predicate with its operands swapped: `a p b == b p.swapped() a`.
    fn swapped(self) -> FCmp {
        match self {
            FCmp::Lt => FCmp::Gt,
            FCmp::Gt => FCmp::Lt,
            FCmp::Le => FCmp::Ge,
            FCmp::Ge => FCmp::Le,
            p => p,
        }
    }
}

/// Signed comparisons of i32 lanes (AVX2 has only these two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ICmp {
    Eq,
    Gt,
}

/// One instruction; its value is a vector, or (comparisons and mask logic) a lane mask.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Inst {
    /// A full vector of leaf `l` at the iteration index, `u` vectors on (in an unrolled body).
    Load(usize, usize),
    /// Leaf `l`'s single element in every lane.
    Splat(usize),
    /// Constant `k` in a register.
    Mat(usize),
    Bin(Bin, Val, Arg),
    Shift(Shift, Val, u32),
    Sqrt(Val),
    /// `a * b + c`, rounded once; at most one operand is a constant.
    Fma(Arg, Arg, Arg),
    /// `-(a * b) + c`, rounded once (the same bits as `Fma` of `-a`).
    Fnma(Arg, Arg, Arg),
    /// x86's `maxps`: `a > b ? a : b` (so `b` when either is NaN).
    Max(Val, Arg),
    /// x86's `minps`: `a < b ? a : b`.
    Min(Val, Arg),
    Cmp(FCmp, Val, Arg),
    ICmp(ICmp, Val, Arg),
    MaskAnd(Val, Val),
    MaskOr(Val, Val),
    /// Lane-wise not; `K(k)` holds all ones (AVX2 flips a vector mask with it).
    MaskNot(Val, usize),
    /// `m ? a : b`, lane by lane.
    Blend(Val, Arg, Val),
}

impl Inst {
    /// Whether the value is a lane mask.
    pub fn is_mask(&self) -> bool {
        matches!(self, Inst::Cmp(..) | Inst::ICmp(..) | Inst::MaskAnd(..) | Inst::MaskOr(..) | Inst::MaskNot(..))
    }

    /// The instruction reading values `f(v)` instead of `v`.
    pub fn renumbered(&self, f: impl Fn(Val) -> Val) -> Inst {
        let arg = |a: Arg| match a {
            Arg::V(v) => Arg::V(f(v)),
            k => k,
        };
        match *self {
            Inst::Load(..) | Inst::Splat(_) | Inst::Mat(_) => self.clone(),
            Inst::Bin(op, a, b) => Inst::Bin(op, f(a), arg(b)),
            Inst::Shift(op, a, n) => Inst::Shift(op, f(a), n),
            Inst::Sqrt(a) => Inst::Sqrt(f(a)),
            Inst::Fma(a, b, c) => Inst::Fma(arg(a), arg(b), arg(c)),
            Inst::Fnma(a, b, c) => Inst::Fnma(arg(a), arg(b), arg(c)),
            Inst::Max(a, b) => Inst::Max(f(a), arg(b)),
            Inst::Min(a, b) => Inst::Min(f(a), arg(b)),
            Inst::Cmp(p, a, b) => Inst::Cmp(p, f(a), arg(b)),
            Inst::ICmp(p, a, b) => Inst::ICmp(p, f(a), arg(b)),
            Inst::MaskAnd(a, b) => Inst::MaskAnd(f(a), f(b)),
            Inst::MaskOr(a, b) => Inst::MaskOr(f(a), f(b)),
            Inst::MaskNot(a, k) => Inst::MaskNot(f(a), k),
            Inst::Blend(m, a, b) => Inst::Blend(f(m), arg(a), f(b)),
        }
    }

    /// The values the instruction reads.
    pub fn operands(&self) -> Vec<Val> {
        let arg = |a: &Arg| match a {
            Arg::V(v) => Some(*v),
            Arg::K(_) => None,
        };
        match self {
            Inst::Load(..) | Inst::Splat(_) | Inst::Mat(_) => vec![],
            Inst::Bin(_, a, b) | Inst::Cmp(_, a, b) | Inst::ICmp(_, a, b) | Inst::Max(a, b) | Inst::Min(a, b) => {
                [Some(*a), arg(b)].into_iter().flatten().collect()
            }
            Inst::Shift(_, a, _) | Inst::Sqrt(a) | Inst::MaskNot(a, _) => vec![*a],
            Inst::Fma(a, b, c) | Inst::Fnma(a, b, c) => [a, b, c].into_iter().filter_map(arg).collect(),
            Inst::MaskAnd(a, b) | Inst::MaskOr(a, b) => vec![*a, *b],
            Inst::Blend(m, a, b) => [Some(*m), arg(a), Some(*b)].into_iter().flatten().collect(),
        }
    }
}

/// How a leaf is read along a row of the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeafRead {
    /// Contiguous: column `i` at index `i` (of the leaf's row).
    Vector,
    /// One element for the whole row, broadcast.
    Scalar,
}

/// The loop body of one kernel.
#[derive(Clone, Debug)]
pub(crate) struct Vir {
    pub insts: Vec<Inst>,
    /// The pool's constants, as i32/f32 lane bits.
    pub consts: Vec<u32>,
    /// The values stored at the iteration index, one vector after another (one per copy
    /// of an unrolled body).
    pub roots: Vec<Val>,
    /// AVX-512 (masks in `k` registers), else AVX2 (masks are vectors).
    pub avx512: bool,
    const_ids: HashMap<u32, usize>,
}

impl Vir {
    /// The body of `prog` (for a reduction: of the value reduced), whose leaves are read as
    /// `leaves` says (one entry a leaf), or `None` when the emitter does not cover it: f32 values only (no
    /// cast, no integer or bool leaf), with the ops below.
    pub fn build(prog: &Program, leaves: &[LeafRead], avx512: bool) -> Option<Vir> {
        if prog.out_dtype != DType::F32 || prog.out_numel == 0 {
            return None;
        }
        if prog.leaves.iter().any(|l| l.dtype != DType::F32) {
            return None;
        }
        let mut v = Vir { insts: vec![], consts: vec![], roots: vec![], avx512, const_ids: HashMap::new() };
        let mut vals: Vec<Arg> = Vec::with_capacity(prog.ins.len());
        for ins in &prog.ins {
            let a = |k: usize| vals[k];
            let x = match *ins {
                Ins::Leaf(l) => match leaves[l] {
                    LeafRead::Vector => Arg::V(v.push(Inst::Load(l, 0))),
                    LeafRead::Scalar => Arg::V(v.push(Inst::Splat(l))),
                },
                Ins::Scalar(DType::F32, bits) => Arg::K(v.konst(bits as u32)),
                Ins::Unary(op, DType::F32, x) => v.unary(op, a(x))?,
                Ins::Binary(op, DType::F32, x, y) => v.binary(op, a(x), a(y))?,
                Ins::Select(DType::F32, c, x, y) => {
                    let Arg::V(m) = a(c) else { return None };
                    if !v.insts[m].is_mask() {
                        return None;
                    }
                    Arg::V(v.blend(m, a(x), a(y)))
                }
                _ => return None,
            };
            vals.push(x);
        }
        let root = match vals[prog.root] {
            Arg::V(r) if !v.insts[r].is_mask() => r,
            Arg::V(_) => return None,
            Arg::K(k) => v.push(Inst::Mat(k)),
        };
        v.roots = vec![root];
        v.dce();
        Some(v)
    }

    /// The body's value scaled for a float mean of `count` values, as the lowering sums
    /// it (`lower/accum.rs`: each value times 2^-k, 2^k the power of two at or above
    /// `count`, so the sum cannot overflow); returns the pool constant the sum is then
    /// divided by (`count` times the same scale).
    pub fn mean_terms(&mut self, count: usize) -> usize {
        let scale = 2f64.powi(-(count.max(1).next_power_of_two().trailing_zeros() as i32));
        let k = Arg::K(self.konst((scale as f32).to_bits()));
        let root = self.push(Inst::Bin(Bin::FMul, self.roots[0], k));
        self.roots = vec![root];
        self.konst((((count as f32) as f64 * scale) as f32).to_bits())
    }

    /// `u` copies of the (single) body computing `u` consecutive vectors, interleaved
    /// instruction by instruction: one body is a long dependency chain (a transcendental is
    /// dozens of steps), and independent copies side by side keep the vector units busy
    /// where the out-of-order window alone does not.
    pub fn unroll(&self, u: usize) -> Vir {
        let map = |v: Val, c: usize| v * u + c;
        let mut insts = Vec::with_capacity(self.insts.len() * u);
        for inst in &self.insts {
            for c in 0..u {
                insts.push(match *inst {
                    Inst::Load(l, _) => Inst::Load(l, c),
                    ref i => i.renumbered(|v| map(v, c)),
                });
            }
        }
        let roots = (0..u).map(|c| map(self.roots[0], c)).collect();
        Vir { insts, roots, ..self.clone() }
    }

    fn push(&mut self, i: Inst) -> Val {
        self.insts.push(i);
        self.insts.len() - 1
    }

    /// The pool index of the constant with lane bits `bits`.
    pub fn konst(&mut self, bits: u32) -> usize {
        let next = self.consts.len();
        *self.const_ids.entry(bits).or_insert_with(|| {
            self.consts.push(bits);
            next
        })
    }

    /// `a` in a register.
    pub fn mat(&mut self, a: Arg) -> Val {
        match a {
            Arg::V(v) => v,
            Arg::K(k) => self.push(Inst::Mat(k)),
        }
    }

    fn bin(&mut self, op: Bin, a: Arg, b: Arg) -> Arg {
        let (a, b) = match (a, b) {
            (Arg::K(_), Arg::V(_)) if op.commutes() => (b, a),
            _ => (a, b),
        };
        let a = self.mat(a);
        Arg::V(self.push(Inst::Bin(op, a, b)))
    }

    fn shift(&mut self, op: Shift, a: Arg, n: u32) -> Arg {
        let a = self.mat(a);
        Arg::V(self.push(Inst::Shift(op, a, n)))
    }

    fn cmp(&mut self, p: FCmp, a: Arg, b: Arg) -> Val {
        let (p, a, b) = match (a, b) {
            (Arg::K(_), Arg::V(_)) => (p.swapped(), b, a),
            _ => (p, a, b),
        };
        let a = self.mat(a);
        self.push(Inst::Cmp(p, a, b))
    }

    /// `m ? a : b`. A select on a comparison of the same two values is x86's `maxps` or
    /// `minps` where their NaN rule is the select's (clamps are such selects): one
    /// instruction for the two (the comparison then goes unused, and `dce` drops it).
    fn blend(&mut self, m: Val, a: Arg, b: Arg) -> Val {
        if let Inst::Cmp(p, x, y) = self.insts[m] {
            // (b < a) ? a : b == maxps(a, b); (b > a) ? a : b == minps(a, b);
            // (a < b) ? a : b == minps(a, b); (a > b) ? a : b == maxps(a, b).
            let same = |u: Arg, v: Arg| Arg::V(x) == u && y == v;
            let op = match p {
                FCmp::Lt if same(b, a) => Some(true),
                FCmp::Gt if same(b, a) => Some(false),
                FCmp::Lt if same(a, b) => Some(false),
                FCmp::Gt if same(a, b) => Some(true),
                _ => None,
            };
            if let Some(max) = op {
                let a = self.mat(a);
                return self.push(if max { Inst::Max(a, b) } else { Inst::Min(a, b) });
            }
        }
        let b = self.mat(b);
        self.push(Inst::Blend(m, a, b))
    }

    fn fma(&mut self, a: Arg, b: Arg, c: Arg) -> Arg {
        let (a, b) = if matches!(a, Arg::K(_)) { (b, a) } else { (a, b) };
        // fma(-x, b, c) is fnma(x, b, c), bit for bit (negation is exact).
        let (a, negated) = match a {
            Arg::V(v) => match self.insts[v] {
                Inst::Bin(Bin::Xor, x, Arg::K(k)) if self.consts[k] == SIGN => (Arg::V(x), true),
                _ => (a, false),
            },
            Arg::K(_) => (Arg::V(self.mat(a)), false),
        };
        // At most one constant: keep `b`'s or `c`'s in memory, load the other.
        let c = if matches!(b, Arg::K(_)) { Arg::V(self.mat(c)) } else { c };
        Arg::V(self.push(if negated { Inst::Fnma(a, b, c) } else { Inst::Fma(a, b, c) }))
    }

    /// Drops instructions no stored value depends on (comparisons a `maxps` replaced,
    /// negations an `fnma` absorbed), renumbering the rest.
    fn dce(&mut self) {
        let n = self.insts.len();
        let mut live = vec![false; n];
        for &r in &self.roots {
            live[r] = true;
        }
        for i in (0..n).rev() {
            if live[i] {
                for v in self.insts[i].operands() {
                    live[v] = true;
                }
            }
        }
        let mut new_index = vec![usize::MAX; n];
        let mut kept = Vec::with_capacity(n);
        for (i, inst) in self.insts.iter().enumerate() {
            if live[i] {
                new_index[i] = kept.len();
                kept.push(inst.clone());
            }
        }
        let remapped: Vec<Inst> = kept.iter().map(|inst| inst.renumbered(|v| new_index[v])).collect();
        self.insts = remapped;
        self.roots = self.roots.iter().map(|&r| new_index[r]).collect();
    }

    /// Kernel-level unary ops, with the lowering's semantics (`lower/ops.rs`).
    fn unary(&mut self, op: UnaryOp, x: Arg) -> Option<Arg> {
        Some(match op {
            UnaryOp::Neg => Ops::neg(self, x),
            UnaryOp::Abs => Ops::abs(self, x),
            UnaryOp::Sqrt => {
                let x = self.mat(x);
                Arg::V(self.push(Inst::Sqrt(x)))
            }
            UnaryOp::Square => self.bin(Bin::FMul, x, x),
            UnaryOp::Rsqrt => {
                let x = self.mat(x);
                let s = Arg::V(self.push(Inst::Sqrt(x)));
                let one = Ops::k(self, 1.0);
                self.bin(Bin::FDiv, one, s)
            }
            UnaryOp::Relu => {
                // x < 0 ? +0 : x  (NaN and -0 pass through)
                let zero = Arg::K(self.konst(0));
                let neg = self.cmp(FCmp::Lt, x, zero);
                Arg::V(self.blend(neg, zero, x))
            }
            UnaryOp::Exp => exp::exp(self, x),
            UnaryOp::Expm1 => exp::expm1(self, x),
            UnaryOp::Log => log::log(self, x),
            UnaryOp::Log1p => log::log1p(self, x),
            UnaryOp::Tanh => special::tanh(self, x),
            UnaryOp::Sigmoid => special::sigmoid(self, x),
            UnaryOp::Softplus => special::softplus(self, x),
            // Trig needs the host's libm for huge arguments; rounding, sign: not yet here.
            UnaryOp::Sin
            | UnaryOp::Cos
            | UnaryOp::Floor
            | UnaryOp::Ceil
            | UnaryOp::Round
            | UnaryOp::Sign
            | UnaryOp::LogicalNot => return None,
        })
    }

    /// Kernel-level binary ops on f32, with the lowering's semantics (`lower/ops.rs`).
    fn binary(&mut self, op: BinaryOp, a: Arg, b: Arg) -> Option<Arg> {
        let cmp = |v: &mut Vir, p: FCmp| Some(Arg::V(v.cmp(p, a, b)));
        match op {
            BinaryOp::Add => Some(self.bin(Bin::FAdd, a, b)),
            BinaryOp::Sub => Some(self.bin(Bin::FSub, a, b)),
            BinaryOp::Mul => Some(self.bin(Bin::FMul, a, b)),
            BinaryOp::Div => Some(self.bin(Bin::FDiv, a, b)),
            // NaN-propagating, `a` on ties: `a >= b || isnan(a) ? a : b` (and `<=`).
            BinaryOp::Maximum | BinaryOp::Minimum => {
                let p = if op == BinaryOp::Maximum { FCmp::Ge } else { FCmp::Le };
                let keep = self.cmp(p, a, b);
                let nan = self.cmp(FCmp::Unord, a, a);
                let m = self.push(Inst::MaskOr(keep, nan));
                Some(Arg::V(self.blend(m, a, b)))
            }
            BinaryOp::Equal => cmp(self, FCmp::Eq),
            BinaryOp::NotEqual => cmp(self, FCmp::Ne),
            BinaryOp::Less => cmp(self, FCmp::Lt),
            BinaryOp::LessEqual => cmp(self, FCmp::Le),
            BinaryOp::Greater => cmp(self, FCmp::Gt),
            BinaryOp::GreaterEqual => cmp(self, FCmp::Ge),
            // pow computes f32 in f64 (Cranelift's); the logical ops take bools.
            BinaryOp::Pow | BinaryOp::LogicalAnd | BinaryOp::LogicalOr => None,
        }
    }

    /// The body as text, one instruction a line with its register (`regs`), for dumps.
    pub fn listing(&self, regs: &[usize]) -> String {
        let mut s = String::new();
        for (i, inst) in self.insts.iter().enumerate() {
            let class = if inst.is_mask() && self.avx512 { "k" } else { "v" };
            s.push_str(&format!("v{i} = {inst:?}  ; {class}{}\n", regs[i]));
        }
        for r in &self.roots {
            s.push_str(&format!("store v{r}\n"));
        }
        for (k, bits) in self.consts.iter().enumerate() {
            s.push_str(&format!("K({k}) = {bits:#010x} ({:e})\n", f32::from_bits(*bits)));
        }
        s
    }
}

/// The approximations, on full-width values: each operation one instruction (or two where
/// a constant must be in a register), exactly as the host routines compute it.
impl Ops for Vir {
    type F = Arg;
    type I = Arg;
    type M = Val;

    fn is_f32(&self) -> bool {
        true
    }
    fn k(&mut self, c: f64) -> Arg {
        Arg::K(self.konst((c as f32).to_bits()))
    }
    fn ki(&mut self, c: i64) -> Arg {
        Arg::K(self.konst(c as i32 as u32))
    }
    fn add(&mut self, a: Arg, b: Arg) -> Arg {
        self.bin(Bin::FAdd, a, b)
    }
    fn sub(&mut self, a: Arg, b: Arg) -> Arg {
        self.bin(Bin::FSub, a, b)
    }
    fn mul(&mut self, a: Arg, b: Arg) -> Arg {
        self.bin(Bin::FMul, a, b)
    }
    fn div(&mut self, a: Arg, b: Arg) -> Arg {
        self.bin(Bin::FDiv, a, b)
    }
    fn madd(&mut self, a: Arg, b: Arg, c: Arg) -> Arg {
        self.fma(a, b, c)
    }
    fn neg(&mut self, a: Arg) -> Arg {
        let s = Arg::K(self.konst(SIGN));
        self.bin(Bin::Xor, a, s)
    }
    fn abs(&mut self, a: Arg) -> Arg {
        let m = Arg::K(self.konst(!SIGN));
        self.bin(Bin::And, a, m)
    }
    fn lt(&mut self, a: Arg, b: Arg) -> Val {
        self.cmp(FCmp::Lt, a, b)
    }
    fn gt(&mut self, a: Arg, b: Arg) -> Val {
        self.cmp(FCmp::Gt, a, b)
    }
    fn ge(&mut self, a: Arg, b: Arg) -> Val {
        self.cmp(FCmp::Ge, a, b)
    }
    fn eq(&mut self, a: Arg, b: Arg) -> Val {
        self.cmp(FCmp::Eq, a, b)
    }
    fn is_nan(&mut self, a: Arg) -> Val {
        let a = self.mat(a);
        self.push(Inst::Cmp(FCmp::Unord, a, Arg::V(a)))
    }
    fn and(&mut self, a: Val, b: Val) -> Val {
        self.push(Inst::MaskAnd(a, b))
    }
    fn sel(&mut self, m: Val, a: Arg, b: Arg) -> Arg {
        Arg::V(self.blend(m, a, b))
    }
    fn sel_i(&mut self, m: Val, a: Arg, b: Arg) -> Arg {
        Arg::V(self.blend(m, a, b))
    }
    fn bits(&mut self, a: Arg) -> Arg {
        a
    }
    fn of_bits(&mut self, a: Arg) -> Arg {
        a
    }
    fn iadd(&mut self, a: Arg, b: Arg) -> Arg {
        self.bin(Bin::IAdd, a, b)
    }
    fn isub(&mut self, a: Arg, b: Arg) -> Arg {
        self.bin(Bin::ISub, a, b)
    }
    fn iand(&mut self, a: Arg, b: Arg) -> Arg {
        self.bin(Bin::And, a, b)
    }
    fn ixor(&mut self, a: Arg, b: Arg) -> Arg {
        self.bin(Bin::Xor, a, b)
    }
    fn shl(&mut self, a: Arg, n: u32) -> Arg {
        self.shift(Shift::Left, a, n)
    }
    fn sshr(&mut self, a: Arg, n: u32) -> Arg {
        self.shift(Shift::RightArith, a, n)
    }
    fn ushr(&mut self, a: Arg, n: u32) -> Arg {
        self.shift(Shift::Right, a, n)
    }
    fn igt(&mut self, a: Arg, b: Arg) -> Val {
        let a = self.mat(a);
        self.push(Inst::ICmp(ICmp::Gt, a, b))
    }
    fn ige(&mut self, a: Arg, b: Arg) -> Val {
        // a >= b == !(b > a)
        let b = self.mat(b);
        let gt = self.push(Inst::ICmp(ICmp::Gt, b, a));
        let ones = self.konst(u32::MAX);
        self.push(Inst::MaskNot(gt, ones))
    }
    fn ieq(&mut self, a: Arg, b: Arg) -> Val {
        let (a, b) = if matches!(a, Arg::K(_)) { (b, a) } else { (a, b) };
        let a = self.mat(a);
        self.push(Inst::ICmp(ICmp::Eq, a, b))
    }
}
