//! Full-width x86 code for elementwise f32 kernels: where Cranelift's x86 backend stops at
//! 128-bit vectors, this writes the kernel's loops itself, 16 lanes a step with AVX-512 or 8
//! with AVX2 (the math path decides), every op of the body (transcendentals included) in
//! registers from one load of each operand to one store, row by row where operands are
//! broadcast along rows or columns; and row and column sums, means, maxima and minima with
//! their producers, accumulated in Cranelift's order.
//!
//! The pipeline is small and one file a stage: [`vir`] builds the loop body from the
//! analyzed [`Program`] (through the same [`crate::math::Ops`] algorithms as the other
//! paths, so the bits agree), [`regalloc`] gives each value a register, [`encode`] writes
//! the machine code (with iced-x86's assembler) into the same relocatable [`Image`] that
//! Cranelift's code uses. A kernel outside what it covers (see [`vir::Vir::build`]), or
//! needing more registers than the ISA has, is compiled by Cranelift as before.

mod encode;
mod regalloc;
mod vir;

use std::sync::atomic::{AtomicU8, Ordering};

use kiln_ir::{ReduceOp, Result};

use crate::code::Image;

use crate::lower::{index, Program, Tail};
use crate::math::wide::MathPath;

/// 0: not decided yet (on unless `KILN_ASM=off`); 1 off; 2 on.
static STATE: AtomicU8 = AtomicU8::new(0);

/// Turns the x86 emitter on or off for kernels compiled from now on (on by default;
/// `KILN_ASM=off` starts with it off). Off, every kernel is Cranelift's, as on a path
/// without it (`KILN_MATH=cranelift`). Results are the same bits either way.
///
/// ```
/// kiln_jit::set_asm(false);
/// assert!(!kiln_jit::asm_on());
/// kiln_jit::set_asm(true);
/// ```
pub fn set_asm(on: bool) {
    STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
}

/// Whether the x86 emitter compiles the kernels it covers ([`set_asm`]).
///
/// ```
/// // On by default, unless the environment says KILN_ASM=off.
/// assert_eq!(kiln_jit::asm_on(), std::env::var("KILN_ASM").as_deref() != Ok("off"));
/// ```
pub fn asm_on() -> bool {
    let state = match STATE.load(Ordering::Relaxed) {
        0 => {
            let env = if kiln_ir::config::asm_off() { 1 } else { 2 };
            // A `set_asm` that got in first wins over the environment's default.
            match STATE.compare_exchange(0, env, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => env,
                Err(now) => now,
            }
        }
        s => s,
    };
    state == 2
}

/// A kernel's loop nest: `rows` rows of `cols` output elements, stored contiguously; leaf
/// `l` is read from element `row * row_strides[l]` on (whole along the row, or one element
/// for the row: the body's [`vir::LeafRead`]). Kernels whose space collapses to one
/// dimension have one row.
pub(crate) struct Layout {
    pub rows: usize,
    pub cols: usize,
    pub row_strides: Vec<usize>,
}

impl Layout {
    /// The layout of `prog` and how each leaf is read along a row, when its space collapses
    /// to at most two dimensions with every leaf contiguous or constant along the rows (a
    /// bias `[N]` over `[M, N]`, a row statistic `[M, 1]`, a scalar), and the per-row
    /// address steps fit the instructions' 32-bit immediates.
    fn of(prog: &Program) -> Option<(Layout, Vec<vir::LeafRead>)> {
        let (dims, _) = index::split_space(prog, &[]);
        let (rows, cols) = match dims.sizes[..] {
            [] => (1, 1),
            [c] => (1, c),
            [r, c] => (r, c),
            _ => return None,
        };
        let reads = leaf_reads(&dims)?;
        let row_strides = dims.strides.iter().map(|s| if dims.rank() == 2 { s[0] } else { 0 }).collect::<Vec<_>>();
        if rows > 1 && !(fits(cols) && row_strides.iter().all(|&s| fits(s))) {
            return None;
        }
        Some((Layout { rows, cols, row_strides }, reads))
    }
}

/// A reduction over the innermost axis: output `o` reduces `len` values,
/// leaf `l` read from element `o * out_strides[l]` on (whole along the reduced row, or one
/// element for it).
pub(crate) struct RowReduce {
    pub op: ReduceOp,
    pub len: usize,
    pub out_strides: Vec<usize>,
}

