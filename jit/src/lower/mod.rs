//! Lowering of a fused kernel body to one Cranelift function.
//!
//! [`analyze`] turns the body graph into a [`Program`]: a straight-line list of
//! elementwise instructions over *leaves* (the operands and non-scalar constants, each
//! read through broadcast strides), plus an optional trailing reduction. [`build`] then
//! emits the loop nest for it:
//!
//! - elementwise (`elementwise.rs`): rows of the innermost dimension, 128-bit vectors
//!   unrolled 4x, one vector at a time, then a scalar tail;
//! - reductions (`reduce.rs`): over the innermost axis with four vector accumulators, or
//!   over outer axes vectorized across adjacent outputs; arg-reductions element by element.
//!
//! Index math lives in `index.rs`, one op's IR in `ops.rs`.

mod accum;
mod elementwise;
pub(crate) mod index;
mod loops;
mod ops;
mod reduce;
mod tiled;

use std::collections::HashMap;

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, MemFlagsData, Signature, Type, Value};
use cranelift_codegen::isa::CallConv;
use kiln_ir::{ArgOp, BinaryOp, DType, Error, Kernel, NodeId, Op, ReduceOp, Result, Shape, UnaryOp};

use crate::code::Sym;
use crate::math::wide::MathPath;
use crate::math::Fx;

pub(crate) use accum::mean_i128_addr;

/// Where a leaf's data comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Src {
    /// The kernel's operand `i` (`inputs[i]` at run time).
    Input(usize),
    /// Constant number `k`, embedded in the compiled kernel.
    Const(usize),
}

/// A value read from memory at the (broadcast) iteration index.
#[derive(Clone, Debug)]
pub(crate) struct Leaf {
    pub src: Src,
    pub dtype: DType,
    pub shape: Shape,
}

/// One elementwise instruction; operands are indices of earlier instructions.
#[derive(Clone, Debug)]
pub(crate) enum Ins {
    Leaf(usize),
    /// A scalar constant: `bits` holds the value as the dtype's bit pattern (bool: 0/1).
    Scalar(DType, u64),
    Unary(UnaryOp, DType, usize),
    /// The dtype is the operands'.
    Binary(BinaryOp, DType, usize, usize),
    Select(DType, usize, usize, usize),
    Cast(DType, DType, usize),
}

impl Ins {
    /// The dtype of the instruction's result.
    pub fn dtype(&self, prog: &Program) -> DType {
        match self {
            Ins::Leaf(l) => prog.leaves[*l].dtype,
            Ins::Scalar(d, _) | Ins::Unary(_, d, _) | Ins::Select(d, ..) | Ins::Cast(_, d, _) => *d,
            Ins::Binary(op, d, ..) => op.result_dtype(*d),
        }
    }
}

/// What follows the elementwise part.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tail {
    None,
    Reduce { op: ReduceOp, axes: Vec<usize> },
    Arg { op: ArgOp, axis: usize },
}

/// The kernel body flattened: instructions in dependency order, `root` the value that is
/// stored (or reduced).
#[derive(Clone, Debug)]
pub(crate) struct Program {
    pub ins: Vec<Ins>,
    pub root: usize,
    pub leaves: Vec<Leaf>,
    /// Bytes of each non-scalar constant, referenced by [`Src::Const`].
    pub consts: Vec<Vec<u8>>,
    /// The shape iterated over: the output's, or the reduction operand's.
    pub space: Shape,
    pub tail: Tail,
    pub out_dtype: DType,
    pub out_numel: usize,
    /// The math path chosen when the kernel was analyzed, so that lowering it again (for
    /// its CLIF text) emits the same code whatever the path is by then. It decides whether
    /// transcendentals call the wide host routines (`math/wide.rs`) and whether Cranelift
    /// may use AVX-512 instructions ([`Program::avx512`]).
    pub path: MathPath,
    /// Whether the x86 emitter was on when the kernel was analyzed (`asm::set_asm`): it
    /// compiles the kernels it covers on the AVX-512 and AVX2 paths.
    pub asm: bool,
}

impl Program {
    /// Whether transcendentals call the wide host routines.
    pub fn wide(&self) -> bool {
        self.path != MathPath::Cranelift
    }

    /// Whether Cranelift may use AVX-512 instructions: only on the AVX-512 path, so that
    /// `KILN_MATH=avx2` (or `cranelift`) compiles what a CPU without AVX-512 would get and
    /// the tests rerun under it cover that code too.
    pub fn avx512(&self) -> bool {
        self.path == MathPath::Avx512
    }
}

fn unsupported(what: String) -> Error {
    Error::Compile(what)
}

