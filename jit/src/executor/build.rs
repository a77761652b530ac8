//! Building an [`Executable`]: schedule, destinations, kernel compilation.

use std::collections::HashMap;

use std::sync::Arc;

use kiln_ir::{Error, Graph, Kernel, MemoryPlan, NodeId, Op, Result};

use super::{CompiledKernel, Dest, Executable, Fallback, Mode, Options, OutSrc, RegionExec, ScheduleStep};
use crate::arena::Pool;
use crate::pool::ThreadPool;
use kiln_ir::matmul::MatMulShape;

/// Slot alignment for buffers the executor places itself (a cache line).
pub(super) const ALIGN: usize = 64;

/// The provisional destination of a step whose node the memory plan gave no slot.
const UNPLANNED: usize = usize::MAX;

pub(super) fn build(graph: Graph, options: Options) -> Result<Executable> {
    // The executor trusts node types to size buffers and kernels to index them: a graph
    // whose types disagree with its ops (a parsed, unverified file) would run out of bounds.
    graph.verify()?;
    check_arena_fits(&graph, options.threads)?;
    let (schedule, slots, mut arena_bytes) = match &graph.plan {
        Some(p) => {
            check_plan(&graph, p)?;
            (p.schedule.clone(), p.slots.clone(), p.arena_bytes)
        }
        None => (graph.topo_order()?, HashMap::new(), 0),
    };
    let index: HashMap<NodeId, usize> = schedule.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    check_schedule(&graph, &schedule, &index)?;

    let mut first_output: HashMap<NodeId, usize> = HashMap::new();
    let outputs: Vec<OutSrc> = graph
        .outputs()
        .iter()
        .enumerate()
        .map(|(j, o)| match first_output.get(o) {
            Some(&j0) => OutSrc::Same(j0),
            None => {
                first_output.insert(*o, j);
                OutSrc::Step(index[o])
            }
        })
        .collect();

    let pool = crate::pool::shared(options.threads);
    let mut compiled = compile_all(&graph, &schedule, &pool);
    let mut steps = Vec::with_capacity(schedule.len());
    // Steps without a planned slot; their `Dest::Slot(UNPLANNED)` is replaced below.
    let mut unplanned = Vec::new();
    let mut fallbacks = Vec::new();
    let mut kernels = 0;
    for &id in &schedule {
        let node = graph.node(id);
        let args: Vec<usize> = graph.args(id).iter().map(|a| index[a]).collect();
        let mode = match &node.op {
            Op::Input(i) => Mode::Input(*i),
            Op::Const(a) => Mode::Const(a.clone()),
            Op::ReadVar(v) => Mode::ReadVar(*v as usize),
            Op::AssignVar(v) => Mode::AssignVar(*v as usize),
            Op::Reshape(_) => Mode::View,
            Op::Case(_) | Op::While(_) | Op::Scan(_) | Op::WhileGrad(_) => {
                Mode::Region(Box::new(RegionExec::new(&node.op, &options)?))
            }
            Op::Get(i) => Mode::Get(*i),
            // Compiled code cannot report an integer division by zero or a negative integer
            // power, which must fail the call (and so commit no Variable write): the
            // interpreter runs those kernels.
            Op::Fused(k) if has_checked_integer_op(k) => {
                let why = "integer division or power reports its errors".to_string();
                fallbacks.push(Fallback { node: id, reason: why.clone() });
                Mode::Fallback(why)
            }
            Op::Fused(_) => match compiled.remove(&id).expect("compiled above") {
                Ok(kernel) => {
                    kernels += 1;
                    Mode::Kernel { kernel, number: kernels - 1 }
                }
                Err(e) => {
                    fallbacks.push(Fallback { node: id, reason: e.to_string() });
                    Mode::Fallback(e.to_string())
                }
            },
            Op::MatMul => {
                let (a, b) = (&graph.node(graph.args(id)[0]).ty, &graph.node(graph.args(id)[1]).ty);
                // gemm multiplies floats; integer products run in the interpreter's loop.
                match MatMulShape::of(node.ty.dtype, &a.shape, &b.shape) {
                    Ok(s) if node.ty.dtype.is_float() => Mode::Gemm(s),
                    _ => Mode::Library,
                }
            }
            // Unfused elementwise ops, movement, reductions and random numbers run on the
            // interpreter's kernels (`Library`); fusion leaves few of them.
            Op::Random { .. }
            | Op::Unary(_)
            | Op::Binary(_)
            | Op::Select
            | Op::Cast(_)
            | Op::BroadcastTo(_)
            | Op::Transpose(_)
            | Op::Slice(_)
            | Op::Unslice { .. }
            | Op::Concat { .. }
            | Op::Gather { .. }
            | Op::ScatterAdd { .. }
            | Op::Reduce { .. }
            | Op::ArgReduce { .. }
            | Op::Print(_) => Mode::Library,
            // Collectives call the installed transport (`interp::collective`) in schedule
            // order, which keeps the trace's order edges.
            Op::AllReduce(_) | Op::Broadcast(_) | Op::AllGather(_) => Mode::Library,
        };
        // Nodes computed into memory need a destination: the output tensor if the node is a
        // graph output, else its planned slot, else a slot of our own (given below).
        let writes_memory = matches!(mode, Mode::Kernel { .. } | Mode::Gemm(_) | Mode::View);
        let dest = if !writes_memory {
            Dest::None
        } else if let Some(&j) = first_output.get(&id) {
            Dest::Output(j)
        } else if let Some(slot) = slots.get(&id) {
            Dest::Slot(slot.offset)
        } else {
            unplanned.push(steps.len());
            Dest::Slot(UNPLANNED)
        };
        steps.push(ScheduleStep { node: id, mode, args, dest, ty: node.ty.clone() });
    }
    absorb_transposes(&graph, &mut steps, &outputs);
    write_assigned_values_fresh(&mut steps);
    super::gemm_update::plan(&graph, &mut steps);
    // Slots of our own, past the planned arena, only for what still writes to the arena now
    // that values for Variable writes and products added into updates have theirs (the
    // memory plan gives those no slot).
    for i in unplanned {
        if steps[i].dest == Dest::Slot(UNPLANNED) {
            let offset = arena_bytes.next_multiple_of(ALIGN);
            arena_bytes = offset + steps[i].ty.bytes();
            steps[i].dest = Dest::Slot(offset);
        }
    }
    let groups = if options.row_groups {
        super::rows::plan(&graph, &mut steps, &mut arena_bytes, pool.threads())
    } else {
        vec![]
    };
    let in_place = super::in_place::plan(&graph, &mut steps, &outputs, &groups);
    let mut exe = Executable {
        graph,
        steps,
        outputs,
        arena_bytes,
        fallbacks,
        groups,
        in_place: Box::new(in_place),
        states: Pool::new(),
        direct: false,
        pool,
        options,
    };
    exe.direct = super::direct::eligible(&exe);
    Ok(exe)
}

