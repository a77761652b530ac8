//! Kernels whose transcendentals run as AVX-512/AVX2 host routines (`math/wide.rs`):
//! Cranelift's 128-bit code computes the cheap parts, and each row (of an elementwise
//! kernel, or the reduced row of a reduction over the innermost axis) is walked in tiles of
//! [`TILE`] elements. For each tile, stage `s` computes the argument of the `s`-th
//! transcendental into a stack buffer and calls its routine on the buffer; the last stage
//! computes the root, reading earlier results from their buffers, and stores it (or adds it
//! to the reduction's accumulators).
//! Leaves are reloaded in each stage (the tile is in L1 by then) and cheap instructions a
//! later stage needs are recomputed, so nothing but the buffers lives across a call.
//!
//! Two shortcuts skip a stage's copy: a routine whose argument is a contiguous operand
//! reads the operand in place, and a routine whose result is the root writes the output.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Signature, StackSlotData, StackSlotKind, Value};
use cranelift_frontend::Variable;
use kiln_ir::{DType, Result};

use super::accum::Accum;
use super::index::{self, Dims};
use super::loops::{column_loops, store_out, Chunk, Row};
use super::{ops, Ctx, Ins, Program, Tail, VecMode};
use crate::code::Sym;
use crate::math::wide::{routine_any_path, TileFn};
use crate::math::Fx;

/// Elements per tile: each buffer is 1 KiB (f32) or 2 KiB (f64), all of them stay in L1.
pub(crate) const TILE: usize = 256;

/// The most stages (tile buffers) a kernel gets: the buffers live in the function's stack
/// frame, which must stay small on a 2 MiB thread (128 KiB for f32, 256 KiB for f64). A
/// kernel with more transcendentals stays all-Cranelift, which computes the same bits.
const MAX_STAGES: usize = 128;

/// Which instructions run as host routines, and what each stage evaluates.
pub(crate) struct Plan {
    /// The float type of the routines (the kernel's vector lanes).
    dtype: DType,
    /// The transcendental instructions, in program order, with their routines.
    heavy: Vec<(usize, TileFn)>,
    /// For stage `s`, which instructions it evaluates (heavy results of earlier stages
    /// are loaded from their buffers, not evaluated).
    need: Vec<Vec<bool>>,
}

/// A plan for an `f32` or `f64` vector kernel with at least one transcendental that has a wide routine on
/// this host and varies along the row; `None` otherwise (the kernel stays all-Cranelift).
/// `along` are the dimensions whose innermost one a row walks: the output's for an
/// elementwise kernel, the reduced ones for a reduction over the innermost axis.
///
/// A transcendental of values constant along the row (e.g. `log` of a row's sum,
/// broadcast) stays in Cranelift code, which computes it once per row (the loop-invariant
/// value is hoisted) instead of once per element.
pub(crate) fn plan(prog: &Program, mode: VecMode, along: &Dims) -> Option<Plan> {
    if matches!(prog.tail, Tail::Arg { .. }) || !mode.is_vector() || !prog.wide() {
        return None;
    }
    let dtype = if mode.class == 4 { DType::F32 } else { DType::F64 };
    let mut varies = vec![false; prog.ins.len()];
    for (i, ins) in prog.ins.iter().enumerate() {
        varies[i] = match *ins {
            Ins::Leaf(l) => along.inner_stride(l) != 0,
            Ins::Scalar(..) => false,
            Ins::Unary(_, _, a) | Ins::Cast(_, _, a) => varies[a],
            Ins::Binary(_, _, a, b) => varies[a] || varies[b],
            Ins::Select(_, c, a, b) => varies[c] || varies[a] || varies[b],
        };
    }
    let heavy: Vec<(usize, TileFn)> = prog
        .ins
        .iter()
        .enumerate()
        .filter_map(|(i, ins)| match ins {
            Ins::Unary(op, d, _) if *d == dtype && varies[i] => routine_any_path(*op, dtype).map(|f| (i, f)),
            _ => None,
        })
        .collect();
    if heavy.is_empty() || heavy.len() > MAX_STAGES {
        return None;
    }
    let targets = heavy.iter().map(|&(h, _)| operand(prog, h)).chain(std::iter::once(prog.root));
    let need = targets.enumerate().map(|(s, t)| needed(prog, t, &heavy[..s])).collect();
    Some(Plan { dtype, heavy, need })
}