impl RowReduce {
    /// The reduction of `prog` and how each leaf is read along the reduced row, when it is
    /// a sum, mean, max or min over one non-empty innermost axis with at most one kept
    /// dimension.
    fn of(prog: &Program) -> Option<(RowReduce, Vec<vir::LeafRead>)> {
        let Tail::Reduce { op, axes } = &prog.tail else { return None };
        if !covered(*op) || !index::inner_is_reduced(prog, axes) {
            return None;
        }
        let (kept, red) = index::split_space(prog, axes);
        if red.rank() != 1 || kept.rank() > 1 || red.inner() == 0 {
            return None;
        }
        let reads = leaf_reads(&red)?;
        let out_strides = kept.strides.iter().map(|s| s.first().copied().unwrap_or(0)).collect::<Vec<_>>();
        if !(fits(red.inner()) && out_strides.iter().all(|&s| fits(s))) {
            return None;
        }
        Some((RowReduce { op: *op, len: red.inner(), out_strides }, reads))
    }
}

/// How each leaf is read along the innermost dimension of `dims`: contiguous, or one
/// element (`None` for any other stride).
fn leaf_reads(dims: &index::Dims) -> Option<Vec<vir::LeafRead>> {
    (0..dims.strides.len())
        .map(|l| match dims.inner_stride(l) {
            0 => Some(vir::LeafRead::Scalar),
            1 => Some(vir::LeafRead::Vector),
            _ => None,
        })
        .collect()
}

/// A reduction over the outer axis of a `[rows, cols]` space: output `c` reduces column
/// `c`, leaf `l` read from its element `c` (or its one element: the body's
/// [`vir::LeafRead`]) of row `r` at `r * row_strides[l]`. The lowering vectorizes it across
/// adjacent outputs (`lower/reduce.rs`, `Outer`): each lane accumulates its column row by
/// row, so any width gives the same bits.
pub(crate) struct ColReduce {
    pub op: ReduceOp,
    pub rows: usize,
    pub row_strides: Vec<usize>,
}

impl ColReduce {
    /// The reduction of `prog` and how each leaf is read along the output, when it is a
    /// sum, mean, max or min over one non-empty outer dimension of a two-dimensional space.
    fn of(prog: &Program) -> Option<(ColReduce, Vec<vir::LeafRead>)> {
        let Tail::Reduce { op, axes } = &prog.tail else { return None };
        if !covered(*op) || index::inner_is_reduced(prog, axes) {
            return None;
        }
        let (kept, red) = index::split_space(prog, axes);
        if kept.rank() != 1 || red.rank() != 1 || red.inner() == 0 {
            return None;
        }
        let reads = leaf_reads(&kept)?;
        let rows = red.inner();
        let row_strides = red.strides.iter().map(|s| s[0]).collect::<Vec<_>>();
        // A leaf's pointer goes back over all rows by one immediate.
        if !row_strides.iter().all(|&s| s.checked_mul(rows).is_some_and(fits)) {
            return None;
        }
        Some((ColReduce { op: *op, rows, row_strides }, reads))
    }
}

/// The reductions the emitter takes: those whose combine is an add, max or min.
fn covered(op: ReduceOp) -> bool {
    matches!(op, ReduceOp::Sum | ReduceOp::Mean | ReduceOp::Max | ReduceOp::Min)
}

/// How a reduction's accumulators start and end, as pool constants of its body: the
/// identity, and a mean's final divisor.
#[derive(Clone, Copy)]
pub(crate) struct Fold {
    pub identity: usize,
    pub divisor: Option<usize>,
}

impl Fold {
    /// `op` over `count` values of `vir`'s body, as the lowering reduces them
    /// (`lower/accum.rs`): float sums start from -0.0 so that a sum of -0.0s stays -0.0,
    /// and a mean scales the body's value ([`vir::Vir::mean_terms`]).
    fn new(vir: &mut vir::Vir, op: ReduceOp, count: usize) -> Fold {
        let identity = match op {
            ReduceOp::Sum | ReduceOp::Mean => -0.0f32,
            ReduceOp::Max => f32::NEG_INFINITY,
            _ => f32::INFINITY,
        };
        let divisor = (op == ReduceOp::Mean).then(|| vir.mean_terms(count));
        Fold { identity: vir.konst(identity.to_bits()), divisor }
    }
}

/// Whether `elements` f32s span a 32-bit immediate's bytes.
fn fits(elements: usize) -> bool {
    elements.checked_mul(4).is_some_and(|b| b <= i32::MAX as usize)
}

/// The loops around a kernel's body.
pub(crate) enum Nest {
    /// Rows of an elementwise kernel's output.
    Rows(Layout),
    /// One reduced row per output.
    Reduce(RowReduce, Fold),
    /// One reduced column per output lane.
    Columns(ColReduce, Fold),
}

/// A kernel's loop nest and bodies: one vector a step, and (when registers allow) several.
struct Plan {
    nest: Nest,
    one: (vir::Vir, Vec<usize>),
    unrolled: Option<(vir::Vir, Vec<usize>)>,
}

