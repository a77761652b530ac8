//! Variable updates written in place. Every optimizer step ends in writes of the form
//! `v.assign(f(v, grad))`; computed into a fresh buffer, each one costs a buffer the size of
//! the Variable per call (twice the parameters' memory during a step) and, on a first call,
//! a page fault per 4 KiB of it. When the caller hands the Variables' arrays over
//! ([`super::Executable::run_updating`]), the kernel computing such a value writes it over
//! the Variable's own buffer instead (`Dest::Var`).
//!
//! The plan allows it only where nobody can tell the difference:
//! - the value is computed by a compiled elementwise kernel outside any row group, or by a
//!   product added into it (`gemm_update.rs`), whose only reader is the graph's one write of
//!   the Variable, and which reads the Variable's old value (if at all) element for element
//!   at its own index, so each element is read before it is overwritten (a product's
//!   operands are not the old value);
//! - everything that reads the old value, or an array that may share its buffer (a view,
//!   a library or region result), runs before the kernel; no such array is a graph output
//!   or written to another Variable;
//! - nothing after the kernel can fail (no library, interpreter or region step, no
//!   allocation: the output buffers of later steps are allocated before the call's first
//!   step): a failed call leaves every Variable as it was.
//!
//! A call whose arrays are not all unshared runs every such kernel into a fresh buffer, as
//! if there were no plan.

use kiln_ir::{Graph, Op};

use super::rows::RowGroup;
use super::{Dest, Mode, OutSrc, ScheduleStep};

/// What [`plan`] decided.
#[derive(Default)]
pub(super) struct InPlace {
    /// The Variables updated in place, ascending.
    pub vars: Vec<usize>,
    /// Steps writing a graph output after the first in-place update: a call handing the
    /// Variables over allocates their buffers before it starts.
    pub early_outputs: Vec<usize>,
}

/// Marks the steps that may update their Variable in place (`Dest::Var`).
pub(super) fn plan(g: &Graph, steps: &mut [ScheduleStep], outputs: &[OutSrc], groups: &[RowGroup]) -> InPlace {
    let candidates: Vec<Option<usize>> = (0..steps.len()).map(|i| candidate(g, steps, outputs, groups, i)).collect();
    // From the end: a candidate is kept only if every step after it cannot fail.
    let mut safe_after = true;
    let mut vars = Vec::new();
    let mut first = steps.len();
    for i in (0..steps.len()).rev() {
        match candidates[i] {
            Some(v) if safe_after => {
                steps[valued(steps, i)].dest = Dest::Var(v);
                vars.push(v);
                first = i;
            }
            _ => safe_after &= cannot_fail(steps, i),
        }
    }
    vars.sort_unstable();
    let writes_output =
        |s: &ScheduleStep| matches!(s.dest, Dest::Output(_)) && matches!(s.mode, Mode::Kernel { .. } | Mode::Gemm(_));
    let early_outputs = (first..steps.len()).filter(|&i| writes_output(&steps[i])).collect();
    InPlace { vars, early_outputs }
}

/// The step whose value step `i` writes: `i` itself, or for a product added into an update
/// (`Mode::GemmUpdate`), the update kernel's step it replaced, which holds the destination.
fn valued(steps: &[ScheduleStep], i: usize) -> usize {
    match &steps[i].mode {
        Mode::GemmUpdate(u) => u.into,
        _ => i,
    }
}