/// The scalar's bits for [`Ins::Scalar`].
fn scalar_bits(a: &kiln_ir::Array) -> u64 {
    let b = a.data().as_bytes();
    let mut buf = [0u8; 8];
    buf[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(buf)
}

/// Flattens a kernel body into a [`Program`]; `Err(Error::Compile)` for a body this
/// code generator does not lower (an op outside the fused-kernel contract).
pub(crate) fn analyze(kernel: &Kernel) -> Result<Program> {
    let g = &kernel.body;
    let [out] = g.outputs() else {
        return Err(unsupported(format!("kernel body has {} outputs, expected 1", g.outputs().len())));
    };
    let out_node = g.node(*out);
    let (root_node, tail) = match &out_node.op {
        Op::Reduce { op, axes, .. } => (g.args(*out)[0], Tail::Reduce { op: *op, axes: axes.clone() }),
        Op::ArgReduce { op, axis, .. } => (g.args(*out)[0], Tail::Arg { op: *op, axis: *axis }),
        _ => (*out, Tail::None),
    };
    let space = g.node(root_node).ty.shape.clone();
    let mut prog = Program {
        ins: Vec::new(),
        root: 0,
        leaves: Vec::new(),
        consts: Vec::new(),
        space,
        tail,
        out_dtype: out_node.ty.dtype,
        out_numel: out_node.ty.numel(),
        path: crate::math::wide::math_path(),
        asm: crate::asm::asm_on(),
    };
    let mut map: HashMap<NodeId, usize> = HashMap::new();
    prog.root = visit(g, root_node, &mut prog, &mut map)?;
    Ok(prog)
}

/// Emits node `root` after its operands and returns its instruction index. The walk keeps
/// its own stack: a body can be a chain of thousands of ops, deeper than a thread's stack.
fn visit(g: &kiln_ir::Graph, root: NodeId, prog: &mut Program, map: &mut HashMap<NodeId, usize>) -> Result<usize> {
    let mut stack = vec![(root, false)];
    while let Some((id, operands_done)) = stack.pop() {
        if map.contains_key(&id) {
            continue;
        }
        let args = g.args(id);
        if !operands_done {
            stack.push((id, true));
            stack.extend(args.iter().rev().filter(|a| !map.contains_key(*a)).map(|&a| (a, false)));
            continue;
        }
        let a: Vec<usize> = args.iter().map(|x| map[x]).collect();
        emit(g, id, &a, prog, map)?;
    }
    Ok(map[&root])
}

/// Emits node `id` whose operands are instructions `a`, recording its index in `map`.
fn emit(
    g: &kiln_ir::Graph,
    id: NodeId,
    a: &[usize],
    prog: &mut Program,
    map: &mut HashMap<NodeId, usize>,
) -> Result<()> {
    let node = g.node(id);
    let dt = |k: usize, prog: &Program| prog.ins[k].dtype(prog);
    let ins = match &node.op {
        Op::Input(i) => {
            prog.leaves.push(Leaf { src: Src::Input(*i), dtype: node.ty.dtype, shape: node.ty.shape.clone() });
            Ins::Leaf(prog.leaves.len() - 1)
        }
        Op::Const(arr) if arr.len() == 1 => Ins::Scalar(arr.dtype(), scalar_bits(arr)),
        Op::Const(arr) => {
            prog.consts.push(arr.data().as_bytes().to_vec());
            let src = Src::Const(prog.consts.len() - 1);
            prog.leaves.push(Leaf { src, dtype: arr.dtype(), shape: node.ty.shape.clone() });
            Ins::Leaf(prog.leaves.len() - 1)
        }
        Op::Unary(u) => Ins::Unary(*u, dt(a[0], prog), a[0]),
        Op::Binary(b) => Ins::Binary(*b, dt(a[0], prog), a[0], a[1]),
        Op::Select => Ins::Select(node.ty.dtype, a[0], a[1], a[2]),
        Op::Cast(to) => Ins::Cast(dt(a[0], prog), *to, a[0]),
        // Broadcasting is implicit: every value is evaluated at the iteration index.
        Op::BroadcastTo(_) => {
            map.insert(id, a[0]);
            return Ok(());
        }
        other => {
            return Err(unsupported(format!(
                "op `{}` inside a fused kernel has no lowering (only elementwise ops and one final reduction)",
                other.name()
            )))
        }
    };
    prog.ins.push(ins);
    map.insert(id, prog.ins.len() - 1);
    Ok(())
}

/// How many lanes a value occupies: a vector class (bytes per lane) or plain scalars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VecMode {
    /// 1 for scalar code, else lanes per 128-bit vector.
    pub lanes: u32,
    /// Bytes per lane in vector mode (4: f32/i32, 8: f64/i64); bools are lane masks of it.
    pub class: u32,
}

impl VecMode {
    pub fn scalar(self) -> VecMode {
        VecMode { lanes: 1, class: self.class }
    }

    pub fn is_vector(self) -> bool {
        self.lanes > 1
    }

