//! Memory planning: the execution order, and an offset in one arena for every
//! intermediate buffer, reusing the space of values that are no longer needed.

use std::collections::{HashMap, HashSet};

use kiln_ir::matmul::added_product;
use kiln_ir::{Graph, MemoryPlan, NodeId, Op, Result, Slot};

use crate::pass::{Changed, Pass};

/// Arena offsets are multiples of this (a cache line, and enough for any SIMD load).
pub const ALIGN: usize = 64;

/// Sets `g.plan`: schedule = topological order; arena slots by liveness, best fit.
///
/// Only values the executor computes into memory it gives them have slots: fused kernels,
/// float products and reshapes. Inputs, constants and variable reads are the executor's own
/// buffers; transposes and other movement, reductions, unfused ops, random numbers and
/// control flow run on the interpreter's kernels, which return arrays of their own. Of the
/// rest, these get no slot either: graph outputs (returned to the caller, so they outlive
/// the arena), values whose only reader is an `AssignVar` (the executor computes them into a
/// buffer that becomes the Variable's array, or over the Variable's old one), and products
/// the executor adds into such a value (`kiln_ir::matmul::added_product`). An operand of
/// `AssignVar` that has other readers stays live to the end of the schedule, so the
/// executor may commit the write from the arena after the whole call succeeded
/// (commit-on-success).
///
/// A value is live from the step that computes it to its last reader; a transpose of the
/// last two axes reads its operand until the products that read the transpose, since gemm
/// reads that operand itself with swapped strides (the executor never computes such a
/// transpose). In-place reuse:
/// an elementwise fused kernel (its body's output is not a reduction) whose operand has
/// the result's exact shape and element size, is an arena value, and dies at this very
/// kernel writes over that operand's slot (`plan.in_place`). This also gives the
/// matmul epilogue: `relu(matmul(a, b) + bias)` runs in the matmul's buffer.
///
/// ```
/// use kiln_ir::{DType, Graph, Op, TensorType, UnaryOp};
/// use kiln_passes::{Fuse, MemoryPlanner, Pass};
/// let mut g = Graph::new("f");
/// let x = g.add_input(TensorType::new(DType::F32, &[16]));
/// let a = g.add(Op::Unary(UnaryOp::Exp), &[x]).unwrap();
/// let b = g.add(Op::Transpose(vec![0]), &[a]).unwrap(); // not fusible: ends the kernel
/// let c = g.add(Op::Unary(UnaryOp::Tanh), &[b]).unwrap();
/// g.set_outputs(vec![c]);
/// Fuse::default().run(&mut g).unwrap();
/// MemoryPlanner.run(&mut g).unwrap();
/// let plan = g.plan.as_ref().unwrap();
/// // The exp kernel: the transpose owns its array, and the output is the caller's.
/// assert_eq!(plan.slots.len(), 1);
/// assert_eq!(plan.arena_bytes, 64);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryPlanner;

impl Pass for MemoryPlanner {
    fn name(&self) -> &str {
        "memory_plan"
    }

    fn run(&self, g: &mut Graph) -> Result<Changed> {
        let plan = plan(g)?;
        let mut c = Changed::none();
        c.count("slots", plan.slots.len());
        c.count("in_place", plan.in_place.len());
        c.count("arena_bytes", plan.arena_bytes);
        c.count("naive_bytes", plan.naive_bytes);
        let changed = g.plan.as_ref() != Some(&plan);
        g.plan = Some(plan);
        c.changed = changed;
        Ok(c)
    }
}

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

fn needs_slot(g: &Graph, id: NodeId, step: &HashMap<NodeId, usize>) -> bool {
    computed_into_memory(g, id) && !g.is_output(id) && !only_assigned(g, id) && !added_into_update(g, id, step)
}

/// A value the executor computes into memory it is given ([`MemoryPlanner`] lists them; a
/// reshape of an arena value is copied). A slot for any other would only widen the arena:
/// with slots for its transposes (read transposed by gemm, never computed) W3's arena was
/// 2.6 MB, without them 1.6 (`kiln_jit::executor`, `Mode::Library` and `Mode::Elided`).
fn computed_into_memory(g: &Graph, id: NodeId) -> bool {
    matches!(g.node(id).op, Op::Fused(_) | Op::Reshape(_)) || float_product(g, id)
}

/// A product gemm computes (integer products run on the interpreter's loop).
fn float_product(g: &Graph, id: NodeId) -> bool {
    matches!(g.node(id).op, Op::MatMul) && g.node(id).ty.dtype.is_float()
}

/// The last step reading `id`'s value, where `reader` reads it at step `at`: a transpose
/// of the last two axes is read at the float products that read it, since the executor
/// hands them `id` itself with swapped strides (`kiln_ir::matmul::swaps_last_two`).
fn read_until(g: &Graph, reader: NodeId, at: usize, step: &HashMap<NodeId, usize>) -> usize {
    let Op::Transpose(perm) = &g.node(reader).op else { return at };
    if !kiln_ir::matmul::swaps_last_two(perm) {
        return at;
    }
    g.users(reader).iter().filter(|(u, _)| float_product(g, *u)).map(|(u, _)| step[u]).fold(at, usize::max)
}

/// A value whose one reader is a Variable write: the executor computes it into a buffer of
/// its own that becomes the Variable's new array (or over the Variable's old one), never
/// into the arena.
fn only_assigned(g: &Graph, id: NodeId) -> bool {
    matches!(g.users(id).as_slice(), [(user, _)] if matches!(g.node(*user).op, Op::AssignVar(_)))
}