fn operand(prog: &Program, i: usize) -> usize {
    match prog.ins[i] {
        Ins::Unary(_, _, a) => a,
        _ => unreachable!("heavy instructions are unary"),
    }
}

/// The instructions `target` depends on, not looking through the `done` heavy ones.
fn needed(prog: &Program, target: usize, done: &[(usize, TileFn)]) -> Vec<bool> {
    let mut need = vec![false; prog.ins.len()];
    let mut stack = vec![target];
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut need[i], true) || done.iter().any(|&(h, _)| h == i) {
            continue;
        }
        match prog.ins[i] {
            Ins::Leaf(_) | Ins::Scalar(..) => {}
            Ins::Unary(_, _, a) | Ins::Cast(_, _, a) => stack.push(a),
            Ins::Binary(_, _, a, b) => stack.extend([a, b]),
            Ins::Select(_, c, a, b) => stack.extend([c, a, b]),
        }
    }
    need
}

/// What the last stage does with the root's values.
pub(crate) enum Sink {
    /// Store them to the output (elementwise kernels).
    Store,
    /// Combine them into accumulators: chunk `j` of a vector group into `vector[j]`,
    /// scalar-tail values into `scalar` (reductions over the innermost axis).
    Accumulate { accum: Accum, vector: Vec<Variable>, scalar: Variable },
}

/// The row walker's chunk for a planned kernel.
pub(crate) struct Tiled {
    pub sink: Sink,
    plan: Plan,
    /// Address of each heavy instruction's tile buffer.
    bufs: Vec<Value>,
    /// The routines' signature, `fn(*const T, *mut T, usize)`.
    sig: cranelift_codegen::ir::SigRef,
    /// The stage being emitted and the column where the current tile starts.
    stage: usize,
    tile0: Option<Value>,
}

impl Tiled {
    pub fn new(fx: &mut Fx, plan: Plan) -> Tiled {
        let bufs = plan
            .heavy
            .iter()
            .map(|_| {
                let bytes = (TILE * plan.dtype.size()) as u32;
                let slot = fx.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, bytes, 6));
                fx.b.ins().stack_addr(types::I64, slot, 0)
            })
            .collect();
        let mut s = Signature::new(fx.b.func.signature.call_conv);
        s.params.extend([AbiParam::new(types::I64), AbiParam::new(types::I64), AbiParam::new(types::I64)]);
        let sig = fx.b.import_signature(s);
        Tiled { sink: Sink::Store, plan, bufs, sig, stage: 0, tile0: None }
    }

    /// Stage `s`'s loops over the tile's columns `t0..tend`.
    fn emit_stage(&mut self, fx: &mut Fx, cx: &Ctx, row: &Row, s: usize, t0: Value, tend: Value) -> Result<()> {
        self.stage = s;
        let j = index::var(fx, t0);
        column_loops(self, fx, cx, row, j, tend)
    }

    /// Address of element `col - tile0` of buffer `k`.
    fn buf_addr(&self, fx: &mut Fx, k: usize, col: Value) -> Value {
        let rel = fx.b.ins().isub(col, self.tile0.expect("inside a tile"));
        index::addr(fx, self.bufs[k], rel, self.plan.dtype.size())
    }
}

