//! Row groups: consecutive kernels that all work row by row over the same leading
//! dimension (softmax's max, exp, sum and divide; a normalization; a loss) run one block
//! of rows at a time through the whole chain, instead of each kernel sweeping the whole
//! tensor. A block's intermediates stay in cache, and values used only inside the group
//! live in a small per-thread block buffer rather than a tensor-sized arena slot, so they
//! never travel to memory at all.
//!
//! A kernel is *row-wise* when its output's first dimension `R` is also the first dimension
//! of its iteration space and is not reduced: output row `r` then depends on operand row
//! `r` only, for every operand of the same rank whose first dimension is `R`. Operands
//! from outside the group are complete before it starts and may be read anywhere.

use kiln_ir::{Graph, Op};

use super::{Dest, Mode, ScheduleStep};

/// Bytes of one block's values (all the group's outputs for `block_rows` rows): small
/// enough for L2 next to the operand rows (Zen 3's is 512 KiB a core). On a Zen 3, W2 ran
/// 3–4% faster with 256 KiB than with 64 KiB (docs/PERFORMANCE.md, ninth session); 1 MiB
/// was slower again.
const BLOCK_BYTES: usize = 256 << 10;

/// Steps `start..end`, run `block_rows` rows at a time.
#[derive(Clone, Debug)]
pub(crate) struct RowGroup {
    pub start: usize,
    pub end: usize,
    pub rows: usize,
    pub block_rows: usize,
    /// Arena offset of the block buffers, one area of `scratch_per_thread` bytes per thread.
    pub scratch: usize,
    pub scratch_per_thread: usize,
    /// Total work (elements times kernel cost), for the decision to use threads.
    pub work: usize,
}

impl RowGroup {
    pub fn contains(&self, step: usize) -> bool {
        (self.start..self.end).contains(&step)
    }
}

/// The row count and iteration rank of a row-wise kernel step.
fn row_space(g: &Graph, step: &ScheduleStep) -> Option<(usize, usize)> {
    let Mode::Kernel { .. } = step.mode else { return None };
    let Op::Fused(k) = &g.node(step.node).op else { return None };
    let out = step.ty.shape.as_slice();
    let rows = *out.first()?;
    if rows < 2 || step.ty.numel() == 0 {
        return None;
    }
    let body = &k.body;
    let root = *body.outputs().first()?;
    let (space, reduced): (&[usize], Vec<usize>) = match &body.node(root).op {
        Op::Reduce { axes, .. } => (body.node(body.args(root)[0]).ty.shape.as_slice(), axes.clone()),
        Op::ArgReduce { axis, .. } => (body.node(body.args(root)[0]).ty.shape.as_slice(), vec![*axis]),
        _ => (out, vec![]),
    };
    (space.first() == Some(&rows) && !reduced.contains(&0)).then_some((rows, space.len()))
}

/// Whether step `j` can join a group of steps `start..j` with `rows` rows.
fn joins(g: &Graph, steps: &[ScheduleStep], start: usize, j: usize, rows: usize) -> bool {
    let Some((r, rank)) = row_space(g, &steps[j]) else { return false };
    r == rows
        && steps[j].args.iter().all(|&a| {
            let s = steps[a].ty.shape.as_slice();
            !(start..j).contains(&a) || (s.len() == rank && s[0] == rows)
        })
}

/// Finds the row groups of a schedule and moves their values: those used only inside
/// their group into per-thread block buffers (`Dest::Block`), the others that are not graph
/// outputs into slots of their own past the arena (a planned slot may be shared with a
/// value the group reads later, which block order would overwrite too early).
pub(super) fn plan(g: &Graph, steps: &mut [ScheduleStep], arena_bytes: &mut usize, threads: usize) -> Vec<RowGroup> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        let Some((rows, _)) = row_space(g, &steps[i]) else {
            i += 1;
            continue;
        };
        let mut j = i + 1;
        while j < steps.len() && joins(g, steps, i, j, rows) {
            j += 1;
        }
        if j - i >= 2 {
            groups.push(place(steps, i, j, rows, arena_bytes, threads));
            i = j;
        } else {
            i += 1;
        }
    }
    groups
}

fn place(
    steps: &mut [ScheduleStep],
    start: usize,
    end: usize,
    rows: usize,
    arena: &mut usize,
    threads: usize,
) -> RowGroup {
    let row_bytes: usize = steps[start..end].iter().map(|s| s.ty.bytes() / rows).sum();
    let block_rows = (BLOCK_BYTES / row_bytes.max(1)).clamp(1, rows);
    let mut per_thread = 0;
    let mut work = 0;
    for s in start..end {
        let used_outside = steps.iter().enumerate().any(|(k, st)| !(start..end).contains(&k) && st.args.contains(&s));
        let step = &mut steps[s];
        if let Mode::Kernel { kernel, .. } = &step.mode {
            work += step.ty.numel().saturating_mul(kernel.cost_per_element());
        }
        match step.dest {
            Dest::Output(_) | Dest::Fresh | Dest::Var(_) => {}
            _ if used_outside => {
                let offset = arena.next_multiple_of(super::build::ALIGN);
                *arena = offset + step.ty.bytes();
                step.dest = Dest::Slot(offset);
            }
            _ => {
                let offset = per_thread;
                per_thread = (offset + block_rows * step.ty.bytes() / rows).next_multiple_of(super::build::ALIGN);
                step.dest = Dest::Block(offset);
            }
        }
    }
    let scratch = arena.next_multiple_of(super::build::ALIGN);
    *arena = scratch + threads.max(1) * per_thread;
    RowGroup { start, end, rows, block_rows, scratch, scratch_per_thread: per_thread, work }
}