/// The loop bodies and their registers, when the emitter compiles `prog`.
fn plan(prog: &Program) -> Option<Plan> {
    // The code follows the System V calling convention (arguments in rdi, rsi, rdx, rcx;
    // every vector register caller-saved); Windows' differs, so there Cranelift compiles.
    if cfg!(windows) {
        return None;
    }
    let avx512 = match prog.path {
        MathPath::Cranelift => return None,
        MathPath::Avx512 if !std::is_x86_feature_detected!("bmi2") => return None,
        MathPath::Avx512 => true,
        MathPath::Avx2 => false,
    };
    if !prog.asm || prog.leaves.len() > encode::MAX_LEAVES {
        return None;
    }
    if let Some((col, reads)) = ColReduce::of(prog) {
        return plan_columns(prog, col, &reads, avx512);
    }
    if prog.tail != Tail::None {
        // Sixteen values a step: one zmm body, or two ymm ones.
        let (red, reads) = RowReduce::of(prog)?;
        let budget = encode::reduce_budget(avx512);
        let mut vir = vir::Vir::build(prog, &reads, avx512)?;
        let fold = Fold::new(&mut vir, red.op, red.len);
        let regs = regalloc::allocate(&vir, &budget)?;
        // AVX2's sixteen values: two interleaved copies where they fit, else one copy twice.
        let two = match avx512 {
            true => None,
            false => {
                let v = vir.unroll(2);
                regalloc::allocate(&v, &budget).map(|r| (v, r))
            }
        };
        return Some(Plan { nest: Nest::Reduce(red, fold), one: (vir, regs), unrolled: two });
    }
    let budget = encode::budget(avx512);
    let (layout, reads) = Layout::of(prog)?;
    let vir = vir::Vir::build(prog, &reads, avx512)?;
    let regs = regalloc::allocate(&vir, &budget)?;
    // The widest unrolling whose registers fit.
    let unrolled = UNROLL.iter().find_map(|&u| {
        let v = vir.unroll(u);
        regalloc::allocate(&v, &budget).map(|r| (v, r))
    });
    Some(Plan { nest: Nest::Rows(layout), one: (vir, regs), unrolled })
}

/// A column reduction's bodies: each copy of the body has an accumulator of its own.
fn plan_columns(prog: &Program, col: ColReduce, reads: &[vir::LeafRead], avx512: bool) -> Option<Plan> {
    let mut vir = vir::Vir::build(prog, reads, avx512)?;
    let fold = Fold::new(&mut vir, col.op, col.rows);
    let regs = regalloc::allocate(&vir, &encode::column_budget(avx512, 1))?;
    let unrolled = UNROLL.iter().find_map(|&u| {
        let v = vir.unroll(u);
        regalloc::allocate(&v, &encode::column_budget(avx512, u)).map(|r| (v, r))
    });
    Some(Plan { nest: Nest::Columns(col, fold), one: (vir, regs), unrolled })
}

fn body((vir, regs): &(vir::Vir, Vec<usize>)) -> encode::Body<'_> {
    encode::Body { vir, regs }
}

/// Vectors a step of the unrolled body computes, the first whose registers fit.
const UNROLL: [usize; 3] = [4, 3, 2];

impl Plan {
    /// [`crate::CompiledKernel::generator`]'s name for the emitter's code.
    fn generator(&self) -> &'static str {
        if self.one.0.avx512 {
            crate::kernel::ASM_AVX512
        } else {
            crate::kernel::ASM_AVX2
        }
    }
}