impl Chunk for Tiled {
    fn emit(&mut self, fx: &mut Fx, cx: &Ctx, mode: VecMode, k: usize, row: &Row, col: Value) -> Result<()> {
        let s = self.stage;
        let (d, size) = (self.plan.dtype, self.plan.dtype.size());
        let step = mode.lanes as usize;
        let prog = cx.prog;
        let done = &self.plan.heavy[..s];
        let mut values = Vec::with_capacity(k);
        for j in 0..k {
            let mut vals: Vec<Option<Value>> = vec![None; prog.ins.len()];
            for (i, ins) in prog.ins.iter().enumerate() {
                if !self.plan.need[s][i] {
                    continue;
                }
                if let Some(h) = done.iter().position(|&(d, _)| d == i) {
                    let a = self.buf_addr(fx, h, col);
                    vals[i] = Some(ops::load(fx, mode, d, a, (j * step * size) as i32));
                } else if let Ins::Leaf(l) = ins {
                    vals[i] = Some(row.leaf(fx, cx, mode, *l, col, j, None));
                }
            }
            let need = &self.plan.need[s];
            ops::eval_into(fx, prog, mode, &mut vals, |i| need[i])?;
            let target = match self.plan.heavy.get(s) {
                Some(&(h, _)) => operand(prog, h),
                None => prog.root,
            };
            values.push(vals[target].expect("stage target evaluated"));
        }
        if s < self.plan.heavy.len() {
            let a = self.buf_addr(fx, s, col);
            for (j, v) in values.into_iter().enumerate() {
                ops::store(fx, mode, d, a, (j * step * size) as i32, v);
            }
        } else {
            match &self.sink {
                Sink::Store => store_out(fx, cx, mode, row, col, values),
                Sink::Accumulate { accum, vector, scalar } => {
                    for (j, v) in values.into_iter().enumerate() {
                        let acc = if mode.is_vector() { vector[j] } else { *scalar };
                        let a = fx.b.use_var(acc);
                        let a = accum.add(fx, a, v);
                        fx.b.def_var(acc, a);
                    }
                }
            }
        }
        Ok(())
    }

    fn columns(&mut self, fx: &mut Fx, cx: &Ctx, row: &Row, i: Variable, col_end: Value) -> Result<()> {
        index::while_loop(
            fx,
            |fx| {
                let cur = fx.b.use_var(i);
                fx.b.ins().icmp(IntCC::UnsignedLessThan, cur, col_end)
            },
            |fx| {
                let t0 = fx.b.use_var(i);
                let full = fx.b.ins().iadd_imm_s(t0, TILE as i64);
                let short = fx.b.ins().icmp(IntCC::UnsignedLessThan, col_end, full);
                let tend = fx.b.ins().select(short, col_end, full);
                let len = fx.b.ins().isub(tend, t0);
                self.tile0 = Some(t0);
                let heavy = self.plan.heavy.len();
                // The root is the last routine's result: it writes the output directly.
                let root_direct = matches!(self.sink, Sink::Store)
                    && self.plan.heavy[heavy - 1].0 == cx.prog.root
                    && cx.prog.out_dtype == self.plan.dtype;
                let size = self.plan.dtype.size();
                for s in 0..heavy {
                    let (h, f) = self.plan.heavy[s];
                    // A routine applied straight to a contiguous operand reads it in place.
                    let src = match cx.prog.ins[operand(cx.prog, h)] {
                        Ins::Leaf(l) if row.inner_stride[l] == 1 => index::addr(fx, row.leaf_row[l], t0, size),
                        _ => {
                            self.emit_stage(fx, cx, row, s, t0, tend)?;
                            self.bufs[s]
                        }
                    };
                    let dst = if s == heavy - 1 && root_direct {
                        index::addr(fx, row.out_row, t0, size)
                    } else {
                        self.bufs[s]
                    };
                    let callee = fx.sym_addr(Sym::Host(f as usize));
                    fx.b.ins().call_indirect(self.sig, callee, &[src, dst, len]);
                }
                if !root_direct {
                    self.emit_stage(fx, cx, row, heavy, t0, tend)?;
                }
                fx.b.def_var(i, tend);
                Ok(())
            },
        )
    }
}