/// A value whose only reader is a Variable write is computed straight into a fresh buffer
/// that becomes the Variable's new array (`Dest::Fresh`), instead of into the arena and
/// then copied out.
fn write_assigned_values_fresh(steps: &mut [ScheduleStep]) {
    for i in 0..steps.len() {
        if !matches!(steps[i].dest, Dest::Slot(_)) {
            continue;
        }
        let mut readers = steps.iter().filter(|s| s.args.contains(&i));
        if let (Some(r), None) = (readers.next(), readers.next()) {
            if matches!(r.mode, Mode::AssignVar(_)) {
                steps[i].dest = Dest::Fresh;
            }
        }
    }
}

/// Compiles every fused kernel the executor runs compiled, spread over the thread pool
/// (Cranelift is the bulk of a first call: W4), and links them into one run of pages.
fn compile_all(g: &Graph, schedule: &[NodeId], pool: &ThreadPool) -> HashMap<NodeId, Result<Arc<CompiledKernel>>> {
    let kernels: Vec<(NodeId, &Kernel)> = schedule
        .iter()
        .filter_map(|&id| match &g.node(id).op {
            Op::Fused(k) if !has_checked_integer_op(k) => Some((id, &**k)),
            _ => None,
        })
        .collect();
    let bodies: Vec<&Kernel> = kernels.iter().map(|&(_, k)| k).collect();
    let compiled = crate::kernel::compile_batch(&bodies, |n, f| pool.for_each(n, f));
    kernels.iter().map(|&(id, _)| id).zip(compiled).collect()
}