/// The Variable step `i` may update in place, if the rules of the module docs allow it
/// (all but the last, which `plan` checks).
fn candidate(g: &Graph, steps: &[ScheduleStep], outputs: &[OutSrc], groups: &[RowGroup], i: usize) -> Option<usize> {
    let step = &steps[i];
    let value = valued(steps, i);
    let elementwise = match &step.mode {
        Mode::Kernel { .. } => {
            let Op::Fused(kernel) = &g.node(step.node).op else { return None };
            kernel.body.node_ids().all(|n| {
                let op = &kernel.body.node(n).op;
                op.is_elementwise() || matches!(op, Op::Input(_) | Op::Const(_))
            })
        }
        Mode::GemmUpdate(_) => true,
        _ => return None,
    };
    if steps[value].dest != Dest::Fresh || groups.iter().any(|gr| gr.contains(i)) {
        return None;
    }
    // `Dest::Fresh` means the write is the value's only reader.
    let write = steps.iter().position(|s| s.args.contains(&value))?;
    let Mode::AssignVar(v) = steps[write].mode else { return None };
    if steps.iter().filter(|s| matches!(s.mode, Mode::AssignVar(w) if w == v)).count() != 1 {
        return None;
    }
    let shared = sharing_old_value(g, steps, v, write);
    let leaks = |j: usize| outputs.contains(&OutSrc::Step(j)) || matches!(steps[j].mode, Mode::AssignVar(_));
    let read_later = |j: usize| j >= i || steps.iter().enumerate().any(|(r, s)| r > i && s.args.contains(&j));
    if shared.iter().any(|&j| leaks(j) || read_later(j)) {
        return None;
    }
    // A product reads its operands (`args[..2]`) at every index; the value it adds to, and
    // a kernel's operands of its own type, at its own.
    let at_own_index = step.args.iter().enumerate().all(|(k, a)| {
        let whole = matches!(step.mode, Mode::GemmUpdate(_)) && k < 2;
        !shared.contains(a) || (!whole && steps[*a].ty == steps[value].ty)
    });
    (elementwise && at_own_index).then_some(v)
}

/// The steps whose value is, or may share the buffer of, Variable `v`'s value before its
/// write (step `write`): its reads, region steps that see it, and everything that may pass
/// one of those through (views, library and region steps; kernels and products write
/// memory of their own).
fn sharing_old_value(g: &Graph, steps: &[ScheduleStep], v: usize, write: usize) -> Vec<usize> {
    let mut shared: Vec<usize> = Vec::new();
    for (j, s) in steps.iter().enumerate() {
        let root = match &s.mode {
            Mode::ReadVar(w) => *w == v && j < write,
            Mode::Region(_) => g.node(s.node).op.regions().iter().any(|r| r.vars.contains(&(v as u32))),
            _ => false,
        };
        let passes = !matches!(
            s.mode,
            Mode::Kernel { .. } | Mode::Gemm(_) | Mode::GemmUpdate(_) | Mode::Computed(_) | Mode::Elided
        );
        if root || (passes && s.args.iter().any(|a| shared.contains(a))) {
            shared.push(j);
        }
    }
    shared
}

/// Whether step `i` cannot fail (nor allocate) once the call's early outputs are allocated:
/// kernels and products writing the arena, a Variable or an output, views within the arena,
/// reads of arrays, and Variable writes that take a buffer as it is (a fresh one, allocated
/// by its kernel, or an array) rather than copying it out. (A view writing an output may
/// have to copy into a buffer allocated then, or none at all: it is not chosen early.)
fn cannot_fail(steps: &[ScheduleStep], i: usize) -> bool {
    let dest = steps[i].dest;
    match &steps[i].mode {
        Mode::Input(_) | Mode::Const(_) | Mode::ReadVar(_) | Mode::Elided | Mode::Get(_) | Mode::Computed(_) => true,
        Mode::Kernel { .. } | Mode::Gemm(_) => {
            matches!(dest, Dest::Slot(_) | Dest::Block(_) | Dest::Var(_) | Dest::Output(_))
        }
        Mode::GemmUpdate(u) => matches!(steps[u.into].dest, Dest::Var(_)),
        Mode::View => matches!(dest, Dest::Slot(_) | Dest::Block(_)),
        Mode::AssignVar(_) => !matches!(steps[steps[i].args[0]].dest, Dest::Slot(_) | Dest::Output(_) | Dest::Block(_)),
        Mode::Library | Mode::Fallback(_) | Mode::Region(_) => false,
    }
}