    /// The Cranelift type of a value of `d` in this mode.
    pub fn ty(self, d: DType) -> Type {
        if self.lanes == 1 {
            return match d {
                DType::F32 => types::F32,
                DType::F64 => types::F64,
                DType::I32 => types::I32,
                DType::I64 => types::I64,
                DType::Bool => types::I8,
            };
        }
        match (d, self.class) {
            (DType::F32, _) => types::F32X4,
            (DType::F64, _) => types::F64X2,
            (DType::I32, _) => types::I32X4,
            (DType::I64, _) => types::I64X2,
            (DType::Bool, 4) => types::I32X4,
            (DType::Bool, _) => types::I64X2,
        }
    }
}

/// The vector mode for a program: all non-bool dtypes must share one lane size (casts
/// between 4- and 8-byte types run as scalar code).
pub(crate) fn pick_mode(prog: &Program) -> VecMode {
    let mut sizes: Vec<usize> = prog
        .ins
        .iter()
        .map(|i| i.dtype(prog))
        .chain(prog.leaves.iter().map(|l| l.dtype))
        .chain(std::iter::once(prog.out_dtype).filter(|_| prog.tail == Tail::None))
        .filter(|d| *d != DType::Bool)
        .map(|d| d.size())
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    // x86 has no f64x2 <-> i64x2 conversion in Cranelift 0.135 (AVX-512DQ only): scalar.
    let wide_cvt = prog.ins.iter().any(
        |i| matches!(i, Ins::Cast(f, t, _) if (f.is_float() && *t == DType::I64) || (*f == DType::I64 && t.is_float())),
    );
    if wide_cvt {
        return VecMode { lanes: 1, class: 8 };
    }
    // An integer mean sums in a wider integer than its lanes (`reduce::Accum`): scalar.
    if matches!(prog.tail, Tail::Reduce { op: ReduceOp::Mean, .. }) && prog.out_dtype.is_int() {
        return VecMode { lanes: 1, class: prog.out_dtype.size() as u32 };
    }
    match sizes.as_slice() {
        [] | [4] => VecMode { lanes: 4, class: 4 },
        [8] => VecMode { lanes: 2, class: 8 },
        _ => VecMode { lanes: 1, class: 4 },
    }
}

/// Rough cost of one output element, in vector-instruction units, for the executor's
/// decision to split a kernel across threads.
pub(crate) fn cost_per_element(prog: &Program) -> usize {
    let per = prog
        .ins
        .iter()
        .map(|i| match i {
            Ins::Leaf(_) => 1,
            Ins::Scalar(..) => 0,
            Ins::Unary(u, ..) => u.cost(),
            Ins::Binary(op, d, ..) => op.cost(*d),
            Ins::Select(..) | Ins::Cast(..) => 1,
        })
        .sum::<usize>()
        .max(1);
    let count = match &prog.tail {
        Tail::None => 1,
        Tail::Reduce { axes, .. } => axes.iter().map(|&a| prog.space[a]).product(),
        Tail::Arg { axis, .. } => prog.space[*axis],
    };
    per * count.max(1)
}

/// The kernel ABI: `fn(inputs: *const *const u8, output: *mut u8, begin: usize, end: usize)`.
pub(crate) fn signature(call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    for _ in 0..4 {
        sig.params.push(AbiParam::new(types::I64));
    }
    sig
}

/// Memory flags of every kernel access: never traps (the caller guarantees the buffers),
/// not necessarily aligned (a `Vec<f32>` is only 4-byte aligned).
pub(crate) fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Per-function state shared by the loop emitters.
pub(crate) struct Ctx<'p> {
    pub prog: &'p Program,
    pub mode: VecMode,
    /// Base pointer of each leaf.
    pub leaf_ptr: Vec<Value>,
    pub out: Value,
}

/// Emits the whole kernel function into `fx.b`, whose entry block must be current and have
/// the four ABI parameters.
pub(crate) fn build(fx: &mut Fx, prog: &Program, args: [Value; 4]) -> Result<()> {
    let [inputs, out, begin, end] = args;
    let mut leaf_ptr = Vec::with_capacity(prog.leaves.len());
    for leaf in &prog.leaves {
        let p = match leaf.src {
            Src::Input(i) => fx.b.ins().load(types::I64, mem().with_readonly(), inputs, (i * 8) as i32),
            Src::Const(k) => fx.sym_addr(Sym::Const(k)),
        };
        leaf_ptr.push(p);
    }
    let cx = Ctx { prog, mode: pick_mode(prog), leaf_ptr, out };
    if prog.out_numel > 0 {
        match &prog.tail {
            Tail::None => elementwise::emit(fx, &cx, begin, end)?,
            Tail::Reduce { .. } | Tail::Arg { .. } => reduce::emit(fx, &cx, begin, end)?,
        }
    }
    fx.b.ins().return_(&[]);
    Ok(())
}