/// gemm reads a transposed operand through swapped strides: a matmul operand made by a
/// `transpose` of the last two axes becomes the transpose's own operand, and a transpose
/// left with no reader is not computed at all (`Mode::Elided`).
fn absorb_transposes(g: &Graph, steps: &mut [ScheduleStep], outputs: &[OutSrc]) {
    for mm in 0..steps.len() {
        for side in 0..2 {
            if !matches!(steps[mm].mode, Mode::Gemm(_)) {
                break;
            }
            let t = steps[mm].args[side];
            let Op::Transpose(perm) = &g.node(steps[t].node).op else { continue };
            let src = steps[t].args[0];
            if !kiln_ir::matmul::swaps_last_two(perm) || overwritten(steps, src, t + 1..mm + 1) {
                continue;
            }
            if let Mode::Gemm(shape) = &mut steps[mm].mode {
                if side == 0 {
                    shape.lhs_transposed = true;
                } else {
                    shape.rhs_transposed = true;
                }
            }
            steps[mm].args[side] = src;
        }
    }
    for t in 0..steps.len() {
        let read = steps.iter().any(|s| s.args.contains(&t)) || outputs.contains(&OutSrc::Step(t));
        if matches!(g.node(steps[t].node).op, Op::Transpose(_)) && !read {
            steps[t].mode = Mode::Elided;
        }
    }
}

/// Whether a step in `range` writes over the arena slot of step `src`'s value. kiln's memory
/// plan keeps a transpose's operand live until the products that may read it transposed
/// (`kiln_passes::MemoryPlanner`), but a plan read from a file need not, so a gemm reading
/// it later makes sure nothing reused its slot in between (its own output included).
fn overwritten(steps: &[ScheduleStep], src: usize, range: std::ops::Range<usize>) -> bool {
    let Dest::Slot(off) = steps[src].dest else { return false };
    let end = off + steps[src].ty.bytes();
    steps[range].iter().any(|s| matches!(s.dest, Dest::Slot(o) if o < end && off < o + s.ty.bytes()))
}

/// Bounds the arena arithmetic below (own slots, row groups' per-thread block buffers): the
/// planned arena plus every value's bytes, once per thread and twice more, must not pass `isize::MAX`,
/// so no offset computed from them can wrap. Only an absurd graph file comes near it.
fn check_arena_fits(g: &Graph, threads: usize) -> Result<()> {
    let planned = g.plan.as_ref().map_or(0, |p| p.arena_bytes);
    let total = g.node_ids().try_fold(planned, |acc, id| acc.checked_add(g.node(id).ty.bytes().checked_add(ALIGN)?));
    match total.and_then(|t| t.checked_mul(threads.max(1) + 2)) {
        Some(b) if b <= isize::MAX as usize => Ok(()),
        _ => Err(Error::Overflow { op: "executor", what: format!("the arena of graph @{}", g.name()) }),
    }
}

/// Every slot must fit its node's value and lie inside the arena.
fn check_plan(g: &Graph, p: &MemoryPlan) -> Result<()> {
    for (&id, s) in &p.slots {
        if !g.contains(id) {
            return Err(Error::Compile(format!("memory plan has a slot for unknown node {}", id.index())));
        }
        let need = g.node(id).ty.bytes();
        if s.bytes < need || s.offset.checked_add(s.bytes).is_none_or(|end| end > p.arena_bytes) {
            return Err(Error::Compile(format!(
                "memory plan slot {s:?} of node {} (needs {need} bytes) does not fit an arena of {} bytes",
                id.index(),
                p.arena_bytes
            )));
        }
        if s.offset % g.node(id).ty.dtype.size() != 0 {
            return Err(Error::Compile(format!("memory plan slot {s:?} is misaligned for {}", g.node(id).ty.dtype)));
        }
    }
    Ok(())
}

/// The schedule must list every node once, after its operands and order predecessors.
fn check_schedule(g: &Graph, schedule: &[NodeId], index: &HashMap<NodeId, usize>) -> Result<()> {
    if schedule.len() != g.len() || index.len() != g.len() {
        return Err(Error::Compile(format!(
            "schedule lists {} nodes ({} distinct) but the graph has {}",
            schedule.len(),
            index.len(),
            g.len()
        )));
    }
    for (pos, &id) in schedule.iter().enumerate() {
        let preds = g.args(id).into_iter().chain(g.order_preds(id));
        for p in preds {
            if index.get(&p).is_none_or(|&i| i >= pos) {
                return Err(Error::Compile(format!(
                    "schedule runs node {} before its operand {}",
                    id.index(),
                    p.index()
                )));
            }
        }
    }
    Ok(())
}

fn has_checked_integer_op(k: &kiln_ir::Kernel) -> bool {
    use kiln_ir::BinaryOp::{Div, Pow};
    let b = &k.body;
    b.node_ids().any(|n| matches!(b.node(n).op, Op::Binary(Div | Pow)) && b.node(n).ty.dtype.is_int())
}