/// A float product whose one reader is a Variable's update `acc + beta·p` (with `acc`
/// computed first): the executor adds it into the update's own buffer
/// (`kiln_ir::matmul::added_product`). Should the executor decide otherwise, it gives the
/// product a slot of its own past the arena.
fn added_into_update(g: &Graph, id: NodeId, step: &HashMap<NodeId, usize>) -> bool {
    if !float_product(g, id) {
        return false;
    }
    let [(update, _)] = g.users(id)[..] else { return false };
    let Op::Fused(kernel) = &g.node(update).op else { return false };
    let args = g.args(update);
    match added_product(kernel, |k| args.get(k) == Some(&id)) {
        Some((acc, _, _)) => only_assigned(g, update) && step[&args[acc]] < step[&id],
        None => false,
    }
}

/// An elementwise (non-reduction) fused kernel.
fn is_elementwise_kernel(op: &Op) -> bool {
    match op {
        Op::Fused(k) => k.body.outputs().iter().all(|&o| k.body.node(o).op.is_elementwise()),
        _ => false,
    }
}

/// Computes the plan for `g` (without attaching it).
pub fn plan(g: &Graph) -> Result<MemoryPlan> {
    let schedule = g.topo_order()?;
    let step: HashMap<NodeId, usize> = schedule.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let end = schedule.len();
    // Last step at which each value is read.
    let mut last_use: HashMap<NodeId, usize> = HashMap::new();
    for &id in &schedule {
        let s = step[&id];
        let keep_to_end = g.node(id).op.has_side_effect();
        let reads_until = if keep_to_end { end } else { read_until(g, id, s, &step) };
        for a in g.args(id) {
            let l = last_use.entry(a).or_insert(step[&a]);
            *l = (*l).max(reads_until);
        }
    }
    let mut arena = Arena::default();
    let mut plan = MemoryPlan::default();
    // Slots freed after each step.
    let mut dying: HashMap<usize, Vec<NodeId>> = HashMap::new();
    let mut donors: HashSet<NodeId> = HashSet::new();
    for (i, &id) in schedule.iter().enumerate() {
        if needs_slot(g, id, &step) {
            let bytes = g.node(id).ty.bytes();
            plan.naive_bytes += align(bytes);
            let donor = in_place_donor(g, id, i, &plan.slots, &last_use);
            let slot = match donor {
                Some(d) => {
                    plan.in_place.insert(id, d);
                    donors.insert(d);
                    plan.slots[&d]
                }
                None => Slot { offset: arena.alloc(align(bytes)), bytes },
            };
            plan.slots.insert(id, slot);
            dying.entry(last_use.get(&id).copied().unwrap_or(i)).or_default().push(id);
        }
        for v in dying.remove(&i).unwrap_or_default() {
            // A donor's space now belongs to the kernel that wrote over it.
            if !donors.contains(&v) {
                arena.free(plan.slots[&v].offset, align(plan.slots[&v].bytes));
            }
        }
    }
    plan.arena_bytes = arena.high_water;
    plan.schedule = schedule;
    Ok(plan)
}

/// The operand of `id` whose slot `id` may overwrite, if any.
fn in_place_donor(
    g: &Graph,
    id: NodeId,
    step: usize,
    slots: &HashMap<NodeId, Slot>,
    last_use: &HashMap<NodeId, usize>,
) -> Option<NodeId> {
    let node = g.node(id);
    if !is_elementwise_kernel(&node.op) {
        return None;
    }
    g.args(id).into_iter().find(|a| {
        let t = &g.node(*a).ty;
        slots.contains_key(a)
            && t.shape == node.ty.shape
            && t.dtype.size() == node.ty.dtype.size()
            && last_use.get(a) == Some(&step)
    })
}

/// Free-list allocator over one growing arena.
#[derive(Default)]
struct Arena {
    /// Free blocks `(offset, size)`, sorted by offset, never adjacent.
    free: Vec<(usize, usize)>,
    high_water: usize,
}

impl Arena {
    /// Best fit: the smallest free block that holds `size`; else grow the arena (from a
    /// free block at its end if there is one).
    fn alloc(&mut self, size: usize) -> usize {
        if size == 0 {
            return 0;
        }
        let best = self.free.iter().enumerate().filter(|(_, b)| b.1 >= size).min_by_key(|(_, b)| b.1).map(|(i, _)| i);
        if let Some(i) = best {
            let (off, len) = self.free[i];
            if len == size {
                self.free.remove(i);
            } else {
                self.free[i] = (off + size, len - size);
            }
            return off;
        }
        match self.free.last().copied() {
            Some((off, len)) if off + len == self.high_water => {
                self.free.pop();
                self.high_water = off + size;
                off
            }
            _ => {
                let off = self.high_water;
                self.high_water += size;
                off
            }
        }
    }

    fn free(&mut self, offset: usize, size: usize) {
        if size == 0 {
            return;
        }
        let i = self.free.partition_point(|b| b.0 < offset);
        self.free.insert(i, (offset, size));
        // Merge with the next block, then with the previous one.
        if i + 1 < self.free.len() && self.free[i].0 + self.free[i].1 == self.free[i + 1].0 {
            self.free[i].1 += self.free[i + 1].1;
            self.free.remove(i + 1);
        }
        if i > 0 && self.free[i - 1].0 + self.free[i - 1].1 == self.free[i].0 {
            self.free[i - 1].1 += self.free[i].1;
            self.free.remove(i);
        }
    }
}