/// The emitter's code for `prog`, its listing (the body with its registers) if `listing`
/// (for dumps: formatting it cost ~3% of a cold compile), and its generator's name; or
/// `None` when Cranelift compiles it.
pub(crate) fn compile(prog: &Program, listing: bool) -> Option<Result<(Image, Option<String>, &'static str)>> {
    let p = plan(prog)?;
    let image = encode::image(&p.nest, body(&p.one), p.unrolled.as_ref().map(body), prog);
    let (vir, regs) = p.unrolled.as_ref().unwrap_or(&p.one);
    Some(image.map(|image| (image, listing.then(|| vir.listing(regs)), p.generator())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_ir::{Array, BinaryOp, DType, Graph, Kernel, Op, TensorType, UnaryOp};

    /// `kernel` analyzed for `path` with the emitter on.
    fn program(kernel: &Kernel, path: MathPath) -> Program {
        let mut prog = crate::lower::analyze(kernel).unwrap();
        (prog.path, prog.asm) = (path, true);
        prog
    }

    /// How many vectors a step of `kernel`'s unrolled body computes on `path` (1: none).
    fn copies(kernel: &Kernel, path: MathPath) -> usize {
        let prog = program(kernel, path);
        plan(&prog).expect("the emitter covers it").unrolled.map_or(1, |(v, _)| v.roots.len())
    }

    /// A reduction of `op` over `axis` of `exp` of a [5, 37] input (37 columns: unrolled,
    /// single and masked steps on both widths).
    fn reduce_exp(op: ReduceOp, axis: usize) -> Kernel {
        let mut g = Graph::new("k");
        let x = g.add_input(TensorType::new(DType::F32, &[5, 37]));
        let y = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
        let r = g.add(Op::Reduce { op, axes: vec![axis], keepdims: false }, &[y]).unwrap();
        g.set_outputs(vec![r]);
        Kernel { body: g }
    }

    /// Both ISAs' code is assembled whatever the CPU (only running it needs the ISA), so a
    /// machine without AVX-512 still checks that every AVX-512 form encodes: an encoding
    /// error would fail the kernel's compile where the emitter covers it.
    #[test]
    fn every_form_assembles_on_both_isas() {
        let mut kernels = vec![unary(UnaryOp::Exp), unary(UnaryOp::Tanh), unary(UnaryOp::Neg)];
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
            kernels.extend([reduce_exp(op, 0), reduce_exp(op, 1), row_sum_of(UnaryOp::Softplus)]);
        }
        // The AVX-512 path's tail mask needs BMI2 (`plan` leaves a CPU without it to Cranelift).
        let avx512 = std::is_x86_feature_detected!("bmi2").then_some(MathPath::Avx512);
        for path in [Some(MathPath::Avx2), avx512].into_iter().flatten() {
            for k in &kernels {
                let (image, listing, generator) =
                    compile(&program(k, path), true).expect("covered").expect("assembles");
                assert!(generator.starts_with("asm-") && listing.is_some_and(|l| !l.is_empty()));
                // The entry jumps over the pool, which starts a cache line in, to the code.
                let rel = u32::from_le_bytes(image.bytes[1..5].try_into().unwrap()) as usize;
                assert_eq!(image.bytes[0], 0xe9, "a jmp rel32 at the entry");
                assert!(rel + 5 >= 64 + 64 && rel + 5 < image.bytes.len(), "the code after the pool");
                assert!(compile(&program(k, path), false).unwrap().unwrap().1.is_none(), "no listing unless asked");
            }
        }
    }

    fn unary(op: UnaryOp) -> Kernel {
        let mut g = Graph::new("k");
        let x = g.add_input(TensorType::new(DType::F32, &[4096]));
        let s = g.add_const(Array::scalar(0.5f32));
        let d = g.add(Op::Binary(BinaryOp::Sub), &[x, s]).unwrap();
        let y = g.add(Op::Unary(op), &[d]).unwrap();
        g.set_outputs(vec![y]);
        Kernel { body: g }
    }

    /// A row reduction of `op` applied to a [4, 100] input.
    fn row_sum_of(op: UnaryOp) -> Kernel {
        let mut g = Graph::new("k");
        let x = g.add_input(TensorType::new(DType::F32, &[4, 100]));
        let y = g.add(Op::Unary(op), &[x]).unwrap();
        let s = g.add(Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdims: false }, &[y]).unwrap();
        g.set_outputs(vec![s]);
        Kernel { body: g }
    }

    /// AVX2 reduces sixteen values a step into two ymm accumulators: by two interleaved
    /// copies of the body where their registers fit, else by one copy twice.
    #[test]
    fn a_reduction_whose_two_copies_do_not_fit_runs_one_twice() {
        assert_eq!(copies(&row_sum_of(UnaryOp::Exp), MathPath::Avx2), 2);
        assert_eq!(copies(&row_sum_of(UnaryOp::Softplus), MathPath::Avx2), 1);
    }

    /// Zen 3 ran W2's `exp(x - max)` 6% faster with three copies than with two
    /// (docs/PERFORMANCE.md), so a body whose four copies do not fit the sixteen ymm
    /// registers takes three.
    #[test]
    fn the_widest_unrolling_that_fits_is_taken() {
        assert_eq!(copies(&unary(UnaryOp::Exp), MathPath::Avx2), 3);
        assert_eq!(copies(&unary(UnaryOp::Neg), MathPath::Avx2), 4);
        // The AVX-512 path's tail mask needs BMI2 (`plan` leaves a CPU without it to Cranelift).
        if std::is_x86_feature_detected!("bmi2") {
            assert_eq!(copies(&unary(UnaryOp::Exp), MathPath::Avx512), 4);
        }
    }
}
